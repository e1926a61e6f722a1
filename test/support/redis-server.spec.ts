import { execFile } from 'node:child_process';
import { connect } from 'node:net';
import { promisify } from 'node:util';
import { describeRedis, startRedisCluster, startRedisServer, type RedisCluster, type RedisServer } from './redis-server';

const execFileAsync = promisify(execFile);

/** Sends PING over a raw socket and resolves with the first reply line, or rejects with the socket error. */
function ping(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    let reply = '';
    socket.once('error', reject);
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString('utf8');
      if (reply.includes('\r\n')) {
        socket.end();
        resolve(reply.split('\r\n')[0]);
      }
    });
  });
}

async function redisCli(args: string[]): Promise<string> {
  const { stdout } = await execFileAsync('redis-cli', args, { timeout: 5_000, encoding: 'utf8' });
  return stdout;
}

describeRedis('redis-server test harness', () => {
  let server: RedisServer | undefined;
  let cluster: RedisCluster | undefined;

  afterAll(async () => {
    await server?.stop();
    await cluster?.stop();
  });

  test('starts, stops and restarts a server on the same loopback port', async () => {
    server = await startRedisServer();
    expect(server.host).toBe('127.0.0.1');
    expect(server.port).not.toBe(6379);
    expect(server.url).toBe(`redis://127.0.0.1:${server.port}`);
    expect(server.isRunning).toBe(true);
    await expect(ping(server.port)).resolves.toBe('+PONG');

    await server.stop();
    expect(server.isRunning).toBe(false);
    await expect(ping(server.port)).rejects.toMatchObject({ code: 'ECONNREFUSED' });

    const port = server.port;
    await server.restart();
    expect(server.port).toBe(port);
    expect(server.isRunning).toBe(true);
    await expect(ping(server.port)).resolves.toBe('+PONG');

    await server.kill();
    expect(server.isRunning).toBe(false);
    await expect(ping(server.port)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  }, 30_000);

  test('a fixed port that is taken fails instead of moving elsewhere', async () => {
    const holder = await startRedisServer();
    try {
      await expect(startRedisServer({ port: holder.port })).rejects.toThrow(`could not bind port ${holder.port}`);
    } finally {
      await holder.stop();
    }
  }, 30_000);

  test('starts a 3-master cluster that serves a hash-tagged key', async () => {
    cluster = await startRedisCluster();
    expect(cluster.nodes).toHaveLength(3);
    expect(cluster.rootNodes).toEqual(cluster.nodes.map((node) => ({ url: node.url })));

    const port = String(cluster.nodes[0].port);
    const info = await redisCli(['-h', '127.0.0.1', '-p', port, 'cluster', 'info']);
    expect(info).toContain('cluster_state:ok');
    expect(info).toContain('cluster_known_nodes:3');
    // -c follows the MOVED redirect to whichever node owns {x}'s slot.
    expect((await redisCli(['-c', '-h', '127.0.0.1', '-p', port, 'set', '{x}a', '1'])).trim()).toBe('OK');
    expect((await redisCli(['-c', '-h', '127.0.0.1', '-p', port, 'get', '{x}a'])).trim()).toBe('1');

    await cluster.stop();
    expect(cluster.nodes.every((node) => !node.isRunning)).toBe(true);
  }, 30_000);
});
