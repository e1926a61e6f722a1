import assert from 'node:assert/strict';
import type { SessionEvent, SessionEventsMissed } from '../core/session-event.js';
import { INT64_MAX, INT64_MIN, InvalidSessionIdError, type AuthKeyId, type SessionId } from '../core/session-id.js';
import type { SessionLifetimeOptions } from '../core/session-lifetime.js';
import type { SessionLogger } from '../core/session-logger.js';
import type { SessionStorage, SessionTransitionSink } from '../core/session-storage.js';
import { SessionLimitError } from '../core/session-storage-errors.js';
import { describeError } from '../core/to-error.js';

/** What the kit asks a factory for; a storage without a lifetime policy may ignore it. */
export type SessionStorageTestOptions = Pick<SessionLifetimeOptions, 'idleTimeout' | 'maxSessions' | 'sweepInterval' | 'clock'>;

/** Builds a fresh, empty storage for one test. */
export type SessionStorageFactory = (options: SessionStorageTestOptions) => SessionStorage | Promise<SessionStorage>;

/** The test functions of the runner: jest's and vitest's globals by default; pass node:test's or mocha's. */
export interface ConformanceTestApi {
  describe(name: string, body: () => void): void;
  it(name: string, body: () => Promise<void>, timeout?: number): void;
}

export interface ConformanceOptions {
  /** The storage honours `idleTimeout`, `maxSessions` and `clock`, and has `expireIdleSessions()`: run the lifetime cases. */
  lifetime?: boolean;
  /** Per-test timeout in ms (jest and vitest); 20 s by default. */
  timeout?: number;
  /** The runner's `describe` and `it`, when they are not globals. */
  testApi?: ConformanceTestApi;
}

/** A storage with the optional parts the kit exercises when present. */
type TestedStorage = SessionStorage & { expireIdleSessions?(): Promise<number> };

/** Ids a `number` cannot tell apart, and the edges of the range. */
const EDGE_IDS: readonly SessionId[] = [INT64_MIN, INT64_MIN + 1n, -1n, 0n, 1n, 2n ** 53n, 2n ** 53n + 1n, INT64_MAX - 1n, INT64_MAX];
const KEY_A: AuthKeyId = 0x0123456789abcdefn;
const KEY_B: AuthKeyId = INT64_MIN;
const BAD_IDS: readonly unknown[] = [1, '1', null, undefined, INT64_MAX + 1n, INT64_MIN - 1n, 1.5, {}];
const CONCURRENT_CALLS = 100;

/**
 * The contract every `SessionStorage` keeps, as a test suite: results,
 * atomicity under concurrency, the 64-bit edges, auth-key scoping, bad ids,
 * announcements when the storage announces itself, and, with
 * `{ lifetime: true }`, idle expiry and the session limit on a manual clock.
 *
 * ```ts
 * describeSessionStorage('MyStorage', (options) => new MyStorage(options));
 * ```
 */
