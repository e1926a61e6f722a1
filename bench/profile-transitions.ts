/**
 * Where a Redis transition's Node CPU goes: create + destroy cycles through
 * the subject, 1000 ids in flight, on a redis-server of its own, for a few
 * seconds, under V8's CPU profiler. `npm run bench:profile` writes the
 * profile to profiles/ (open it in Chrome DevTools, or read the summary this
 * prints: self and inclusive time by function, garbage collection apart).
 * Not a figure: the bench (`--only redis`) measures, this explains.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';
import { SessionSubject } from '../src/index.js';
import { RedisSessionStorage } from '../src/storages/redis/index.js';
import { startRedisServer } from './suites/redis.js';

const IN_FLIGHT = 1000;
const SECONDS = Number(process.env.PROFILE_SECONDS ?? 6);
const OUT = 'profiles';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly children?: readonly number[];
}
interface Profile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

async function main(): Promise<void> {
  const server = await startRedisServer();
  const storage = new RedisSessionStorage({ url: server.url, keyPrefix: 'profile' });
  const subject = new SessionSubject(storage);
  try {
    await subject.ready();
    // Warm: the scripts cached, the code optimised, before the profile starts.
    await cycles(2);
    const inspector = new Session();
    inspector.connect();
    await inspector.post('Profiler.enable');
    await inspector.post('Profiler.start');
    const cpu = process.cpuUsage();
    const done = await cycles(SECONDS);
    const used = process.cpuUsage(cpu);
    const { profile } = (await inspector.post('Profiler.stop')) as unknown as { profile: Profile };
    inspector.disconnect();
    mkdirSync(OUT, { recursive: true });
    const file = join(OUT, `transitions-${Date.now()}.cpuprofile`);
    writeFileSync(file, JSON.stringify(profile));
    console.log(`${done} cycles in ${SECONDS} s, ${IN_FLIGHT} in flight: ${(done / SECONDS).toFixed(0)} cycles/s, `
      + `Node CPU ${((used.user + used.system) / (2 * done)).toFixed(1)} µs per transition (profiler on); profile: ${file}`);
    summarise(profile);
  } finally {
    await subject.close();
    await server.stop();
  }

  async function cycles(seconds: number): Promise<number> {
    let next = BigInt(Date.now()) * 1000n;
    let count = 0;
    const end = performance.now() + seconds * 1000;
    await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
      while (performance.now() < end) {
        const id = next++;
        if (!(await subject.createSession(id)) || !(await subject.destroySession(id))) throw new Error(`session ${id}: a transition did not happen`);
        count++;
      }
    }));
    return count;
  }
}

/** Self time by function, and inclusive time by source file, as shares of the samples. */
function summarise(profile: Profile): void {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const time = new Map<number, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const delta = profile.timeDeltas[i] ?? 0;
    time.set(id, (time.get(id) ?? 0) + delta);
    total += delta;
  });
  const where = (node: ProfileNode) => node.callFrame.url.replace(/^.*\/(node_modules|dist-bench)\//, '').replace(/^node:.*/, 'node:*') || node.callFrame.functionName;
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  for (const [id, spent] of time) {
    const node = byId.get(id)!;
    const name = `${node.callFrame.functionName || '(anonymous)'} ${where(node)}:${node.callFrame.lineNumber + 1}`;
    self.set(name, (self.get(name) ?? 0) + spent);
    const files = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) files.add(where(byId.get(at)!));
    for (const file of files) inclusive.set(file, (inclusive.get(file) ?? 0) + spent);
  }
  const top = (shares: Map<string, number>, count: number) => [...shares].sort((a, b) => b[1] - a[1]).slice(0, count)
    .map(([name, spent]) => `${((100 * spent) / total).toFixed(1).padStart(5)} %  ${name}`).join('\n');
  console.log(`\nself time, top 25:\n${top(self, 25)}\n\ninclusive time by file, top 25:\n${top(inclusive, 25)}`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});

