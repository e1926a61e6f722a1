import type { SessionEvent } from './session-event.js';
import type { SessionStorage } from './session-storage.js';

/**
 * Metrics through the OpenTelemetry API, named by its conventions (dotted
 * names, units, no `_total`). `@opentelemetry/api` is an optional peer, loaded
 * with a dynamic import the first time a subject is built: absent, nothing is
 * measured and nothing fails; present without an SDK, its meter is a no-op.
 *
 * Counting costs a field increment: every count is kept here in plain
 * numbers and reported through observable instruments when the SDK collects,
 * so no call (least of all `hasSession`) records an instrument. Only storage
 * call durations, a histogram, are recorded as calls happen, and only for
 * `createSession`/`destroySession`.
 */

/** The parts of `@opentelemetry/api` used here, so that its types are not needed to build or use the package. */
interface Attributes { [name: string]: string }
interface ObservableResult { observe(value: number, attributes?: Attributes): void }
interface Observable { addCallback(callback: (result: ObservableResult) => void | Promise<void>): void }
interface Histogram { record(value: number, attributes?: Attributes): void }
interface Meter {
  createObservableGauge(name: string, options: { description: string; unit: string }): Observable;
  createObservableCounter(name: string, options: { description: string; unit: string }): Observable;
  createHistogram(name: string, options: { description: string; unit: string; advice?: { explicitBucketBoundaries?: number[] } }): Histogram;
}
interface MeterProvider { getMeter(name: string, version?: string): Meter }
interface OtelApi { metrics: { getMeterProvider(): MeterProvider } }

const METER_NAME = 'nestjs-mtproto-sessions';

/**
 * Bucket boundaries (s) for the storage call duration, given to the SDK as the
 * API's advice. Without them the SDK uses its defaults (0, 5, 10 … 10000),
 * made for milliseconds, and every call, from an in-memory one of a few
 * microseconds to a Redis one of a millisecond, would land in the first
 * bucket. These span 10 µs (an in-memory call with its observers) to 10 s
 * (past the default `commandTimeout` of 2 s and `observerTimeout` of 5 s), in
 * 1-2.5-5 steps. A view registered in the SDK still overrides them.
 */
export const DURATION_BUCKETS_SECONDS: readonly number[] = Object.freeze([
  0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
  0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
]);

type Counts = Map<string, { attributes: Attributes; count: number }>;

/** The storage calls whose durations are recorded. */
export type StorageOperation = 'createSession' | 'destroySession';
const OPERATION_ATTRIBUTES: Readonly<Record<StorageOperation, Attributes>> = {
  createSession: Object.freeze({ 'mtproto.session.storage.operation': 'createSession' }),
  destroySession: Object.freeze({ 'mtproto.session.storage.operation': 'destroySession' }),
};

/** Every subject's metrics; the instruments, registered once per process, report their sum. */
const live = new Set<SessionMetrics>();
/** What closed subjects counted, so that counters never go down. */
const retired = { lookups: 0, missed: 0, transitions: new Map() as Counts, observerFailures: new Map() as Counts, storageErrors: new Map() as Counts };
let durations: Histogram | undefined;
let loading: Promise<OtelApi | undefined> | undefined;
/** The meter provider the instruments were registered with. */
let registeredWith: MeterProvider | undefined;

/**
 * Loads `@opentelemetry/api` once per process (nothing when it is not
 * installed) and registers the instruments with the global meter provider;
 * again for each new subject if the global provider changed since (an SDK
 * started after an earlier subject was built), as the API's meters do not
 * follow a provider registered later.
 */
export function registerWithGlobalProvider(): void {
  loading ??= import('@opentelemetry/api').then((loaded) => loaded as unknown as OtelApi, () => undefined);
  loading.then((api) => {
    if (api === undefined) return;
    const provider = api.metrics.getMeterProvider();
    if (provider === registeredWith) return;
    registeredWith = provider;
    register(provider.getMeter(METER_NAME));
  }, () => undefined);
}

