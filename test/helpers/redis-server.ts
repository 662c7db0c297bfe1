import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { Redis } from 'ioredis';

/** A TCP port nothing listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

/**
 * A private redis-server without persistence, for tests that flush, kill or restart Redis
 * without disturbing the shared one (restarting it loses everything, as a crash would).
 */
export async function startRedis(port: number): Promise<ChildProcess> {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  const client = new Redis({ port, lazyConnect: true, retryStrategy: () => 50, maxRetriesPerRequest: null });
  client.on('error', () => {});
  await client.connect().catch(() => {});
  for (let i = 0; i < 100 && (await client.ping().catch(() => '')) !== 'PONG'; i++) await new Promise((r) => setTimeout(r, 50));
  client.disconnect();
  return child;
}
