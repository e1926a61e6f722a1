/**
 * The bench's small shared harness: options, suites and tasks, warm-up and
 * rounds, median and spread, child processes, and the table / JSON output.
 *
 * Every figure is reported beside a baseline measured in the same run, in the
 * same process, interleaved round by round with it, so that the ratio does not
 * depend on the machine's mood when the bench started.
 */
import { fork } from 'node:child_process';
import os from 'node:os';

// ---------------------------------------------------------------- options

export type Mode = 'quick' | 'default' | 'full';

export interface BenchOptions {
  /** `quick`: tiny sizes, one round, seconds (what the jest test runs). `full`: default plus capacity. */
  readonly mode: Mode;
  /** Whether the 10^8 capacity fill runs (`--capacity`, or `--full`). */
  readonly capacity: boolean;
  /** Print JSON instead of the table. */
  readonly json: boolean;
  /** Run only these suites (`--only a,b`); every suite when undefined. */
  readonly only: readonly string[] | undefined;
  /** Timed rounds per measurement (the median of them is reported). */
  readonly rounds: number;
  /** Untimed rounds before the timed ones. */
  readonly warmup: number;
  /** Rounds of the costly memory and fill measurements, each in a fresh process. */
  readonly memoryRounds: number;
}

export const USAGE = `Usage: npm run bench -- [--quick | --full] [--capacity] [--json] [--only <suite>[,<suite>...]] [--rounds <n>]

  --quick      tiny sizes, one round: a smoke run of every figure (seconds)
  --full       the default figures plus the 10^8 capacity fill
  --capacity   add the 10^8 capacity fill to the chosen mode
  --json       print one JSON object with every figure instead of the table
  --only       run only the named suites (see the list below)
  --rounds     timed rounds per measurement (default 7; quick 1)
`;

export function parseOptions(argv: readonly string[]): BenchOptions {
  let mode: Mode = 'default';
  let capacity = false;
  let json = false;
  let only: string[] | undefined;
  let rounds: number | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    switch (arg) {
      case '--quick':
        mode = 'quick';
        break;
      case '--full':
        mode = 'full';
        capacity = true;
        break;
      case '--capacity':
        capacity = true;
        break;
      case '--json':
        json = true;
        break;
      case '--only':
        only = (argv[++i] ?? '').split(',').filter((name) => name !== '');
        if (only.length === 0) throw new UsageError('--only needs a suite name');
        break;
      case '--rounds':
        rounds = Number(argv[++i]);
        if (!Number.isSafeInteger(rounds) || rounds < 1) throw new UsageError('--rounds needs a positive integer');
        break;
      default:
        throw new UsageError(`unknown argument ${JSON.stringify(arg)}`);
    }
  }
  const quick = mode === 'quick';
  return {
    mode,
    capacity,
    json,
    only,
    rounds: rounds ?? (quick ? 1 : 7),
    warmup: quick ? 0 : 2,
    memoryRounds: quick ? 1 : 3,
  };
}

export class UsageError extends Error {}

/** The arguments that reproduce `options` in a child process. */
function optionArgs(options: BenchOptions): string[] {
  const args = [options.mode === 'quick' ? '--quick' : options.mode === 'full' ? '--full' : ''];
  if (options.capacity && options.mode !== 'full') args.push('--capacity');
  args.push('--rounds', String(options.rounds));
  return args.filter((arg) => arg !== '');
}

// ---------------------------------------------------------------- figures

export type Better = 'higher' | 'lower';
export type Unit = 'ops/s' | 'events/s' | 'cycles/s' | 'B/session' | 's' | 'ms' | 'µs' | 'cmd/lookup' | 'cmd/transition' | 'share';

export interface Stats {
  median: number;
  min: number;
  max: number;
  samples: number[];
}

/** What a figure should reach: a ratio to its baseline, and/or an absolute bound (≥ when higher is better, ≤ when lower). */
export interface Target {
  ratio?: number;
  value?: number;
}

