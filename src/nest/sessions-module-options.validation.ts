import { assertKnownOptions, describeOptionValue } from '../core/known-options.js';
import { resolveLifetime } from '../core/session-lifetime.js';
import { assertSessionStorage, type SessionStorage } from '../core/session-storage.js';
import { assertObserverTimeout } from '../core/session-subject-options.js';
import type { SessionsModuleOptions } from './sessions-module-options.interface.js';

const OPTION_KEYS = ['storage', 'idleTimeout', 'maxSessions', 'observerTimeout', 'isGlobal'];
/** A forRootAsync() factory's result: isGlobal is forRootAsync's own option, read before any factory runs. */
const RESOLVED_OPTION_KEYS = OPTION_KEYS.filter((key) => key !== 'isGlobal');

/**
 * Checks the module's options, throwing a `TypeError` that names what is
 * wrong. Nothing here falls back to a default: an options object that is not
 * one (a storage, a URL string, a number) would otherwise boot on a fresh
 * in-memory storage and quietly stop sharing sessions.
 */
export function assertModuleOptions(options: unknown, source: string, resolved = false): asserts options is SessionsModuleOptions {
  try {
    if (typeof options === 'object' && options !== null) Object.keys(options);
  } catch {
    throw new TypeError(`${source} must be an options object such as { storage }; got an object that cannot be inspected (a revoked Proxy?)`);
  }
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError(`${source} must be an options object such as { storage }; got ${describe(options)}`);
  }
  if (isStorage(options)) {
    throw new TypeError(`${source} must be an options object such as { storage }; got a storage itself: wrap it as { storage }`);
  }
  if (resolved && 'isGlobal' in options) {
    throw new TypeError(`${source} has isGlobal, which a factory cannot set (the module is defined before it runs); give it to forRootAsync({ isGlobal, useFactory }) itself`);
  }
  assertKnownOptions(options, resolved ? RESOLVED_OPTION_KEYS : OPTION_KEYS, source);
  const given = options as SessionsModuleOptions & { isGlobal?: unknown };
  if ('storage' in options && given.storage === undefined) {
    throw new TypeError(`${source} has storage: undefined (an unset configuration value?); give a storage, or leave storage out for the in-memory default`);
  }
  if (given.isGlobal !== undefined && typeof given.isGlobal !== 'boolean') {
    throw new TypeError(`${source} isGlobal must be a boolean; got ${describe(given.isGlobal)}`);
  }
  if (given.storage !== undefined) {
    assertSessionStorage(given.storage, `The storage in ${source}`);
    const misplaced = (['idleTimeout', 'maxSessions'] as const).filter((key) => given[key] !== undefined);
    if (misplaced.length > 0) {
      throw new TypeError(`${source}: ${misplaced.join(' and ')} configure the default in-memory storage; pass them to the storage you give instead`);
    }
  }
  resolveLifetime({ idleTimeout: given.idleTimeout, maxSessions: given.maxSessions }, source);
  if (given.observerTimeout !== undefined) assertObserverTimeout(given.observerTimeout, `${source} observerTimeout (ms)`);
}

const ASYNC_KEYS: ReadonlySet<string> = new Set(['imports', 'inject', 'useFactory', 'useClass', 'useExisting', 'provideInjectionTokensFrom', 'isGlobal']);

/**
 * Checks what `forRootAsync()` is given, before Nest sees it: Nest's own
 * errors for these ("targetMetatype.metatype is not a function") name
 * neither the module nor the option.
 */
export function assertAsyncModuleOptions(options: unknown): void {
  const source = 'SessionsModule.forRootAsync()';
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError(`${source} takes an object such as { useFactory, inject }; got ${describe(options)}`);
  }
  const given = options as Record<string, unknown>;
  const unknown = Object.keys(given).filter((key) => !ASYNC_KEYS.has(key));
  if (unknown.length > 0) {
    throw new TypeError(`${source} has unknown option${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}; expected imports, inject, one of useFactory, useClass or useExisting, and isGlobal`);
  }
  const ways = (['useFactory', 'useClass', 'useExisting'] as const).filter((key) => given[key] !== undefined);
  if (ways.length !== 1) {
    throw new TypeError(`${source} needs exactly one of useFactory, useClass or useExisting; got ${ways.length === 0 ? 'none' : ways.join(' and ')}`);
  }
  if (given.useFactory !== undefined && typeof given.useFactory !== 'function') {
    throw new TypeError(`${source} useFactory must be a function that returns the options ({ storage, ... }) or a promise of them; got ${describe(given.useFactory)}`);
  }
  if (given.useClass !== undefined && (typeof given.useClass !== 'function' || typeof (given.useClass.prototype as { createSessionsOptions?: unknown } | undefined)?.createSessionsOptions !== 'function')) {
    throw new TypeError(`${source} useClass must be a class with a createSessionsOptions() method; got ${typeof given.useClass === 'function' ? `${given.useClass.name || 'a class'}, which has none` : describe(given.useClass)}`);
  }
  if (given.useExisting !== undefined && !['function', 'string', 'symbol'].includes(typeof given.useExisting)) {
    throw new TypeError(`${source} useExisting must be an injection token (a class, string or symbol) of a provider with createSessionsOptions(); got ${describe(given.useExisting)}`);
  }
  if (given.inject !== undefined && !Array.isArray(given.inject)) {
    throw new TypeError(`${source} inject must be an array of injection tokens; got ${describe(given.inject)}`);
  }
  if (given.imports !== undefined && !Array.isArray(given.imports)) {
    throw new TypeError(`${source} imports must be an array of modules; got ${describe(given.imports)}`);
  }
  if (given.isGlobal !== undefined && typeof given.isGlobal !== 'boolean') {
    throw new TypeError(`${source} isGlobal must be a boolean; got ${describe(given.isGlobal)}`);
  }
}

/** Whether `value` looks like a storage; false for one that cannot be inspected (a revoked Proxy). */
export function isStorage(value: unknown): value is SessionStorage {
  try {
    return typeof (value as Partial<SessionStorage> | null)?.createSession === 'function';
  } catch {
    return false;
  }
}

/** As {@link describeOptionValue}, with the kind of a number or boolean said too (`number 42`), where a whole options object was expected. */
function describe(value: unknown): string {
  return typeof value === 'number' || typeof value === 'boolean' ? `${typeof value} ${String(value)}` : describeOptionValue(value);
}
