import { resolveLifetime } from '../core/session-lifetime.js';
import { assertSessionStorage, type SessionStorage } from '../core/session-storage.js';
import type { SessionsModuleOptions } from './sessions-module-options.interface.js';

const OPTION_KEYS: ReadonlySet<string> = new Set(['storage', 'idleTimeout', 'maxSessions', 'isGlobal']);

/**
 * Checks the module's options, throwing a `TypeError` that names what is
 * wrong. Nothing here falls back to a default: an options object that is not
 * one (a storage, a URL string, a number) would otherwise boot on a fresh
 * in-memory storage and quietly stop sharing sessions.
 */
export function assertModuleOptions(options: unknown, source: string): asserts options is SessionsModuleOptions {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError(`${source} must be an options object such as { storage }; got ${describe(options)}`);
  }
  if (isStorage(options)) {
    throw new TypeError(`${source} must be an options object such as { storage }; got a storage itself: wrap it as { storage }`);
  }
  const unknown = Object.keys(options).filter((key) => !OPTION_KEYS.has(key));
  if (unknown.length > 0) {
    throw new TypeError(`${source} has unknown option${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}; expected storage, idleTimeout, maxSessions or isGlobal`);
  }
  const given = options as SessionsModuleOptions;
  if (given.storage !== undefined) assertSessionStorage(given.storage, `The storage in ${source}`);
  if (given.storage !== undefined) {
    const misplaced = (['idleTimeout', 'maxSessions'] as const).filter((key) => given[key] !== undefined);
    if (misplaced.length > 0) {
      throw new TypeError(`${source}: ${misplaced.join(' and ')} configure the default in-memory storage; pass them to the storage you give instead`);
    }
  }
  resolveLifetime({ idleTimeout: given.idleTimeout, maxSessions: given.maxSessions }, source);
}

export function isStorage(value: unknown): value is SessionStorage {
  return typeof (value as Partial<SessionStorage> | null)?.createSession === 'function';
}

function describe(value: unknown): string {
  if (typeof value === 'string') return `the string ${JSON.stringify(value)}`;
  if (Array.isArray(value)) return 'an array';
  return value === null ? 'null' : `${typeof value} ${String(value)}`;
}
