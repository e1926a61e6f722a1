import type { RedisCommands } from '../redis-client.js';
import type { AnyRedisScript, RedisScript } from './define-script.js';

/** Runs a script by its hash, loading it once if Redis does not know it (a new or restarted server, SCRIPT FLUSH, a moved slot). */
export async function runScriptBySha<A, R, K>(client: RedisCommands, which: RedisScript<A, R, K>, keys: K, args: A): Promise<R> {
  const options = { keys: which.keys(keys), arguments: which.args(args) };
  return which.parse(await evalBySha(client, which as unknown as AnyRedisScript, options));
}

export async function evalBySha(client: RedisCommands, which: AnyRedisScript, options: { keys: string[]; arguments: string[] }): Promise<unknown> {
  try {
    return await client.evalSha(which.sha1, options);
  } catch (error) {
    if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
    return client.eval(which.source, options);
  }
}