export function describeSessionStorage(name: string, factory: SessionStorageFactory, options: ConformanceOptions = {}): void {
  const api = options.testApi ?? (globalThis as unknown as Partial<ConformanceTestApi>);
  if (typeof api.describe !== 'function' || typeof api.it !== 'function') {
    throw new TypeError('describeSessionStorage needs describe() and it(): run it under jest or vitest with globals, or pass { testApi: { describe, it } }');
  }
  const { describe } = api as ConformanceTestApi;
  const timeout = options.timeout ?? 20_000;
  const it = (title: string, body: (kit: Kit) => Promise<void>, testOptions: SessionStorageTestOptions = {}) => {
    api.it!(title, async () => {
      const kit = await Kit.open(factory, testOptions);
      try {
        await body(kit);
      } finally {
        await kit.storage.close?.();
      }
    }, timeout);
  };

  describe(`${name} (SessionStorage conformance)`, () => {
    describe('results', () => {
      it('createSession is true for a new session and false for an existing one', async ({ storage }) => {
        assert.equal(await storage.createSession(1n), true);
        assert.equal(await storage.createSession(1n), false);
        assert.equal(await storage.createSession(2n), true);
      });

      it('hasSession follows creation and destruction', async ({ storage }) => {
        assert.equal(await storage.hasSession(7n), false);
        await storage.createSession(7n);
        assert.equal(await storage.hasSession(7n), true);
        await storage.destroySession(7n);
        assert.equal(await storage.hasSession(7n), false);
      });

      it('destroySession is true once, then false', async ({ storage }) => {
        assert.equal(await storage.destroySession(3n), false);
        await storage.createSession(3n);
        assert.equal(await storage.destroySession(3n), true);
        assert.equal(await storage.destroySession(3n), false);
      });

      it('count() follows live sessions over all scopes', async ({ storage }) => {
        if (storage.count === undefined) return;
        assert.equal(await storage.count(), 0);
        await storage.createSession(1n);
        await storage.createSession(1n, KEY_A);
        await storage.createSession(2n, KEY_B);
        await storage.createSession(1n);
        assert.equal(await storage.count(), 3);
        await storage.destroySession(1n, KEY_A);
        assert.equal(await storage.count(), 2);
      });
    });

    describe('64-bit ids', () => {
      it('keeps every edge id exact and distinct, scoped and unscoped', async ({ storage }) => {
        for (const id of EDGE_IDS) assert.equal(await storage.createSession(id), true, `create ${id}`);
        for (const id of EDGE_IDS) assert.equal(await storage.createSession(id, id), true, `create ${id} under auth key ${id}`);
        for (const id of EDGE_IDS) {
          assert.equal(await storage.hasSession(id), true, `has ${id}`);
          assert.equal(await storage.hasSession(id, id), true, `has ${id} under auth key ${id}`);
        }
        for (const id of EDGE_IDS) assert.equal(await storage.destroySession(id), true, `destroy ${id}`);
        for (const id of EDGE_IDS) {
          assert.equal(await storage.hasSession(id), false, `${id} destroyed`);
          assert.equal(await storage.hasSession(id, id), true, `${id} under auth key ${id} kept`);
        }
      });
    });

    describe('auth-key scope', () => {
      it('treats one session id under two auth keys and unscoped as three sessions', async ({ storage }) => {
        assert.equal(await storage.createSession(5n, KEY_A), true);
        assert.equal(await storage.hasSession(5n), false);
        assert.equal(await storage.hasSession(5n, KEY_B), false);
        assert.equal(await storage.createSession(5n, KEY_B), true);
        assert.equal(await storage.createSession(5n), true);
        assert.equal(await storage.destroySession(5n, KEY_A), true);
        assert.equal(await storage.hasSession(5n, KEY_B), true);
        assert.equal(await storage.hasSession(5n), true);
        assert.equal(await storage.destroySession(5n, KEY_A), false);
      });
    });

    describe('bad ids', () => {
      it('rejects every bad session id or auth key id with InvalidSessionIdError, never throwing, changing nothing', async ({ storage }) => {
        await storage.createSession(1n);
        for (const bad of BAD_IDS) {
          for (const call of [
            () => storage.createSession(bad as SessionId),
            () => storage.hasSession(bad as SessionId),
            () => storage.destroySession(bad as SessionId),
            () => storage.createSession(1n, bad === undefined ? (null as unknown as AuthKeyId) : (bad as AuthKeyId)),
            () => storage.destroySession(1n, bad === undefined ? (null as unknown as AuthKeyId) : (bad as AuthKeyId)),
          ]) {
            let result: Promise<boolean>;
            try {
              result = call();
            } catch (error) {
              assert.fail(`threw synchronously for ${describeValue(bad)}: ${describeError(error)}`);
            }
            await assert.rejects(result, InvalidSessionIdError, `for ${describeValue(bad)}`);
          }
        }
        assert.equal(await storage.hasSession(1n), true);
        if (storage.count !== undefined) assert.equal(await storage.count(), 1);
      });
    });

    describe('atomicity', () => {
      it(`lets exactly one of ${CONCURRENT_CALLS} concurrent creates, and one of as many destroys, succeed`, async ({ storage }) => {
        const created = await Promise.all(Array.from({ length: CONCURRENT_CALLS }, () => storage.createSession(99n, KEY_A)));
        assert.equal(created.filter(Boolean).length, 1);
        const destroyed = await Promise.all(Array.from({ length: CONCURRENT_CALLS }, () => storage.destroySession(99n, KEY_A)));
        assert.equal(destroyed.filter(Boolean).length, 1);
        assert.equal(await storage.hasSession(99n, KEY_A), false);
      });

      it('creates many distinct sessions concurrently, each exactly once', async ({ storage }) => {
        const ids = Array.from({ length: CONCURRENT_CALLS }, (_, i) => BigInt(i) * 0x1_0000_0001n - 50n);
        const created = await Promise.all([...ids, ...ids].map((id) => storage.createSession(id)));
        assert.equal(created.filter(Boolean).length, ids.length);
        if (storage.count !== undefined) assert.equal(await storage.count(), ids.length);
      });
    });

    describe('announcements (storages that announce transitions themselves)', () => {
      it('announces each own transition once, before the call resolves', async (kit) => {
        if (!kit.announces) return;
        await kit.storage.createSession(1n, KEY_A);
        assert.deepEqual(kit.lines(), ['created:1@' + KEY_A]);
        await kit.storage.createSession(1n, KEY_A);
        await kit.storage.destroySession(1n, KEY_A);
        assert.deepEqual(kit.lines(), ['created:1@' + KEY_A, 'destroyed:1@' + KEY_A]);
        await kit.storage.destroySession(1n, KEY_A);
        assert.equal(kit.events.length, 2);
        assert.equal(kit.events[1]!.reason, 'destroyed');
      });

      it('refuses a second sink', async (kit) => {
        if (!kit.announces) return;
        assert.throws(() => kit.storage.attach!(new RecordingSink()), TypeError);
      });
    });

    if (!options.lifetime) return;

    describe('session limit', () => {
      it('rejects a new session past maxSessions with SessionLimitError carrying the limit, changing nothing', async (kit) => {
        const { storage } = kit;
        assert.equal(await storage.createSession(1n), true);
        assert.equal(await storage.createSession(2n, KEY_A), true);
        assert.equal(await storage.createSession(3n, KEY_B), true);
        await assert.rejects(storage.createSession(4n), (error: unknown) => error instanceof SessionLimitError && error.limit === 3);
        await assert.rejects(storage.createSession(1n, KEY_A), SessionLimitError);
        assert.equal(await storage.hasSession(4n), false);
        assert.equal(await storage.createSession(1n), false, 'an existing session is still found');
        if (storage.count !== undefined) assert.equal(await storage.count(), 3);
        assert.equal(await storage.destroySession(2n, KEY_A), true);
        assert.equal(await storage.createSession(4n), true, 'room again after a destroy');
        if (kit.announces) assert.deepEqual(kit.lines(), ['created:1', `created:2@${KEY_A}`, `created:3@${KEY_B}`, `destroyed:2@${KEY_A}`, 'created:4']);
      }, { maxSessions: 3 });
    });

    describe('idle expiry (manual clock)', () => {
      const IDLE = 1000;
      // A sweep interval longer than any test, so only expireIdleSessions() sweeps.
      const lifetime = (clock: ManualClock): SessionStorageTestOptions => ({ idleTimeout: IDLE, clock: clock.now, sweepInterval: 3_600_000 });

      itOnManualClock('expires exactly the sessions not used within idleTimeout, announcing each once with reason expired', async (kit) => {
        const storage = kit.storage as TestedStorage;
        assert.equal(typeof storage.expireIdleSessions, 'function', 'a storage with a lifetime policy has expireIdleSessions()');
        await storage.createSession(1n);
        await storage.createSession(2n);
        await storage.createSession(3n, KEY_A);
        kit.clock.advance(IDLE * 0.6);
        assert.equal(await storage.hasSession(1n), true);
        kit.clock.advance(IDLE * 0.6);
        assert.equal(await storage.expireIdleSessions!(), 2);
        assert.equal(await storage.hasSession(1n), true, 'kept alive by hasSession');
        assert.equal(await storage.hasSession(2n), false);
        assert.equal(await storage.hasSession(3n, KEY_A), false);
        if (storage.count !== undefined) assert.equal(await storage.count(), 1);
        assert.equal(await storage.expireIdleSessions!(), 0, 'a second sweep finds nothing');
        if (kit.announces) {
          assert.deepEqual(kit.lines().slice(3).sort(), ['destroyed:2/expired', `destroyed:3@${KEY_A}/expired`]);
        }
        kit.clock.advance(IDLE * 2);
        assert.equal(await storage.expireIdleSessions!(), 1);
        if (kit.announces) assert.equal(kit.lines().at(-1), 'destroyed:1/expired');
      }, 'lifetime');

      itOnManualClock('never expires a session used within idleTimeout', async (kit) => {
        const storage = kit.storage as TestedStorage;
        await storage.createSession(8n);
        for (let step = 0; step < 20; step++) {
          kit.clock.advance(IDLE - 1);
          assert.equal(await storage.hasSession(8n), true, `step ${step}`);
          assert.equal(await storage.expireIdleSessions!(), 0);
        }
      }, 'lifetime');

      itOnManualClock('treats a lapsed session as gone before any sweep, announcing its expiry before its re-creation', async (kit) => {
        const storage = kit.storage as TestedStorage;
        await storage.createSession(4n, KEY_B);
        kit.clock.advance(IDLE * 3);
        assert.equal(await storage.hasSession(4n, KEY_B), false);
        assert.equal(await storage.destroySession(4n, KEY_B), false);
        assert.equal(await storage.createSession(4n, KEY_B), true);
        assert.equal(await storage.expireIdleSessions!(), 0);
        if (kit.announces) assert.deepEqual(kit.lines(), [`created:4@${KEY_B}`, `destroyed:4@${KEY_B}/expired`, `created:4@${KEY_B}`]);
      }, 'lifetime');

      itOnManualClock('frees room under maxSessions from lapsed sessions', async (kit) => {
        const storage = kit.storage as TestedStorage;
        await storage.createSession(1n);
        await storage.createSession(2n);
        kit.clock.advance(IDLE * 3);
        assert.equal(await storage.createSession(3n), true);
        if (storage.count !== undefined) assert.equal(await storage.count(), 1);
      }, 'lifetime-limit');

      function itOnManualClock(title: string, body: (kit: Kit) => Promise<void>, kind: 'lifetime' | 'lifetime-limit'): void {
        api.it!(title, async () => {
          const clock = new ManualClock();
          const kit = await Kit.open(factory, { ...lifetime(clock), ...(kind === 'lifetime-limit' ? { maxSessions: 2 } : {}) }, clock);
          try {
            await body(kit);
          } finally {
            await kit.storage.close?.();
          }
        }, timeout);
      }
    });
  });
}

