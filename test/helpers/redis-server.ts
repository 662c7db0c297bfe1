import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { Redis } from 'ioredis';

/**
 * A TCP port nothing listens on right now, for a child process to listen on. Drawn from below
 * the kernel's ephemeral range (32768–60999 here): a port the OS hands out itself (listen(0)) can
 * be taken by any outgoing connection (Redis, PostgreSQL, HTTP) in the seconds before the child
 * binds it, which made process tests fail with EADDRINUSE on a busy machine.
 */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    const free = await new Promise<boolean>((resolve) => {
      const server = net.createServer();
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
    });
    if (free) return port;
  }
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
