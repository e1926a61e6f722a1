// Context for ```ts fragment=message-handler blocks: the body of a method of
// an injectable message handler, as in the README's quick start: `this.sessions`
// is the SessionSubject, `sessionId` and `authKeyId` the ids of the message.
import { Injectable } from '@nestjs/common';
import {
  InvalidSessionIdError,
  SessionLimitError,
  SessionStorageTimeoutError,
  SessionStorageUnavailableError,
  SessionSubject,
  type AuthKeyId,
  type SessionId,
} from 'nestjs-mtproto-sessions';

export { InvalidSessionIdError, SessionLimitError, SessionStorageTimeoutError, SessionStorageUnavailableError };

@Injectable()
export class MessageHandler {
  constructor(private readonly sessions: SessionSubject) {}

  async onEncryptedMessage(sessionId: SessionId, authKeyId: AuthKeyId): Promise<void> {
/* fragment */
  }
}