/** A figure as a suite reports it: raw samples. */
export interface FigureInput {
  /** Stable id, `<suite>.<name>`; the JSON keys on it and the quick test checks it. */
  id: string;
  label: string;
  unit: Unit;
  better: Better;
  /** Samples of the figure (one per round); `null` with `unavailable` when it cannot be measured here. */
  value: number[] | null;
  /** The raw baseline measured in the same run. */
  baseline: { label: string; samples: number[] } | null;
  target?: Target;
  /** Why the figure is n/a (a feature not there yet, a limit hit). */
  unavailable?: string;
  note?: string;
  params?: Record<string, string | number | boolean>;
}

/** A figure as printed: statistics, ratio and target verdict. */
export interface Figure {
  suite: string;
  id: string;
  label: string;
  unit: Unit;
  better: Better;
  value: Stats | null;
  baseline: { label: string; stats: Stats } | null;
  /**
   * How many times better than the baseline, > 1 being better whichever way
   * `better` points: the median of the per-round ratios when value and
   * baseline were measured in the same rounds, else median against median.
   */
  ratio: number | null;
  target: (Target & { text: string }) | null;
  /** Whether the target is met; null without a target or a value. */
  met: boolean | null;
  unavailable: string | null;
  note: string | null;
  params: Record<string, string | number | boolean>;
}

export function stats(samples: readonly number[]): Stats {
  if (samples.length === 0) throw new Error('no samples');
  const sorted = [...samples].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  const median = sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
  return { median, min: sorted[0], max: sorted[sorted.length - 1], samples: [...samples] };
}

export function toFigure(suite: string, input: FigureInput): Figure {
  const value = input.value === null || input.value.length === 0 ? null : stats(input.value);
  const baseline = input.baseline === null ? null : { label: input.baseline.label, stats: stats(input.baseline.samples) };
  let ratio: number | null = null;
  if (value !== null && baseline !== null) {
    const advantage = (figure: number, base: number) => (input.better === 'higher' ? figure / base : base / figure);
    // Rounds are paired (measured back to back): the median of their ratios resists
    // the machine getting faster or slower during the run better than a ratio of medians.
    ratio =
      value.samples.length === baseline.stats.samples.length
        ? stats(value.samples.map((sample, round) => advantage(sample, baseline.stats.samples[round]))).median
        : advantage(value.median, baseline.stats.median);
  }
  const target = input.target === undefined ? null : { ...input.target, text: targetText(input.target, input.better, input.unit) };
  let met: boolean | null = null;
  if (target !== null && value !== null) {
    met = true;
    if (target.ratio !== undefined) met &&= ratio !== null && ratio >= target.ratio;
    if (target.value !== undefined) met &&= input.better === 'higher' ? value.median >= target.value : value.median <= target.value;
  }
  return {
    suite,
    id: input.id,
    label: input.label,
    unit: input.unit,
    better: input.better,
    value,
    baseline,
    ratio,
    target,
    met,
    unavailable: value === null ? (input.unavailable ?? 'not measured') : null,
    note: input.note ?? null,
    params: input.params ?? {},
  };
}

function targetText(target: Target, better: Better, unit: Unit): string {
  const parts: string[] = [];
  // Printed as the measured ratios are (two decimals), so a target such as 1 / 1.5 reads 0.67, not 0.6666666666666666.
  if (target.ratio !== undefined) parts.push(`≥ ${Number(target.ratio.toFixed(2))}×`);
  if (target.value !== undefined) parts.push(`${better === 'higher' ? '≥' : '≤'} ${format(target.value, unit)}`);
  return parts.join(', ');
}

// ---------------------------------------------------------------- suites and tasks

/** A group of figures, run in a fresh child process of its own. */
export interface Suite {
  /** What `--only` selects it by. */
  readonly name: string;
  readonly description: string;
  run(ctx: SuiteContext): Promise<void>;
}

/** A JSON-serialisable value, for what crosses a process boundary. */
export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

