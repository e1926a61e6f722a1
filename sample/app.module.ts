import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { SessionsModule } from 'nestjs-mtproto-sessions';
import { SessionsHealthIndicator } from 'nestjs-mtproto-sessions/terminus';
import { HealthController } from './health.controller.js';
import { MetricsController } from './metrics.controller.js';
import { sessionsOptionsFromEnv } from './session-storage.config.js';
import { SessionEventStream } from './session-event-stream.js';
import { SessionLogObserver } from './session-log.observer.js';
import { SessionsController } from './sessions.controller.js';

@Module({
  imports: [
    // In memory by default; with REDIS_URL, in Redis, shared with every instance using it (see session-storage.config.ts).
    SessionsModule.forRootAsync({ useFactory: () => sessionsOptionsFromEnv() }),
    TerminusModule,
  ],
  controllers: [SessionsController, HealthController, MetricsController],
  // Listing the observers as providers is all the wiring they need: @OnSessionEvent() is found at bootstrap.
  providers: [SessionEventStream, SessionLogObserver, SessionsHealthIndicator],
})
export class AppModule {}