/** One subject's counts, reported under OpenTelemetry names once the API has loaded. */
export class SessionMetrics {
  /** `hasSession` calls: a plain counter, read by an observable instrument. */
  lookups = 0;
  readonly transitions: Counts = new Map();
  /** The entries of {@link transitions} by slot (see {@link transition}). */
  private readonly transitionCells: ({ attributes: Attributes; count: number } | undefined)[] = new Array(12).fill(undefined);
  readonly observerFailures: Counts = new Map();
  readonly storageErrors: Counts = new Map();
  missed = 0;

  constructor(
    readonly storage: SessionStorage,
    /** The storage's instance id: events from it are `local`, others `remote`. */
    private readonly localOrigin: string | undefined,
  ) {
    live.add(this);
    registerWithGlobalProvider();
  }

  /** Stops reporting this subject's gauges; what it counted stays in the counters. */
  dispose(): void {
    if (!live.delete(this)) return;
    retired.lookups += this.lookups;
    retired.missed += this.missed;
    merge(retired.transitions, this.transitions);
    merge(retired.observerFailures, this.observerFailures);
    merge(retired.storageErrors, this.storageErrors);
  }

  /**
   * Runs once per announced event: an array slot per (type, reason, origin),
   * so counting builds no string and looks nothing up by name once the slot
   * exists.
   */
  transition(event: SessionEvent): void {
    const remote = event.origin !== undefined && event.origin !== this.localOrigin;
    const reason = event.reason === undefined ? 0 : event.reason === 'expired' ? 2 : 1;
    const slot = (event.type === 'created' ? 0 : 6) + reason * 2 + (remote ? 1 : 0);
    const cell = this.transitionCells[slot];
    if (cell !== undefined) cell.count++;
    else this.firstTransition(slot, event, remote ? 'remote' : 'local');
  }

  private firstTransition(slot: number, event: SessionEvent, origin: 'local' | 'remote'): void {
    const reason = event.reason ?? 'none';
    const key = `${event.type}|${reason}|${origin}`;
    count(this.transitions, key, () => ({
      'mtproto.session.event.type': event.type,
      'mtproto.session.event.reason': reason,
      'mtproto.session.event.origin': origin,
    }));
    this.transitionCells[slot] = this.transitions.get(key);
  }

  eventsMissed(): void {
    this.missed++;
  }

  observerFailed(observer: string, outcome: 'error' | 'timeout'): void {
    count(this.observerFailures, `${outcome}|${observer}`, () => ({ 'mtproto.session.observer.name': observer, 'error.type': outcome }));
  }

  /** A lookup that failed in the storage: counted with the storage errors (lookups have no duration recorded). */
  lookupFailed(error: unknown): void {
    const type = error instanceof Error ? error.name : typeof error;
    count(this.storageErrors, `hasSession|${type}`, () => ({ 'mtproto.session.storage.operation': 'hasSession', 'error.type': type }));
  }

  /** A storage call's duration (s) and, when it failed, its error type. */
  storageCall(operation: StorageOperation, seconds: number, error?: unknown): void {
    if (error === undefined) {
      // Shared attributes: a call that succeeded allocates nothing here.
      durations?.record(seconds, OPERATION_ATTRIBUTES[operation]);
      return;
    }
    const type = error instanceof Error ? error.name : typeof error;
    const attributes: Attributes = { 'mtproto.session.storage.operation': operation, 'error.type': type };
    count(this.storageErrors, `${operation}|${type}`, () => attributes);
    durations?.record(seconds, attributes);
  }

  details(): Record<string, unknown> | undefined {
    try {
      return this.storage.healthDetails?.();
    } catch {
      return undefined;
    }
  }
}

