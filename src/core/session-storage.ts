import type { SessionEvent, SessionEventsMissed } from './session-event.js';
import type { AuthKeyId, SessionId } from './session-id.js';
import type { SessionLogger } from './session-logger.js';

/**
 * Where a storage that announces transitions itself sends them. `SessionSubject`
 * hands one to {@link SessionStorage.attach}.
 */
export interface SessionTransitionSink {
  /**
   * Tells every subscribed observer. Returns a promise that settles once they
   * all have, or nothing when every observer settled synchronously. Never rejects.
   */
  announce(event: SessionEvent): Promise<unknown> | undefined;
  /** Tells observers that events were lost before this instance could deliver them. */
  eventsMissed(notice: SessionEventsMissed): void;
  /** Where the storage reports what it skipped or recovered from. */
  readonly logger: SessionLogger;
  /**
   * Counts a lookup (`hasSession`) that failed in the storage's own
   * machinery (the store unreachable, a timeout), for the storage error
   * metrics: the subject does not watch lookups, the hot path, itself.
   */
  lookupFailed?(error: unknown): void;
}

/**
 * Where sessions live: the contract every storage keeps. Implement it to
 * keep sessions somewhere of your own, and check it with the conformance kit
 * (`describeSessionStorage` from `nestjs-mtproto-sessions/testing`).
 *
 * Every method takes ids as `bigint` only and rejects anything else with
 * `InvalidSessionIdError`, changing nothing. A session is identified by the
 * pair (authKeyId, sessionId); without `authKeyId` a single global scope applies,
 * separate from every auth key's.
 *
 * Each method is atomic: of many concurrent `createSession` calls for one
 * session exactly one resolves `true`, and likewise for `destroySession`.
 */
export interface SessionStorage {
  /** Resolves `true` if the session is new, `false` if it already existed. */
  createSession(sessionId: SessionId, authKeyId?: AuthKeyId): Promise<boolean>;

  /** Resolves whether the session exists. Runs on every incoming message. */
  hasSession(sessionId: SessionId, authKeyId?: AuthKeyId): Promise<boolean>;

  /** Resolves `true` if the session existed and is now gone, `false` if there was nothing to destroy. */
  destroySession(sessionId: SessionId, authKeyId?: AuthKeyId): Promise<boolean>;

  /** The number of live sessions over all scopes. */
  count?(): Promise<number>;

  /**
   * For storages whose sessions change without a call on this object: shared
   * ones (other instances) and expiring ones. Once attached, the storage
   * announces every transition to the sink itself, its own calls' included,
   * and resolves `createSession`/`destroySession` only after that announcement
   * has settled; the subject then announces nothing on its behalf. A storage
   * takes one sink: attaching a second throws.
   */
  attach?(sink: SessionTransitionSink): void;

  /**
   * Resolves once the storage can serve calls and announce every later
   * transition (a shared storage: connected, and reading its events).
   * `SessionsModule` waits for it at bootstrap; it should settle in bounded time.
   */
  ready?(): Promise<void>;

  /**
   * Resolves once the store answered a round trip; rejects (within the
   * storage's own bound) when it cannot be reached. Health checks call it; a
   * storage without it counts as always reachable.
   */
  ping?(): Promise<void>;

  /**
   * What an operator wants to see in a health check, now, as plain values: a
   * shared storage's event reader lag and the events it missed, for example.
   */
  healthDetails?(): SessionStorageHealthDetails;

  /** Releases what the storage holds (connections, timers); called on application shutdown. */
  close?(): Promise<void> | void;
}

/** {@link SessionStorage.healthDetails}: named plain values, as a health endpoint shows them. */
export interface SessionStorageHealthDetails {
  readonly [detail: string]: string | number | boolean | null;
}

/**
 * The injection token of the application's storage, named like the interface
 * (as `@nestjs/throttler`'s `ThrottlerStorage` is): `SessionsModule` provides
 * it, and `@InjectSessionStorage()` injects it.
 */
export const SessionStorage: unique symbol = Symbol('SessionStorage');

/** hasSession implementations that check ids themselves (internal; not exported from the package). */
const idCheckingLookups = new WeakSet<object>();

/**
 * Marks a storage's `hasSession` as one that checks ids itself and rejects
 * (never throws) on a bad one, so `SessionSubject` need not check them first.
 * The mark is on the method, not the class: a subclass that overrides
 * `hasSession`, or a stub put on an instance, is checked like any other storage.
 */
export function markChecksIds(hasSession: object): void {
  idCheckingLookups.add(hasSession);
}

export function checksIds(hasSession: unknown): boolean {
  return typeof hasSession === 'function' && idCheckingLookups.has(hasSession);
}

const STORAGE_METHODS = ['createSession', 'hasSession', 'destroySession'] as const;

/** Throws a `TypeError` naming `source` and what it lacks unless `storage` has the three methods of a {@link SessionStorage}. */
export function assertSessionStorage(storage: unknown, source: string): asserts storage is SessionStorage {
  if (storage === null || typeof storage !== 'object') {
    throw new TypeError(`${source} is not a SessionStorage: got ${typeof storage === 'function' ? 'a function' : String(storage)}`);
  }
  const missing = STORAGE_METHODS.filter((method) => typeof (storage as Record<string, unknown>)[method] !== 'function');
  if (missing.length > 0) throw new TypeError(`${source} is not a SessionStorage: it lacks ${missing.join(', ')}()`);
}
