import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Redis } from 'ioredis';
import type { Logger } from './logger.js';

async function answers(url: string): Promise<boolean> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, connectTimeout: 1_000, retryStrategy: () => null });
  client.on('error', () => {});
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

/**
 * `npm start` needs a Redis. Use the one at REDIS_URL; if none answers and it points at this
 * machine, start `redis-server` with append-only persistence under the data folder, so queued
 * work survives a restart. Otherwise stop with a message that says how to get one.
 */
export async function ensureRedis(url: string, dataDir: string, log: Logger): Promise<void> {
  if (await answers(url)) return;
  const parsed = new URL(url);
  const local = ['127.0.0.1', 'localhost', '::1', '[::1]'].includes(parsed.hostname);
  const hasServer = spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
  if (!local || !hasServer) {
    throw new Error(
      `No Redis answers at ${url}. Install one and start it (Debian/Ubuntu: "sudo apt-get install redis-server"; macOS: "brew install redis"; ` +
      'or "docker run -p 6379:6379 redis:7"), or set REDIS_URL to a Redis you have.',
    );
  }
  const dir = path.join(dataDir, 'redis');
  fs.mkdirSync(dir, { recursive: true });
  const port = parsed.port || '6379';
  log.info({ port, dir }, 'no Redis answered; starting redis-server with AOF persistence in the data folder');
  spawn('redis-server', [
    '--port', port, '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--appendfsync', 'everysec',
    '--save', '', '--daemonize', 'yes', '--pidfile', path.join(dir, 'redis.pid'), '--logfile', path.join(dir, 'redis.log'),
  ], { stdio: 'ignore' }).unref();
  for (let i = 0; i < 50; i++) {
    if (await answers(url)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`started redis-server but it did not answer at ${url}; see ${path.join(dir, 'redis.log')}`);
}