/** A clock the kit moves by hand, so no test waits for a real timeout. */
export class ManualClock {
  private current = 1_700_000_000_000;
  readonly now = (): number => this.current;

  advance(ms: number): void {
    this.current += Math.round(ms);
  }
}

/** Records what a storage announces, as `SessionSubject` would receive it. */
export class RecordingSink implements SessionTransitionSink {
  readonly events: SessionEvent[] = [];
  readonly missed: SessionEventsMissed[] = [];
  readonly warnings: string[] = [];
  readonly logger: SessionLogger = {
    error: (message) => this.warnings.push(message),
    warn: (message) => this.warnings.push(message),
  };

  announce(event: SessionEvent): undefined {
    this.events.push(event);
    return undefined;
  }

  eventsMissed(notice: SessionEventsMissed): void {
    this.missed.push(notice);
  }
}

class Kit {
  private constructor(
    readonly storage: SessionStorage,
    readonly clock: ManualClock,
    private readonly sink: RecordingSink | undefined,
  ) {}

  static async open(factory: SessionStorageFactory, options: SessionStorageTestOptions, clock = new ManualClock()): Promise<Kit> {
    const storage = await factory(options);
    let sink: RecordingSink | undefined;
    if (typeof storage.attach === 'function') {
      sink = new RecordingSink();
      storage.attach(sink);
    }
    return new Kit(storage, clock, sink);
  }

  get announces(): boolean {
    return this.sink !== undefined;
  }

  get events(): SessionEvent[] {
    return this.sink?.events ?? [];
  }

  /** `type:sessionId[@authKeyId][/expired]` per announced event. */
  lines(): string[] {
    return this.events.map((event) => {
      const scope = event.authKeyId === undefined ? '' : `@${event.authKeyId}`;
      return `${event.type}:${event.sessionId}${scope}${event.reason === 'expired' ? '/expired' : ''}`;
    });
  }
}

function describeValue(value: unknown): string {
  return typeof value === 'bigint' ? `${value}n` : typeof value === 'string' ? JSON.stringify(value) : String(value);
}