export type Task = (params: Json, options: BenchOptions) => Promise<Json>;

const tasks = new Map<string, Task>();

/**
 * Registers a task that `ctx.isolated(name, params)` runs in a fresh
 * `node --expose-gc` process (for memory figures, which other allocations
 * would disturb). Call it at module top level, so the child finds it.
 */
export function defineTask(name: string, task: Task): string {
  if (tasks.has(name)) throw new Error(`task ${name} defined twice`);
  tasks.set(name, task);
  return name;
}

export interface RateVariant {
  /** Operations one call of `run` performs. */
  ops: number;
  run(): Promise<unknown> | unknown;
  /**
   * Called right before each timed round (not the warm-up ones), outside the
   * timing: to read counters (CPU time, a server's statistics) that
   * {@link afterRound} reads again, so a variant can report per-round costs
   * beside its rate.
   */
  beforeRound?(): Promise<unknown> | unknown;
  /** Called right after each timed round, outside the timing (see {@link beforeRound}). */
  afterRound?(): Promise<unknown> | unknown;
}

export interface SuiteContext {
  readonly options: BenchOptions;
  readonly quick: boolean;
  /** The size for the current mode. */
  pick<T>(sizes: { quick: T; default: T }): T;
  /** A progress line on stderr (stdout carries only the table or the JSON). */
  progress(message: string): void;
  figure(input: FigureInput): void;
  /**
   * Runs every variant `warmup` times untimed, then `rounds` times timed,
   * interleaved (the order reversed every other round), after forced garbage
   * collections, and returns each
   * variant's operations per second, one sample per round. A variant's
   * `beforeRound` / `afterRound`, when it has them, run around each of its
   * timed rounds, untimed.
   */
  rates<K extends string>(variants: Record<K, RateVariant>, rounds?: number): Promise<Record<K, number[]>>;
  /** Runs a task registered with {@link defineTask} in a fresh `node --expose-gc` process. */
  isolated<R extends Json>(task: string, params: Json): Promise<R>;
}

function createContext(suite: Suite, options: BenchOptions, figures: Figure[]): SuiteContext {
  const quick = options.mode === 'quick';
  return {
    options,
    quick,
    pick: (sizes) => (quick ? sizes.quick : sizes.default),
    progress: (message) => process.stderr.write(`[bench:${suite.name}] ${message}\n`),
    figure: (input) => {
      if (!input.id.startsWith(`${suite.name}.`)) throw new Error(`figure id ${input.id} must start with "${suite.name}."`);
      figures.push(toFigure(suite.name, input));
    },
    rates: (variants, rounds = options.rounds) => measureRates(variants, options.warmup, rounds),
    isolated: (task, params) => runChild(['--task', task, '--params', JSON.stringify(params), ...optionArgs(options)]),
  };
}

async function measureRates<K extends string>(variants: Record<K, RateVariant>, warmup: number, rounds: number): Promise<Record<K, number[]>> {
  const names = Object.keys(variants) as K[];
  const samples = Object.fromEntries(names.map((name) => [name, [] as number[]])) as Record<K, number[]>;
  // Whatever setting up left to collect is collected now, not by background threads during a round.
  await collectGarbage();
  for (let round = 0; round < warmup; round++) {
    for (const name of names) await variants[name].run();
  }
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? names : [...names].reverse();
    for (const name of order) {
      const variant = variants[name];
      await variant.beforeRound?.();
      const start = process.hrtime.bigint();
      await variant.run();
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      await variant.afterRound?.();
      samples[name].push(variant.ops / seconds);
    }
  }
  return samples;
}

// ---------------------------------------------------------------- memory

/** Bytes this process holds in the JS heap and outside it (typed arrays, buffers: `external` includes `arrayBuffers`). */
export function heldBytes(): number {
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.external;
}

