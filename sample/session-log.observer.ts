import { Injectable, Logger } from '@nestjs/common';
import { OnSessionEvent, type SessionEvent } from 'nestjs-mtproto-sessions';

/**
 * The smallest observer: any provider method with `@OnSessionEvent()` is
 * called for every session created or destroyed. A real server would free
 * per-session state here (acknowledgement queues, salts, caches).
 */
@Injectable()
export class SessionLogObserver {
  private readonly logger = new Logger(SessionLogObserver.name);

  @OnSessionEvent()
  log(event: SessionEvent): void {
    const scope = event.authKeyId === undefined ? '' : ` (auth key ${event.authKeyId})`;
    const how = event.reason === 'expired' ? 'expired' : event.type;
    const where = event.origin === undefined ? '' : ` by instance ${event.origin}`;
    this.logger.log(`Session ${event.sessionId}${scope} ${how}${where}`);
  }
}
