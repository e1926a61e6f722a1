import type { RedisCommands } from './redis-client.js';
import { dropConnection, guardOwned } from './redis-command-client.js';
import type { RedisSessionKeys } from './redis-keys.js';
import type { StreamAfter, StreamEntry, StreamStart } from './redis-stream-entry.js';
import { readerAfterScript, readerStartScript } from './scripts/reader.script.js';
import { recordLossScript } from './scripts/record-loss.script.js';
import { runScriptBySha } from './scripts/define-script.js';

/** What the event reader does on its own dedicated connection, for its streams (by index). */
export interface ReaderConnection {
  /** Entries after each stream's position (one list per stream, in order; absent for none), or null when none came within `blockMs`. */
  read(positions: readonly string[], blockMs: number, count: number): Promise<(StreamEntry[] | undefined)[] | null>;
  /** A stream's last entry id ('0-0' when empty), its sequence number so far and its loss epoch, read together. */
  start(stream: number): Promise<StreamStart>;
  /** Whether an entry follows `position` in a stream, the stream's last id, and its sequence number so far, read together. */
  after(stream: number, position: string): Promise<StreamAfter>;
  /** The instance ids of a stream's origin codes (null where unknown), read together from its group's origins hash. */
  origins(stream: number, codes: string[]): Promise<(string | null)[]>;
  /** Appends a loss entry to a stream unless Redis holds an epoch newer than `epoch`; resolves the epoch it then holds. */
  recordLoss(stream: number, epoch: bigint): Promise<{ recorded: boolean; epoch: bigint }>;
  /** Drops the connection at once (a read may be blocked on it). */
  destroy(): void;
}

/**
 * Opens a dedicated connection, duplicated from the command client, for an
 * event reader of the given key groups' streams (as BullMQ keeps a blocking
 * connection apart from its command one). `loss` is for the loss entries it
 * records. Once `closed` aborts, a connect in flight is dropped (its promise
 * rejects), and so is a connection that comes up anyway.
 */
export async function openReaderConnection(
  client: RedisCommands,
  groups: readonly RedisSessionKeys[],
  loss: { readonly origin: string; readonly maxLength: number },
  closed: AbortSignal,
): Promise<ReaderConnection> {
  closed.throwIfAborted();
  // Errors surface through the pending read; the reader reports them once per outage.
  const connection = guardOwned(client.duplicate(readerOverrides(client)), closed);
  const drop = (): void => dropConnection(connection);
  closed.addEventListener('abort', drop);
  try {
    await connection.connect();
  } catch (error) {
    closed.removeEventListener('abort', drop);
    drop();
    throw error;
  }
  const streamIndex = new Map(groups.map((keys, index) => [keys.events, index]));
  return {
    read: async (positions, blockMs, count) => {
      const streams = groups.map((keys, index) => ({ key: keys.events, id: positions[index]! }));
      const reply = await connection.xRead(streams.length === 1 ? streams[0]! : streams, { BLOCK: blockMs, COUNT: count });
      return streamEntries(reply, streamIndex, groups.length);
    },
    start: (stream) => runScriptBySha(connection, readerStartScript, groups[stream]!, undefined),
    after: (stream, position) => runScriptBySha(connection, readerAfterScript, groups[stream]!, { position }),
    recordLoss: (stream, epoch) => runScriptBySha(connection, recordLossScript, groups[stream]!, { epoch, origin: loss.origin, maxLength: loss.maxLength }),
    origins: async (stream, codes) => {
      const names = await connection.hmGet(groups[stream]!.origins, codes.map((code) => `c:${code}`));
      return names.map((name) => (typeof name === 'string' ? name : null));
    },
    destroy: () => {
      closed.removeEventListener('abort', drop);
      drop();
    },
  };
}

/**
 * The reader's own connection must not reconnect by itself: the reader
 * replaces a broken one, and one that kept retrying after the reader gave up
 * on it would linger (and, once Redis is back, stay connected for good).
 */
function readerOverrides(client: RedisCommands): object {
  const options = (client as { options?: { socket?: object; defaults?: { socket?: object } } }).options;
  // A cluster client (it has masters) configures its node connections under `defaults`.
  // Its blocking reads are bounded by the reader's own watchdog, not by a per-command timer.
  const commandOptions = { timeout: 0 };
  if ('masters' in client) {
    // A reader reads one key group, on one master: it connects to that one only, not to every master.
    return { commandOptions, minimizeConnections: true, defaults: { ...options?.defaults, socket: { ...options?.defaults?.socket, reconnectStrategy: false } } };
  }
  return { commandOptions, disableOfflineQueue: false, socket: { ...options?.socket, reconnectStrategy: false } };
}

/**
 * XREAD's reply as entries per stream (by index): node-redis gives
 * `[{ name, messages }]`, or a map by stream name under some type mappings.
 */
function streamEntries(reply: unknown, streamIndex: ReadonlyMap<string, number>, streams: number): (StreamEntry[] | undefined)[] | null {
  if (reply === null || reply === undefined) return null;
  const named: [unknown, unknown][] = Array.isArray(reply)
    ? reply.map((stream) => [(stream as { name?: unknown }).name, (stream as { messages?: unknown }).messages])
    : Object.entries(reply as Record<string, unknown>);
  const entries = new Array<StreamEntry[] | undefined>(streams);
  for (const [name, messages] of named) {
    // One stream read: its name needs no lookup.
    const index = streams === 1 ? 0 : streamIndex.get(String(name));
    if (index !== undefined && Array.isArray(messages)) entries[index] = messages as StreamEntry[];
  }
  return entries;
}