/** Full, forced garbage collections until the figure settles (array buffers are swept concurrently). */
export async function collectGarbage(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('run the bench with node --expose-gc (npm run bench does)');
  for (let i = 0; i < 4; i++) {
    gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
}

// ---------------------------------------------------------------- processes

type ChildMessage = { ok: true; result: Json } | { ok: false; error: string };

const CHILD_EXEC_ARGV = ['--expose-gc', '--max-old-space-size=16384'];

function runChild<R extends Json>(args: string[]): Promise<R> {
  return new Promise<R>((resolve, reject) => {
    const child = fork(process.argv[1], args, { execArgv: CHILD_EXEC_ARGV, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    let message: ChildMessage | undefined;
    child.on('message', (received) => {
      message = received as ChildMessage;
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (message?.ok) resolve(message.result as R);
      else if (message !== undefined) reject(new Error(message.error));
      else reject(new Error(`child ${args.slice(0, 2).join(' ')} exited with ${signal ?? code} before reporting`));
    });
  });
}

function reply(message: ChildMessage): Promise<void> {
  return new Promise((resolve, reject) => {
    process.send!(message, (error: Error | null) => (error ? reject(error) : resolve()));
  });
}

/** The entry point of every process of the bench: the orchestrator, a suite's child or a task's child. */
export async function main(suites: readonly Suite[], argv: readonly string[]): Promise<number> {
  if (argv[0] === '--task' || argv[0] === '--suite') {
    const kind = argv[0];
    const name = argv[1];
    try {
      if (kind === '--task') {
        const task = tasks.get(name);
        if (task === undefined) throw new Error(`no task ${name}`);
        const params = JSON.parse(argv[3]) as Json;
        await reply({ ok: true, result: await task(params, parseOptions(argv.slice(4))) });
      } else {
        const suite = suites.find((candidate) => candidate.name === name);
        if (suite === undefined) throw new Error(`no suite ${name}`);
        const figures: Figure[] = [];
        await suite.run(createContext(suite, parseOptions(argv.slice(2)), figures));
        await reply({ ok: true, result: figures as unknown as Json });
      }
    } catch (error) {
      await reply({ ok: false, error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
    }
    // Timers a storage left behind must not keep a child alive.
    process.exit(0);
  }

  let options: BenchOptions;
  try {
    options = parseOptions(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`${error.message}\n\n${USAGE}\nSuites: ${suites.map((suite) => suite.name).join(', ')}\n`);
    return 2;
  }
  const unknown = (options.only ?? []).filter((name) => !suites.some((suite) => suite.name === name));
  if (unknown.length > 0) {
    process.stderr.write(`unknown suite ${unknown.join(', ')}; suites: ${suites.map((suite) => suite.name).join(', ')}\n`);
    return 2;
  }
  const selected = suites.filter((suite) => options.only === undefined || options.only.includes(suite.name));
  const started = Date.now();
  const [loadAverage] = os.loadavg();
  const figures: Figure[] = [];
  const errors: { suite: string; error: string }[] = [];
  for (const suite of selected) {
    process.stderr.write(`[bench] suite ${suite.name}: ${suite.description}\n`);
    try {
      figures.push(...(await runChild<Json>(['--suite', suite.name, ...optionArgs(options)]) as unknown as Figure[]));
    } catch (error) {
      const text = error instanceof Error ? error.message : String(error);
      errors.push({ suite: suite.name, error: text });
      process.stderr.write(`[bench] suite ${suite.name} failed: ${text}\n`);
    }
  }
  const report: Report = {
    machine: machine(loadAverage),
    options: { mode: options.mode, capacity: options.capacity, rounds: options.rounds, warmup: options.warmup, memoryRounds: options.memoryRounds },
    suites: selected.map((suite) => suite.name),
    seconds: Math.round((Date.now() - started) / 100) / 10,
    figures: Object.fromEntries(figures.map((figure) => [figure.id, figure])),
    errors,
  };
  process.stdout.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
  return errors.length === 0 ? 0 : 1;
}

// ---------------------------------------------------------------- output

export interface Report {
  /** `loadAverage`: the 1-minute load average when the run started; other work on the machine shows in the spreads. */
  machine: { node: string; v8: string; cpu: string; cores: number; memoryGiB: number; platform: string; loadAverage: number };
  options: { mode: Mode; capacity: boolean; rounds: number; warmup: number; memoryRounds: number };
  suites: string[];
  seconds: number;
  figures: Record<string, Figure>;
  errors: { suite: string; error: string }[];
}

function machine(loadAverage: number): Report['machine'] {
  const cpus = os.cpus();
  return {
    node: process.version,
    v8: process.versions.v8,
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    platform: `${os.platform()} ${os.arch()}`,
    loadAverage: Math.round(loadAverage * 100) / 100,
  };
}

export function format(value: number, unit: Unit): string {
  switch (unit) {
    case 'ops/s':
    case 'events/s':
    case 'cycles/s': {
      const suffix = unit.slice(0, -2);
      if (value >= 1e6) return `${number(value / 1e6)} M ${suffix}/s`;
      if (value >= 1e3) return `${number(value / 1e3)} k ${suffix}/s`;
      return `${number(value)} ${suffix}/s`;
    }
    case 'B/session':
      return `${number(value)} B`;
    case 's':
      return `${number(value)} s`;
    case 'ms':
      return `${number(value)} ms`;
    case 'µs':
      return `${number(value)} µs`;
    case 'cmd/lookup':
      return `${number(value)} cmd/lookup`;
    case 'cmd/transition':
      return `${number(value)} cmd/transition`;
    case 'share':
      return number(value);
  }
}

/** Three significant digits, without exponents: 0.0123, 1.23, 123, 1,234. */
function number(value: number): string {
  return Math.abs(value) >= 1000 ? Math.round(value).toLocaleString('en-US') : String(Number(value.toPrecision(3)));
}

function spread(figure: Figure): string {
  if (figure.value === null) return '';
  const { min, max, median, samples } = figure.value;
  if (samples.length < 2) return 'one sample';
  const relative = median === 0 ? 0 : ((max - min) / 2 / median) * 100;
  return `${format(min, figure.unit)} – ${format(max, figure.unit)} (±${relative.toFixed(1)}%)`;
}

export function formatReport(report: Report): string {
  const { machine: m, options: o } = report;
  const lines = [
    `nestjs-mtproto-sessions bench: ${o.mode} mode${o.capacity && o.mode !== 'full' ? ' + capacity' : ''}, ${o.rounds} round(s) after ${o.warmup} warm-up, memory figures ${o.memoryRounds} process(es) each; ${report.seconds} s`,
    `Node ${m.node} (V8 ${m.v8}), ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, ${m.platform}; load average ${m.loadAverage} at the start`,
    `Value and baseline: medians over rounds. Ratio: how many times better than the baseline (> 1 is better), the median of the per-round ratios. Spread: the value's min – max over rounds.`,
    '',
    '| figure | value | baseline | ratio | spread | target |',
    '| --- | --- | --- | --- | --- | --- |',
  ];
  for (const figure of Object.values(report.figures)) {
    const value = figure.value === null ? `n/a (${figure.unavailable})` : format(figure.value.median, figure.unit);
    const baseline = figure.baseline === null ? '' : `${format(figure.baseline.stats.median, figure.unit)} (${figure.baseline.label})`;
    const ratio = figure.ratio === null ? '' : `${figure.ratio.toFixed(2)}×`;
    const target = figure.target === null ? '' : `${figure.target.text}${figure.met === null ? '' : figure.met ? ' ✓' : ' ✗'}`;
    const label = figure.note === null ? figure.label : `${figure.label} (${figure.note})`;
    lines.push(`| ${label} | ${value} | ${baseline} | ${ratio} | ${spread(figure)} | ${target} |`);
  }
  for (const { suite, error } of report.errors) lines.push('', `suite ${suite} FAILED: ${error}`);
  return `${lines.join('\n')}\n`;
}
