/**
 * close() at any moment after construction releases every connection the
 * storage opened, counted on a real redis-server with CLIENT LIST: its
 * command connection from a URL (node-redis) or duplicated from an
 * application's ioredis client, and its readers' own connections. And no
 * connection of the storage's raises an unhandled 'error', before or after
 * close(), also when Redis goes away: node-redis throws such an error, which
 * kills a process.
 */
import { connect } from 'node:net';
import { runInThisContext } from 'node:vm';
import { Redis } from 'ioredis';
import { createClient } from 'redis';
import { SessionSubject } from 'nestjs-mtproto-sessions';
import { RedisSessionStorage, type RedisSessionStorageOptions } from 'nestjs-mtproto-sessions/redis';
import { connectRaw, type RawClient } from '../../support/raw-redis';
import { describeRedis, startRedisServer, type RedisServer } from '../../support/redis-server';
import { startTcpProxy, type TcpProxy } from '../../support/tcp-proxy';
import { pollUntil } from '../../support/wait-until';

/** Storages closed together at each moment: the leak this guards against hit some of them, not all. */
const STORAGES = 4;
const COMMAND_TIMEOUT = 1000;
const quiet = { warn: () => undefined, error: () => undefined };

/** How a storage reaches Redis: what it is given, and how the application lets go of it afterwards. */
interface Kind {
  readonly name: string;
  /** Whether the storage opens a command connection of its own (not for a node-redis client it is given). */
  readonly ownsCommandConnection: boolean;
  open(url: string): Promise<{ options: Pick<RedisSessionStorageOptions, 'url' | 'client'>; release(): Promise<void> }>;
}

const KINDS: readonly Kind[] = [
  { name: 'node-redis from { url }', ownsCommandConnection: true, open: async (url) => ({ options: { url }, release: async () => undefined }) },
  {
    name: 'an ioredis client given (duplicated)',
    ownsCommandConnection: true,
    open: async (url) => {
      const client = new Redis(url);
      client.on('error', () => undefined);
      await new Promise((resolve) => client.once('ready', resolve));
      return { options: { client }, release: async () => client.disconnect() };
    },
  },
  {
    name: "a node-redis client given (the readers' connections)",
    ownsCommandConnection: false,
    open: async (url) => {
      const client = createClient({ url, socket: { reconnectStrategy: false } });
      client.on('error', () => undefined);
      await client.connect();
      return { options: { client }, release: async () => void client.destroy() };
    },
  },
];

interface Opened {
  readonly storage: RedisSessionStorage;
  subject: SessionSubject | undefined;
  release(): Promise<void>;
}

const immediate = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Every test's own clients stay out of the count. */
async function otherClients(raw: RawClient, own: ReadonlySet<string>): Promise<string[]> {
  const text = String(await raw.sendCommand(['CLIENT', 'LIST', 'TYPE', 'normal']));
  return text.split('\n').map((line) => line.trim()).filter((line) => line !== '' && !own.has(/(?:^| )id=(\d+)/.exec(line)?.[1] ?? ''));
}

describeRedis('RedisSessionStorage.close() releases every connection it opened', () => {
  let server: RedisServer;
  let raw: RawClient;
  let own: Set<string>;
  let proxy: TcpProxy;
  let prefixes = 0;

  // A server per test: what one test left open must not count against the next.
  beforeEach(async () => {
    server = await startRedisServer();
    raw = await connectRaw(server.url);
    own = new Set([String(await raw.sendCommand(['CLIENT', 'ID']))]);
    proxy = await startTcpProxy(server.port);
  }, 30_000);

  afterEach(async () => {
    proxy.heal();
    await proxy.close();
    raw.destroy();
    await server.stop();
  });

  const count = async () => (await otherClients(raw, own)).length;

  /** Resolves once Redis lists `expected` connections besides the test's own (bounded: Redis announces none). */
  async function untilConnections(expected: number, what: string): Promise<void> {
    let seen: string[] = [];
    await pollUntil(async () => (seen = await otherClients(raw, own)).length === expected, () => `${expected} connections (${what}); Redis lists ${JSON.stringify(seen)}`);
  }

  async function open(kind: Kind, url: string, attach: boolean): Promise<Opened[]> {
    return Promise.all(Array.from({ length: STORAGES }, async () => {
      const { options, release } = await kind.open(url);
      const storage = new RedisSessionStorage({ ...options, keyPrefix: `close-${process.pid}-${++prefixes}`, commandTimeout: COMMAND_TIMEOUT, logger: quiet });
      // The subject attaches at once: its readers start as soon as the key layout is checked.
      return { storage, subject: attach ? new SessionSubject(storage, { logger: quiet }) : undefined, release };
    }));
  }

  async function closeAll(opened: readonly Opened[]): Promise<void> {
    await Promise.all(opened.map(({ storage, subject }) => (subject ?? storage).close()));
  }

  /** Once closed, and the application let go of its own clients: nothing the storages opened is left on the server. */
  async function expectNothingLeft(opened: readonly Opened[]): Promise<void> {
    await Promise.all(opened.map((one) => one.release()));
    let left: string[] = [];
    await pollUntil(async () => (left = await otherClients(raw, own)).length === 0, 'every connection to go', { timeoutMs: 3000 }).catch(() => undefined);
    expect(left).toEqual([]);
  }

  describe.each(KINDS)('$name', (kind) => {
    it.each([
      ['synchronously', async () => undefined],
      ['after one setImmediate (the URL client loaded, its connect just started)', immediate],
      ['after two setImmediates', async () => {
        await immediate();
        await immediate();
      }],
      ['once the readers read', async (opened: readonly Opened[]) => {
        await Promise.all(opened.map(({ storage }) => storage.ready()));
      }],
    ])('closed %s', async (_moment, moment) => {
      const opened = await open(kind, server.url, true);
      await moment(opened);
      await closeAll(opened);
      await expectNothingLeft(opened);
    });

    // A given node-redis client is the application's, connected already: its first connections are its readers' (below).
    (kind.ownsCommandConnection ? it : it.skip)('closed mid-connect: the handshake of its command connection held in the network', async () => {
      // The application's own clients connect first; what the storage opens next hangs in its handshake.
      const apps = await Promise.all(Array.from({ length: STORAGES }, () => kind.open(proxy.url)));
      const before = await count();
      proxy.hold();
      const opened = apps.map(({ options, release }) => {
        const storage = new RedisSessionStorage({ ...options, keyPrefix: `close-${process.pid}-${++prefixes}`, commandTimeout: COMMAND_TIMEOUT, logger: quiet });
        return { storage, subject: new SessionSubject(storage, { logger: quiet }), release };
      });
      await untilConnections(before + STORAGES, 'the storages connecting');
      await closeAll(opened);
      proxy.heal();
      await expectNothingLeft(opened);
    });

    it('closed mid-reader-start: the readers connecting, their handshake held in the network', async () => {
      const opened = await open(kind, proxy.url, false);
      await Promise.all(opened.map(({ storage }) => storage.ready()));
      const before = await count();
      proxy.hold();
      for (const one of opened) one.subject = new SessionSubject(one.storage, { logger: quiet });
      await untilConnections(before + STORAGES, 'the readers connecting');
      await closeAll(opened);
      proxy.heal();
      await expectNothingLeft(opened);
    });
  });
});

