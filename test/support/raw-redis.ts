import { createClient } from 'redis';
import { pollUntil } from './wait-until';

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

/** A connection as CLIENT LIST shows it (the fields tests look at). */
export interface ClientInfo {
  id: string;
  cmd: string;
  flags: string;
  name: string;
}

/** The server's normal (not replica or pub/sub) client connections, this one included. */
export async function clientList(raw: RawClient): Promise<ClientInfo[]> {
  const text = String(await raw.sendCommand(['CLIENT', 'LIST', 'TYPE', 'normal']));
  return text.split('\n').filter((line) => line.trim() !== '').map((line) => {
    const fields = new Map(line.trim().split(' ').map((pair) => {
      const at = pair.indexOf('=');
      return [pair.slice(0, at), pair.slice(at + 1)] as const;
    }));
    return { id: fields.get('id') ?? '', cmd: fields.get('cmd') ?? '', flags: fields.get('flags') ?? '', name: fields.get('name') ?? '' };
  });
}

/** Polls CLIENT LIST (bounded): Redis announces no event when a client connects or blocks. */
export async function untilClients(raw: RawClient, check: (clients: ClientInfo[]) => boolean, what: string, timeoutMs?: number): Promise<void> {
  let last: ClientInfo[] = [];
  await pollUntil(async () => check((last = await clientList(raw))), () => `${what}; clients: ${JSON.stringify(last)}`, { timeoutMs });
}
