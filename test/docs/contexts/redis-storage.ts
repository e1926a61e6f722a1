// Context for ```ts fragment=redis-storage blocks: statements of an async
// function that has a RedisSessionStorage (`storage`) and the subject built on
// it (`subject`), as an app gets them from SessionsModule.
import { SessionSubject } from 'nestjs-mtproto-sessions';
import { RedisSessionStorage } from 'nestjs-mtproto-sessions/redis';

export async function fragment(storage: RedisSessionStorage, subject: SessionSubject): Promise<void> {
  void subject;
/* fragment */
}
