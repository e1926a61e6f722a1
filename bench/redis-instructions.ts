/**
 * What a transition costs inside redis-server, in instructions rather than
 * seconds: redis-server runs under valgrind's callgrind, which counts the
 * instructions it executes (repeatable whatever else the machine does, where
 * CPU time on a shared 2-core machine moves by half between runs). The
 * storage's create + destroy cycles through the subject (its reader
 * included) and the bench's script floor run in turn, 1000 ids in flight;
 * the counters are zeroed after a warm-up and read after each measured run.
 * `npm run bench:instructions`. Not a bench figure: `npm run bench` measures
 * time, this explains where Redis's part of it goes.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from 'redis';
import { SessionSubject } from '../src/index.js';
import { RedisSessionStorage } from '../src/storages/redis/index.js';
import { FLOOR_SCORE, FLOOR_SCRIPT, freePort, inFlight } from './suites/redis.js';

const IN_FLIGHT = 1000;
const WARM_CYCLES = 1000;
const CYCLES = Number(process.env.INSTRUCTION_CYCLES ?? 5000);
const ROUNDS = 2;
const READY_TIMEOUT_MS = 60_000;

interface Callgrind {
  readonly url: string;
  /** Zeroes the counters. */
  zero(): void;
  /** Instructions executed since the last zero (and zeroes them). */
  dump(): number;
  stop(): Promise<void>;
}

async function startUnderCallgrind(): Promise<Callgrind> {
  const port = await freePort();
  const directory = mkdtempSync(join(tmpdir(), 'bench-callgrind-'));
  const child = spawn('valgrind', ['--tool=callgrind', `--callgrind-out-file=${join(directory, 'out.%p')}`,
    'redis-server', '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', directory], { stdio: ['ignore', 'pipe', 'pipe'] });
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`redis-server under callgrind did not start:\n${output}`)), READY_TIMEOUT_MS);
    const capture = (chunk: Buffer) => {
      output = (output + chunk.toString('utf8')).slice(-16_384);
      if (output.includes('Ready to accept connections')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout.on('data', capture);
    child.stderr.on('data', capture);
    void exited.then(() => reject(new Error(`redis-server under callgrind exited:\n${output}`)));
  });
  const control = (flag: string) => {
    const result = spawnSync('callgrind_control', [flag, String(child.pid)], { encoding: 'utf8' });
    if (result.status !== 0) throw new Error(`callgrind_control ${flag} failed: ${result.stderr}`);
  };
  let dumps = 0;
  return {
    url: `redis://127.0.0.1:${port}`,
    zero: () => control('-z'),
    dump() {
      control('-d');
      dumps++;
      const file = join(directory, `out.${child.pid}.${dumps}`);
      if (!existsSync(file)) throw new Error('callgrind wrote no dump');
      const summary = /^summary: (\d+)$/m.exec(readFileSync(file, 'utf8'));
      if (summary === null) throw new Error('callgrind dump without a summary line');
      return Number(summary[1]);
    },
    async stop() {
      child.kill('SIGTERM');
      await exited;
      process.removeListener('exit', killOnExit);
      // INSTRUCTION_KEEP=1 keeps the dumps for callgrind_annotate: where the instructions went, by function.
      if (process.env.INSTRUCTION_KEEP === '1') console.log(`callgrind dumps kept in ${directory} (out.<pid>.<n>: subject, floor, subject, floor)`);
      else rmSync(directory, { recursive: true, force: true });
    },
  };
}

async function main(): Promise<void> {
  if (spawnSync('valgrind', ['--version']).status !== 0 || spawnSync('redis-server', ['--version']).status !== 0) {
    throw new Error('bench:instructions needs valgrind and redis-server on PATH (Debian packages valgrind, redis-server)');
  }
  const server = await startUnderCallgrind();
  const storage = new RedisSessionStorage({ url: server.url, keyPrefix: 'instructions', commandTimeout: 60_000 });
  const subject = new SessionSubject(storage, { observerTimeout: 60_000 });
  subject.subscribe({ update: () => undefined });
  const floor = createClient({ url: server.url, commandOptions: { timeout: 0 } });
  try {
    await subject.ready();
    await floor.connect();
    const floorSha = await floor.scriptLoad(FLOOR_SCRIPT);
    let next = 1n;
    const variants = {
      subject: (cycles: number) => inFlight(cycles, IN_FLIGHT, async () => {
        const id = next++;
        return (await subject.createSession(id)) && subject.destroySession(id);
      }),
      floor: (cycles: number) => inFlight(cycles, IN_FLIGHT, async () => {
        const member = String(next++);
        const transition = async (mode: string) => (await floor.evalSha(floorSha, { keys: ['floor:sessions', 'floor:events'], arguments: [mode, member, FLOOR_SCORE] })) === 1;
        return (await transition('c')) && transition('d');
      }),
    };
    const results: Record<string, number[]> = { subject: [], floor: [] };
    for (let round = 0; round < ROUNDS; round++) {
      for (const [name, run] of Object.entries(variants)) {
        await run(WARM_CYCLES);
        server.zero();
        const done = await run(CYCLES);
        if (done !== CYCLES) throw new Error(`${name}: ${CYCLES - done} cycles did not change anything`);
        const perTransition = server.dump() / (2 * CYCLES);
        results[name]!.push(perTransition);
        console.log(`round ${round + 1}, ${name}: ${Math.round(perTransition)} instructions per transition`);
      }
    }
    const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
    console.log(`\nredis-server instructions per transition (callgrind), ${CYCLES} create + destroy cycles, ${IN_FLIGHT} in flight, ${ROUNDS} rounds:`);
    console.log(`  subject (reader included): ${Math.round(median(results.subject!))}`);
    console.log(`  script floor: ${Math.round(median(results.floor!))}`);
    console.log(`  ratio: ${(median(results.subject!) / median(results.floor!)).toFixed(2)}× the floor`);
  } finally {
    await subject.close();
    await floor.close();
    await server.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
