import { InMemorySessionStorage, type SessionsModuleOptions } from 'nestjs-mtproto-sessions';
import { RedisSessionStorage } from 'nestjs-mtproto-sessions/redis';

/**
 * The sample's storage, from the environment:
 * - `REDIS_URL` (e.g. `redis://127.0.0.1:6379`): sessions in Redis, shared by
 *   every instance started with the same URL; in memory when unset.
 * - `IDLE_TIMEOUT` (ms): sessions unused this long are destroyed (reason `expired`).
 * - `MAX_SESSIONS`: `PUT /sessions/:id` past it answers 503 with the limit.
 * - `INSTANCE_ID`: how this instance names itself in events (random by default).
 */
export function sessionsOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): SessionsModuleOptions {
  const lifetime = {
    idleTimeout: positiveInteger(env, 'IDLE_TIMEOUT'),
    maxSessions: positiveInteger(env, 'MAX_SESSIONS'),
  };
  const instanceId = env.INSTANCE_ID || undefined;
  if (env.REDIS_URL) return { storage: new RedisSessionStorage({ url: env.REDIS_URL, instanceId, ...lifetime }) };
  return { storage: new InMemorySessionStorage({ instanceId, ...lifetime }) };
}

function positiveInteger(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const text = env[name];
  if (text === undefined || text === '') return undefined;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value <= 0) throw new TypeError(`${name} must be a positive integer; got ${JSON.stringify(text)}`);
  return value;
}
