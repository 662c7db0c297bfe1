import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../services/api/app.js';
import { loadConfig, type Config } from '../../services/core/config.js';
import { createCore, type Core } from '../../services/core/core.js';
import { createLogger } from '../../services/core/logger.js';

export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
/** The secret part of an API key `ft_<id>_<secret>`; base64url, so it may itself contain '_'. */
export const keySecret = (key: string): string => /^ft_[0-9a-f]{12}_(.+)$/.exec(key)![1];

export const PG_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** True when the test PostgreSQL answers; storage tests run on it too when it does. */
export async function postgresAvailable(): Promise<boolean> {
  const client = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 1_000 });
  try {
    await client.connect();
    await client.query('select 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

export const databases = async (): Promise<('sqlite' | 'postgres')[]> =>
  (await postgresAvailable()) ? ['sqlite', 'postgres'] : ['sqlite'];

export interface TestSystem {
  url: string;
  core: Core;
  app: FastifyInstance;
  config: Config;
  dataDir: string;
  keys: { a: string; b: string };
  close(): Promise<void>;
}

/**
 * A real API on a random port: real SQLite file (or a fresh PostgreSQL schema), real Redis with a
 * unique queue prefix, real HTTP. Two sites, "site-a" and "site-b", each with a key.
 */
export async function startSystem(opts: { db?: 'sqlite' | 'postgres'; env?: Record<string, string>; redisUrl?: string } = {}): Promise<TestSystem> {
  const id = randomBytes(5).toString('hex');
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ft-test-'));
  const config = loadConfig({
    DATA_DIR: dataDir,
    DATABASE_URL: opts.db === 'postgres' ? PG_URL : `sqlite:${path.join(dataDir, 'db.sqlite')}`,
    REDIS_URL: opts.redisUrl ?? REDIS_URL,
    QUEUE_PREFIX: `ft-test-${id}`,
    PORT: '0',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    ...opts.env,
  });
  const log = createLogger(config.logLevel, 'test');
  const core = await createCore(config, log, { dbSchema: opts.db === 'postgres' ? `t_${id}` : undefined });
  const app = await buildApp(core);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  (core.config as { publicUrl: string }).publicUrl = url;
  await core.services.apiKeys.createSite('site-a', 'Hospital A');
  await core.services.apiKeys.createSite('site-b', 'Hospital B');
  const keys = {
    a: (await core.services.apiKeys.createKey('site-a', 'test')).key,
    b: (await core.services.apiKeys.createKey('site-b', 'test')).key,
  };
  return {
    url, core, app, config, dataDir, keys,
    async close() {
      await app.close();
      await core.jobs.classify.queue.obliterate({ force: true }).catch(() => {});
      if (opts.db === 'postgres') {
        const client = new pg.Client({ connectionString: PG_URL });
        await client.connect();
        await client.query(`DROP SCHEMA IF EXISTS "t_${id}" CASCADE`);
        await client.end();
      }
      await core.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export async function stow(system: TestSystem, body: Buffer | Uint8Array, contentType: string, opts: { key?: string; path?: string; headers?: Record<string, string> } = {}) {
  const response = await fetch(`${system.url}${opts.path ?? '/dicomweb/studies'}`, {
    method: 'POST',
    headers: { 'content-type': contentType, authorization: `Bearer ${opts.key ?? system.keys.a}`, ...opts.headers },
    body,
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, json: text ? JSON.parse(text) : undefined };
}

/** Failure reasons (0008,1197) in a STOW response, with their Error Comment. */
export function failures(json: any): { code: number; reason: string; sop?: string }[] {
  return (json?.['00081198']?.Value ?? []).map((item: any) => ({
    code: item['00081197'].Value[0],
    reason: item['00000902']?.Value?.[0],
    sop: item['00081155']?.Value?.[0],
  }));
}

export function referenced(json: any): { sop: string; url: string; warning?: number }[] {
  return (json?.['00081199']?.Value ?? []).map((item: any) => ({
    sop: item['00081155'].Value[0],
    url: item['00081190'].Value[0],
    warning: item['00081196']?.Value?.[0],
  }));
}
