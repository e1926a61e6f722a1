import { Module } from '@nestjs/common';
import { SessionsModule } from 'nestjs-mtproto-sessions';
import { sessionsOptionsFromEnv } from './session-storage.config.js';
import { SessionEventStream } from './session-event-stream.js';
import { SessionLogObserver } from './session-log.observer.js';
import { SessionsController } from './sessions.controller.js';

@Module({
  // In memory by default; with REDIS_URL, in Redis, shared with every instance using it (see session-storage.config.ts).
  imports: [SessionsModule.forRootAsync({ useFactory: () => sessionsOptionsFromEnv() })],
  controllers: [SessionsController],
  // Listing the observers as providers is all the wiring they need: @OnSessionEvent() is found at bootstrap.
  providers: [SessionEventStream, SessionLogObserver],
})
export class AppModule {}
