import { createClient } from 'redis';

/**
 * A test's own node-redis connection, for probes and raw commands. It does
 * not retry against a server a test stopped on purpose (connect anew after a
 * restart), and its errors surface through its calls only.
 */
export async function connectRaw(url: string) {
  const client = createClient({ url, socket: { reconnectStrategy: false } });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

export type RawClient = Awaited<ReturnType<typeof connectRaw>>;
