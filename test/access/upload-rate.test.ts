import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { RateLimitRepository } from '../../services/core/repositories/rate-limit.repository.js';
import { REDIS_URL } from '../helpers/system.js';

/** Per-key upload rate (UPLOADS_PER_KEY_PER_MIN): counted in Redis per minute, shared by API processes, each counter expiring. */
describe('upload rate per API key', () => {
  const redis = new Redis(REDIS_URL);
  const prefix = `ft-rate-${randomBytes(4).toString('hex')}`;
  const limits = new RateLimitRepository(redis, prefix);
  afterAll(async () => {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
  });

  it('lets `perMinute` uploads through, then says how many seconds until the next minute; the counter expires', async () => {
    const now = Date.UTC(2026, 10, 30, 12, 0, 15); // 45 s before the next minute
    for (let i = 0; i < 3; i++) expect(await limits.countUpload('key-1', 3, now)).toBe(0);
    expect(await limits.countUpload('key-1', 3, now)).toBe(45);
    // Another key, and the same key in the next minute, count on their own.
    expect(await limits.countUpload('key-2', 3, now)).toBe(0);
    expect(await limits.countUpload('key-1', 3, now + 60_000)).toBe(0);
    const [counter] = await redis.keys(`${prefix}:limit:upload:key-1:*`);
    const ttl = await redis.pttl(counter);
    expect(ttl).toBeGreaterThan(60_000);
    expect(ttl).toBeLessThanOrEqual(120_000);
  });

  it('counts nothing when the limit is off (0)', async () => {
    expect(await limits.countUpload('key-3', 0)).toBe(0);
    expect(await redis.keys(`${prefix}:limit:upload:key-3:*`)).toEqual([]);
  });
});
