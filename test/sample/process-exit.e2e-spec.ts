/**
 * The sample (built from sample/ into a folder of its own, loading the built
 * package) ends by itself, run as a user runs it: when it cannot start, and
 * when it is told to stop.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import path from 'node:path';
import { EXIT_BOUND_MS, requireBuiltPackage, ROOT, run } from '../support/node-process';
import { describeRedis, freePort, startRedisServer, type RedisServer } from '../support/redis-server';

// Each test waits for a child for up to EXIT_BOUND_MS, so jest's own 5 s default
// must not fail it first: a Nest process starting on a loaded 2-core machine took longer than 5 s in CI.
jest.setTimeout(EXIT_BOUND_MS + 5_000);

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

describe('the sample process ends by itself (built package)', () => {
  let sampleDir: string;
  let sampleMain: string;

  beforeAll(() => {
    requireBuiltPackage();
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

  describeRedis('with a real redis-server', () => {
    let server: RedisServer;
    beforeAll(async () => {
      server = await startRedisServer();
    });
    afterAll(async () => {
      await server?.stop();
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
