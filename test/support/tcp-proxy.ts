/**
 * A loopback TCP proxy that a test can cut off, as a network partition does:
 * while partitioned, bytes either way are dropped, and on healing every
 * connection that lost bytes, or whose other side went away meanwhile, is
 * reset. An instance connected through it lags behind while the others go on.
 */
import { createServer, Socket, type Server } from 'node:net';

export interface TcpProxy {
  readonly port: number;
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  /** Drops every byte, both ways, from now until {@link heal}. */
  partition(): void;
  /**
   * Holds every byte, both ways (or only Redis's replies), from now until
   * {@link heal}, which delivers them in order: a partition that TCP's
   * retransmissions outlast, so what was sent during it arrives late.
   */
  hold(only?: 'replies'): void;
  /**
   * Drops every byte, both ways, of the connections whose client sent
   * `command` lately (`XREAD`: an event reader's), until
   * {@link heal}; the other connections go on. Returns how many it cut.
   * With `lastOnly`, only those whose last command was `command`.
   */
  partitionWhere(command: string, lastOnly?: boolean): number;
  /** Resets the connections that lost bytes or an end meanwhile; new ones go through as before. */
  heal(): void;
  /** Resets every connection now with a TCP RST, as a host that went away does: each client sees ECONNRESET. */
  resetAll(): void;
  /** Drops every connection and stops listening. */
  close(): Promise<void>;
}

const HOST = '127.0.0.1';

/** The name of the last command in `sent` (RESP: an array header, then the name as its first bulk string). */
function lastCommand(sent: string): string | undefined {
  let name: string | undefined;
  for (const match of sent.matchAll(/\*\d+\r\n\$\d+\r\n([^\r]*)\r\n/g)) name = match[1];
  return name;
}

/** One proxied connection: the client's socket and ours to the target. */
class Link {
  /** Bytes were dropped, or a side closed, during a partition: it cannot go on. */
  broken = false;

  /** Bytes held while the network holds them, per direction, delivered on release. */
  private readonly held = new Map<Socket, Buffer[]>();
  /** Cut off on its own (partitionWhere). */
  partitioned = false;
  /** What the client sent last, to tell an event reader's connection from the others. */
  lastSent = '';

  constructor(
    readonly client: Socket,
    readonly upstream: Socket,
    partitioned: () => boolean,
    holding: () => 'both' | 'replies' | false,
  ) {
    client.on('data', (chunk: Buffer) => {
      // A command may come in several chunks: keep the tail of what was sent (a batch script's call is a few KB).
      if (!this.partitioned) this.lastSent = (this.lastSent + chunk.toString('latin1')).slice(-16_384);
    });
    for (const [from, to] of [[client, upstream], [upstream, client]] as const) {
      from.on('data', (chunk: Buffer) => {
        if (partitioned() || this.partitioned) this.broken = true;
        else if (holding() === 'both' || (holding() === 'replies' && to === client)) this.held.set(to, [...(this.held.get(to) ?? []), chunk]);
        else to.write(chunk);
      });
      from.on('close', () => {
        if (partitioned() || this.partitioned) this.broken = true;
        else to.destroy();
      });
      from.on('error', () => undefined);
    }
  }

  /** Delivers what was held, in order. */
  release(): void {
    for (const [to, chunks] of this.held) for (const chunk of chunks) to.write(chunk);
    this.held.clear();
  }

  reset(): void {
    this.client.destroy();
    this.upstream.destroy();
  }

  /**
   * Resets the client's side with an RST (its peer gets ECONNRESET) and
   * closes ours upstream. A socket whose peer already ended it is shutting
   * down: libuv refuses to reset it, and Node then never closes its handle
   * (the process spins at exit in Environment::CleanupHandles), so it is
   * only destroyed.
   */
  abort(): void {
    if (this.client.writableEnded) this.client.destroy();
    else this.client.resetAndDestroy();
    this.upstream.destroy();
  }
}

export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  let partitioned = false;
  let holding: 'both' | 'replies' | false = false;
  const links = new Set<Link>();
  const server: Server = createServer((client) => {
    const upstream = new Socket();
    const link = new Link(client, upstream, () => partitioned, () => holding);
    links.add(link);
    client.on('close', () => links.delete(link));
    upstream.connect(targetPort, HOST);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, HOST, () => resolve());
  });
  // A test that forgets to close the proxy must not keep jest alive.
  server.unref();
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error(`unexpected proxy address ${String(address)}`);
  return {
    port: address.port,
    url: `redis://${HOST}:${address.port}`,
    partition: () => {
      partitioned = true;
    },
    hold: (only) => {
      holding = only ?? 'both';
    },
    partitionWhere: (command, lastOnly = false) => {
      let cut = 0;
      for (const link of links) {
        const sent = link.lastSent.toUpperCase();
        const wanted = command.toUpperCase();
        if (lastOnly ? lastCommand(sent) !== wanted : !sent.includes(`\r\n${wanted}\r\n`)) continue;
        link.partitioned = true;
        cut++;
      }
      return cut;
    },
    heal: () => {
      partitioned = false;
      holding = false;
      for (const link of links) {
        link.partitioned = false;
        if (link.broken) link.reset();
        else link.release();
      }
    },
    resetAll: () => {
      for (const link of links) link.abort();
    },
    close: async () => {
      for (const link of links) link.reset();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