function register(meter: Meter): void {
  durations = meter.createHistogram('mtproto.session.storage.operation.duration', {
    description: 'Duration of session storage calls (createSession, destroySession), with error.type when they failed',
    unit: 's',
    advice: { explicitBucketBoundaries: [...DURATION_BUCKETS_SECONDS] },
  });
  meter.createObservableGauge('mtproto.session.count', { description: 'Live sessions, as the storage counts them', unit: '{session}' })
    .addCallback(async (result) => {
      let total = 0;
      let counted = false;
      for (const metrics of live) {
        if (typeof metrics.storage.count !== 'function') continue;
        try {
          total += await metrics.storage.count();
          counted = true;
        } catch {
          // A storage that cannot count now adds nothing this time.
        }
      }
      if (counted) result.observe(total);
    });
  meter.createObservableCounter('mtproto.session.transitions', { description: 'Sessions created and destroyed, by type, reason and origin', unit: '{transition}' })
    .addCallback((result) => report(result, 'transitions'));
  meter.createObservableCounter('mtproto.session.lookups', { description: 'hasSession calls', unit: '{lookup}' })
    .addCallback((result) => result.observe(sum((metrics) => metrics.lookups) + retired.lookups));
  meter.createObservableCounter('mtproto.session.missed_events', { description: 'Notices that session events were missed (SessionEventsMissed)', unit: '{notice}' })
    .addCallback((result) => result.observe(sum((metrics) => metrics.missed) + retired.missed));
  meter.createObservableCounter('mtproto.session.observer.failures', { description: 'Observers that failed (error.type error) or timed out (error.type timeout), by observer', unit: '{failure}' })
    .addCallback((result) => report(result, 'observerFailures'));
  meter.createObservableCounter('mtproto.session.storage.errors', { description: 'Failed storage calls, by operation and error type', unit: '{error}' })
    .addCallback((result) => report(result, 'storageErrors'));
  meter.createObservableGauge('mtproto.session.reader.lag', { description: "How far behind its event stream's end the storage's reader is (shared storages)", unit: 's' })
    .addCallback((result) => {
      let lag: number | undefined;
      for (const metrics of live) {
        const value = metrics.details()?.readerLagSeconds;
        if (typeof value === 'number') lag = Math.max(lag ?? 0, value);
      }
      if (lag !== undefined) result.observe(lag);
    });
  meter.createObservableGauge('mtproto.session.storage.connected', { description: 'Whether the storage is connected (1) or not (0) (shared storages)', unit: '1' })
    .addCallback((result) => {
      let connected: number | undefined;
      for (const metrics of live) {
        const value = metrics.details()?.connected;
        if (typeof value === 'boolean') connected = Math.min(connected ?? 1, value ? 1 : 0);
      }
      if (connected !== undefined) result.observe(connected);
    });
  meter.createObservableGauge('mtproto.session.replica.within_lease', {
    description: 'Whether the local replicas answer lookups (1: seeded and within maxStaleness of their reader last hearing from the store) or lookups ask the store (0)',
    unit: '1',
  }).addCallback((result) => {
    let within: number | undefined;
    for (const metrics of live) {
      const value = metrics.details()?.localReadsWithinLease;
      if (typeof value === 'boolean') within = Math.min(within ?? 1, value ? 1 : 0);
    }
    if (within !== undefined) result.observe(within);
  });
}

function sum(of: (metrics: SessionMetrics) => number): number {
  let total = 0;
  for (const metrics of live) total += of(metrics);
  return total;
}

function count(counts: Counts, key: string, attributes: () => Attributes): void {
  const entry = counts.get(key);
  if (entry !== undefined) entry.count++;
  else counts.set(key, { attributes: attributes(), count: 1 });
}

function merge(into: Counts, from: Counts): void {
  for (const [key, { attributes, count }] of from) {
    const entry = into.get(key);
    if (entry !== undefined) entry.count += count;
    else into.set(key, { attributes, count });
  }
}

/** Observes the sum, per attribute set, of what live and closed subjects counted. */
function report(result: ObservableResult, which: 'transitions' | 'observerFailures' | 'storageErrors'): void {
  const total: Counts = new Map();
  merge(total, retired[which]);
  for (const metrics of live) merge(total, metrics[which]);
  for (const { attributes, count } of total.values()) result.observe(count, attributes);
}