describeRedis('RedisSessionStorage connections never raise an unhandled error', () => {
  let server: RedisServer;
  /** Between the storages and Redis: Redis goes away as a host that died does, resetting every connection (ECONNRESET). */
  let proxy: TcpProxy;
  let prefixes = 0;
  /** The worker's real process: an 'error' event nobody listens to is thrown from a socket callback, outside any test. */
  const host = runInThisContext('process') as NodeJS.Process;
  const uncaught: unknown[] = [];
  const record = (error: unknown): void => {
    uncaught.push(error);
  };
  /** ioredis prints an 'error' event nobody listens to instead of throwing it. */
  let printed: jest.SpyInstance;

  beforeEach(async () => {
    server = await startRedisServer();
    proxy = await startTcpProxy(server.port);
    uncaught.length = 0;
    host.on('uncaughtException', record);
    printed = jest.spyOn(console, 'error');
  }, 30_000);

  afterEach(async () => {
    host.off('uncaughtException', record);
    printed.mockRestore();
    await proxy.close();
    await server.stop();
  });

  /** Resets every connection and kills Redis; resolves once a connection of the test's own has heard: every loopback socket hears together. */
  async function redisGoesAway(): Promise<void> {
    const watcher = connect(proxy.port, server.host);
    watcher.on('error', () => undefined);
    await new Promise((resolve) => watcher.once('connect', resolve));
    const gone = new Promise((resolve) => watcher.once('close', resolve));
    proxy.resetAll();
    await server.kill();
    await gone;
    // The other sockets' errors are delivered in the same turn of the loop, or the next.
    await immediate();
    await immediate();
  }

  function unhandled(): string[] {
    const lines = printed.mock.calls.map((call) => call.map(String).join(' ')).filter((line) => /Unhandled error event/.test(line));
    return [...uncaught.map(String), ...lines];
  }

  function openSubject(options: Pick<RedisSessionStorageOptions, 'url' | 'client'>): SessionSubject {
    const storage = new RedisSessionStorage({ ...options, keyPrefix: `errors-${process.pid}-${++prefixes}`, commandTimeout: COMMAND_TIMEOUT, logger: quiet });
    return new SessionSubject(storage, { logger: quiet });
  }

  it.each(KINDS)('$name: closed at several moments, then Redis goes away', async (kind) => {
    const moments = [async () => undefined, immediate, async () => {
      await immediate();
      await immediate();
    }, async (subjects: SessionSubject[]) => {
      await Promise.all(subjects.map((subject) => subject.ready()));
    }];
    const apps: { release(): Promise<void> }[] = [];
    for (const moment of moments) {
      const opened = await Promise.all(Array.from({ length: STORAGES }, () => kind.open(proxy.url)));
      apps.push(...opened);
      const subjects = opened.map((app) => openSubject(app.options));
      await moment(subjects);
      await Promise.all(subjects.map((subject) => subject.close()));
    }
    await redisGoesAway();
    await Promise.all(apps.map((app) => app.release()));
    expect(unhandled()).toEqual([]);
  });

  it.each(KINDS)('$name: open and reading when Redis goes away, closed while it is away', async (kind) => {
    const apps = await Promise.all(Array.from({ length: STORAGES }, () => kind.open(proxy.url)));
    const subjects = apps.map((app) => openSubject(app.options));
    await Promise.all(subjects.map((subject) => subject.ready()));
    await redisGoesAway();
    await Promise.all(subjects.map((subject) => subject.close()));
    await Promise.all(apps.map((app) => app.release()));
    expect(unhandled()).toEqual([]);
  });
});
