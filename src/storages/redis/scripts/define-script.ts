import { createHash } from 'node:crypto';
import type { RedisCommands } from '../redis-client.js';
import { RedisReplyError } from '../redis-reply-error.js';
import type { RedisSessionKeys } from '../redis-keys.js';

/**
 * A script with its typed boundary (as node-redis's `defineScript`): which
 * keys it takes, its arguments built from named fields next to the source
 * that reads them, and its reply parsed into a typed result. Each script sits
 * in a file of its own under scripts/, its Lua opening with a header that
 * names its KEYS, ARGV and reply (as BullMQ's do).
 */
export interface RedisScript<A, R, K = RedisSessionKeys> {
  /** For error messages: what the script does. */
  readonly name: string;
  readonly source: string;
  readonly sha1: string;
  /** The KEYS, from the group's keys and the call's arguments (a script may need some keys only for some calls). */
  keys(keys: K, args: A): string[];
  args(args: A): string[];
  /** Throws {@link RedisReplyError} on a reply of the wrong shape. */
  parse(reply: unknown): R;
}

/** Any script, for code that runs scripts without knowing which. */
export type AnyRedisScript = RedisScript<never, unknown, never>;

export function defineScript<A, R, K = RedisSessionKeys>(definition: Omit<RedisScript<A, R, K>, 'sha1'>): RedisScript<A, R, K> {
  return { ...definition, sha1: createHash('sha1').update(definition.source).digest('hex') };
}

/** Parses a reply that must be an integer. */
export function integerReply(name: string): (reply: unknown) => number {
  return (reply) => {
    if (typeof reply !== 'number') throw new RedisReplyError(name, reply);
    return reply;
  };
}

/** Parses a reply that must be a list of strings (stream entry ids). */
export function idsReply(name: string): (reply: unknown) => string[] {
  return (reply) => {
    if (!Array.isArray(reply) || !reply.every((id) => typeof id === 'string')) throw new RedisReplyError(name, reply);
    return reply as string[];
  };
}

/** A non-negative integer as Redis returns a counter read with GET. */
export function isCount(value: unknown): value is string {
  return typeof value === 'string' && /^\d{1,19}$/.test(value);
}

/**
 * The keys of every script that appends transitions, in this order, so the
 * shared append code (APPEND_PRELUDE, appendEntry) finds them where it expects.
 */
export const transitionKeys = (keys: RedisSessionKeys): string[] => [keys.sessions, keys.events, keys.sequence, keys.origins];

/** The transition keys, then the group's quota and its side of the ledger (scripts that keep a shared limit). */
export const quotaTransitionKeys = (keys: RedisSessionKeys): string[] => [keys.sessions, keys.events, keys.sequence, keys.origins, keys.quota, keys.grants];

/** The keys of a key group's quota scripts (its side of the ledger, its quota, its sessions). */
export const groupQuotaKeys = (keys: RedisSessionKeys): string[] => [keys.grants, keys.quota, keys.sessions];

/** The keys of the scripts a reader runs. */
export const readerKeys = (keys: RedisSessionKeys): string[] => [keys.events, keys.sequence, keys.epoch];

/** Runs a script by its hash, loading it once if Redis does not know it (a new or restarted server, SCRIPT FLUSH, a moved slot). */
export function runScriptBySha<A, R, K>(client: RedisCommands, which: RedisScript<A, R, K>, keys: K, args: A): Promise<R> {
  const options = { keys: which.keys(keys, args), arguments: which.args(args) };
  return evalBySha(client, which as unknown as AnyRedisScript, options, which.parse);
}

/**
 * Runs a script by its hash, its reply parsed by `parse`; by its source if
 * Redis does not know it. One reaction on the command's promise, no async
 * frame: this runs once per transition.
 */
export function evalBySha<R>(client: RedisCommands, which: AnyRedisScript, options: { keys: string[]; arguments: string[] }, parse: (reply: unknown) => R): Promise<R> {
  let sent: Promise<unknown>;
  try {
    sent = client.evalSha(which.sha1, options);
  } catch (error) {
    // node-redis throws synchronously on a closed client.
    return Promise.reject(error);
  }
  return sent.then(parse, (error: unknown) => {
    if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
    return client.eval(which.source, options).then(parse);
  });
}
