import { Module } from '@nestjs/common';
import { SessionsModule } from 'nestjs-mtproto-sessions';
import { SessionEventStream } from './session-event-stream.js';
import { SessionLogObserver } from './session-log.observer.js';
import { SessionsController } from './sessions.controller.js';

@Module({
  // In-memory storage: nothing to set up. Pass a storage (e.g. Redis) to share sessions between instances.
  imports: [SessionsModule.forRoot()],
  controllers: [SessionsController],
  // Listing the observers as providers is all the wiring they need: @OnSessionEvent() is found at bootstrap.
  providers: [SessionEventStream, SessionLogObserver],
})
export class AppModule {}
