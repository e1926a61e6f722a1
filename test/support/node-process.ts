/**
 * A child `node` process that must end by itself, run as a user runs it, in
 * the project root. Each has a bound; one still running at it is killed and
 * its test fails. Scripts that load `nestjs-mtproto-sessions` get the built
 * package (`npm ci` builds it; after a change to src, run `npm run build`).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

export const ROOT = path.resolve(__dirname, '../..');
/** How long a child may take to end; a process that hangs is killed here and fails its test. */
export const EXIT_BOUND_MS = 15_000;

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly output: string;
  readonly ms: number;
}

export interface Child {
  /** Resolves once the output matches `pattern` (bounded). */
  untilOutput(pattern: RegExp): Promise<void>;
  kill(signal: NodeJS.Signals): void;
  readonly exited: Promise<Exit>;
}

/** Throws, saying what to run, unless the package is built. */
export function requireBuiltPackage(): void {
  if (!existsSync(path.join(ROOT, 'dist/cjs/storages/redis/index.js'))) {
    throw new Error('the built package is missing: run `npm run build` (npm ci does it)');
  }
}

/** Runs `node <args>` in the project root with `env` added; its exit is bounded by {@link EXIT_BOUND_MS}. */
export function run(args: string[], env: Record<string, string> = {}): Child {
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
