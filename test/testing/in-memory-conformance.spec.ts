import { InMemorySessionStorage } from 'nestjs-mtproto-sessions';
import { describeSessionStorage } from 'nestjs-mtproto-sessions/testing';

describeSessionStorage('InMemorySessionStorage', (options) => new InMemorySessionStorage(options), { lifetime: true });
