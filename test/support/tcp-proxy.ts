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
   * Holds every byte, both ways, from now until {@link heal}, which delivers
   * them in order: a partition that TCP's retransmissions outlast, so what was
   * sent during it arrives late.
   */
  hold(): void;
  /** Resets the connections that lost bytes or an end meanwhile; new ones go through as before. */
  heal(): void;
  /** Drops every connection and stops listening. */
  close(): Promise<void>;
}

const HOST = '127.0.0.1';

/** One proxied connection: the client's socket and ours to the target. */
class Link {
  /** Bytes were dropped, or a side closed, during a partition: it cannot go on. */
  broken = false;

  /** Bytes held while the network holds them, per direction, delivered on release. */
  private readonly held = new Map<Socket, Buffer[]>();

  constructor(
    readonly client: Socket,
    readonly upstream: Socket,
    partitioned: () => boolean,
    holding: () => boolean,
  ) {
    for (const [from, to] of [[client, upstream], [upstream, client]] as const) {
      from.on('data', (chunk: Buffer) => {
        if (partitioned()) this.broken = true;
        else if (holding()) this.held.set(to, [...(this.held.get(to) ?? []), chunk]);
        else to.write(chunk);
      });
      from.on('close', () => {
        if (partitioned()) this.broken = true;
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
}

export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  let partitioned = false;
  let holding = false;
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
    hold: () => {
      holding = true;
    },
    heal: () => {
      partitioned = false;
      holding = false;
      for (const link of links) {
        if (link.broken) link.reset();
        else link.release();
      }
    },
    close: async () => {
      for (const link of links) link.reset();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
