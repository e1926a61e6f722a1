/**
 * A process that uses RedisSessionStorage without Nest ends by itself once
 * the storage is closed, run as a user runs it (a script on the built
 * package), whether or not its Redis was ever reachable.
 */
import { EXIT_BOUND_MS, requireBuiltPackage, run } from '../../support/node-process';
import { describeRedis, freePort, startRedisServer, type RedisServer } from '../../support/redis-server';

// Each test waits for a child for up to EXIT_BOUND_MS, so jest's own 5 s default
// must not fail it first: a Nest process starting on a loaded 2-core machine took longer than 5 s in CI.
jest.setTimeout(EXIT_BOUND_MS + 5_000);

describe('a process with a RedisSessionStorage ends by itself once it is closed (built package)', () => {
  beforeAll(() => {
    requireBuiltPackage();
  });

  it('a RedisSessionStorage closed right after construction, its Redis never reachable: the process exits 0, with no unhandled rejection', async () => {
    const script = `
      const { RedisSessionStorage } = require('nestjs-mtproto-sessions/redis');
      const storage = new RedisSessionStorage({ url: process.env.REDIS_URL });
      storage.close().then(() => console.log('closed'));`;
    const exit = await run(['-e', script], { REDIS_URL: `redis://127.0.0.1:${await freePort()}` }).exited;
    expect(exit).toMatchObject({ code: 0, signal: null });
    expect(exit.output.trim()).toBe('closed');
  });

  it('a never-reachable RedisSessionStorage closed after a call failed, without Nest: the process exits 0, with no unhandled rejection', async () => {
    const script = `
      const { RedisSessionStorage } = require('nestjs-mtproto-sessions/redis');
      const storage = new RedisSessionStorage({ url: process.env.REDIS_URL, commandTimeout: 500, logger: { warn() {}, error() {} } });
      storage.createSession(1n).then(
        () => console.log('resolved?'),
        (error) => console.log('rejected ' + error.name),
      ).then(() => storage.close()).then(() => console.log('closed'));`;
    const exit = await run(['-e', script], { REDIS_URL: `redis://127.0.0.1:${await freePort()}` }).exited;
    expect(exit).toMatchObject({ code: 0, signal: null });
    expect(exit.output.trim().split('\n')).toEqual(['rejected SessionStorageUnavailableError', 'closed']);
  });

  describeRedis('with a real redis-server', () => {
    let server: RedisServer;
    beforeAll(async () => {
      server = await startRedisServer();
    });
    afterAll(async () => {
      await server?.stop();
    });

    it('a RedisSessionStorage closed right after construction leaves no connection open: the process exits 0', async () => {
      const script = `
        const { RedisSessionStorage } = require('nestjs-mtproto-sessions/redis');
        const storage = new RedisSessionStorage({ url: process.env.REDIS_URL });
        storage.close().then(() => console.log('closed'));`;
      const exit = await run(['-e', script], { REDIS_URL: server.url }).exited;
      expect(exit).toMatchObject({ code: 0, signal: null });
      expect(exit.output.trim()).toBe('closed');
    });
  });
});
