/**
 * Processes that must end by themselves, run as a user runs them: the sample
 * (built from sample/ into a folder of its own) when it cannot start or is
 * told to stop, and a script that closes a RedisSessionStorage at once. Each
 * child has a bound; one still running at it is killed and the test fails.
 * They load the built package (`npm ci` builds it; after a change to src, run
 * `npm run build`), as the bench does.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import path from 'node:path';
import { describeRedis, freePort, startRedisServer, type RedisServer } from '../support/redis-server';

const ROOT = path.resolve(__dirname, '../..');
/** How long a child may take to end; a process that hangs is killed here and fails its test. */
const EXIT_BOUND_MS = 15_000;
// Each test waits for a child for up to EXIT_BOUND_MS, so jest's own 5 s default
// must not fail it first: a Nest process starting on a loaded 2-core machine took longer than 5 s in CI.
jest.setTimeout(EXIT_BOUND_MS + 5_000);

interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly output: string;
  readonly ms: number;
}

interface Child {
  /** Resolves once the output matches `pattern` (bounded). */
  untilOutput(pattern: RegExp): Promise<void>;
  kill(signal: NodeJS.Signals): void;
  readonly exited: Promise<Exit>;
}

/** Runs `node <args>` in the project root with `env` added; its exit is bounded by {@link EXIT_BOUND_MS}. */
function run(args: string[], env: Record<string, string> = {}): Child {
  const started = Date.now();
  const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, ...env, NODE_ENV: 'test' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const listeners = new Set<() => void>();
  const collect = (chunk: Buffer): void => {
    output += chunk.toString();
    for (const listener of listeners) listener();
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  const exited = new Promise<Exit>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`node ${args.join(' ')} did not exit within ${EXIT_BOUND_MS} ms; its output:\n${output}`));
    }, EXIT_BOUND_MS);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, output, ms: Date.now() - started });
    });
  });
  exited.catch(() => undefined);
  return {
    exited,
    kill: (signal) => child.kill(signal),
    untilOutput: (pattern) => new Promise<void>((resolve, reject) => {
      const check = (): void => {
        if (!pattern.test(output)) return;
        listeners.delete(check);
        resolve();
      };
      listeners.add(check);
      check();
      exited.then(
        () => reject(new Error(`exited before printing ${String(pattern)}; its output:\n${output}`)),
        reject,
      );
    }),
  };
}

/** A port something listens on, as another program holding it would. */
async function takenPort(): Promise<{ port: number; server: Server }> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return { port: address.port, server };
}

/** Nest's log lines at warn or error level (the sample logs through Nest's console logger). */
function warningsIn(output: string): string[] {
  return output.split('\n').filter((line) => /\b(WARN|ERROR)\b/.test(line));
}

describe('processes end by themselves (built package)', () => {
  let sampleDir: string;
  let sampleMain: string;

  beforeAll(() => {
    if (!existsSync(path.join(ROOT, 'dist/cjs/storages/redis/index.js'))) {
      throw new Error('the built package is missing: run `npm run build` (npm ci does it)');
    }
    // Inside the project, so that the sample's `nestjs-mtproto-sessions` resolves to this package.
    sampleDir = mkdtempSync(path.join(ROOT, '.jest-cache', 'sample-'));
    const built = spawnSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.sample.json', '--outDir', sampleDir], { cwd: ROOT, encoding: 'utf8' });
    if (built.status !== 0) throw new Error(`building the sample failed:\n${built.stdout}${built.stderr}`);
    sampleMain = path.join(sampleDir, 'main.js');
  }, 120_000);
  afterAll(() => {
    if (sampleDir !== undefined) rmSync(sampleDir, { recursive: true, force: true });
  });

  it('the sample on in-memory storage exits 1 with a message when its port is taken', async () => {
    const taken = await takenPort();
    try {
      const exit = await run([sampleMain], { PORT: String(taken.port) }).exited;
      expect(exit.code).toBe(1);
      expect(exit.output).toMatch(/Cannot start: .*EADDRINUSE/);
    } finally {
      taken.server.close();
    }
  });

  it('the sample exits 1 with a message naming the cause when REDIS_URL points where no Redis listens', async () => {
    const exit = await run([sampleMain], { REDIS_URL: `redis://127.0.0.1:${await freePort()}`, PORT: '0' }).exited;
    expect(exit.code).toBe(1);
    expect(exit.output).toMatch(/Cannot start: .*(could not connect|ECONNREFUSED)/);
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

    it('the sample with REDIS_URL exits 1 with a message when its port is taken', async () => {
      const taken = await takenPort();
      try {
        const exit = await run([sampleMain], { REDIS_URL: server.url, PORT: String(taken.port) }).exited;
        expect(exit.code).toBe(1);
        expect(exit.output).toMatch(/Cannot start: .*EADDRINUSE/);
      } finally {
        taken.server.close();
      }
    });

    it('the sample with REDIS_URL stops on SIGTERM, having logged no warning or error', async () => {
      const child = run([sampleMain], { REDIS_URL: server.url, PORT: '0', INSTANCE_ID: 'exit-test' });
      await child.untilOutput(/Listening on /);
      child.kill('SIGTERM');
      const exit = await child.exited;
      // Nest's shutdown hooks close the app, then raise the signal again to end the process with it.
      expect(exit.code === 0 || exit.signal === 'SIGTERM').toBe(true);
      expect(warningsIn(exit.output)).toEqual([]);
    });
  });
});
