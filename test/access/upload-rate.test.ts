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

  it('with a high limit, counts a few uploads per Redis call, shared with other API processes, and never lets more than the limit through', async () => {
    const now = Date.UTC(2026, 10, 30, 12, 0, 15);
    const counter = `${prefix}:limit:upload:key-4:${Math.floor(now / 60_000)}`;
    // 520 a minute: 8 at a time. Redis has forgotten its scripts (as after a restart): without
    // the fallback to the script's text this first call would fail with NOSCRIPT.
    await redis.script('FLUSH');
    expect(await limits.countUpload('key-4', 520, now)).toBe(0);
    expect(await redis.get(counter)).toBe('8');
    for (let i = 0; i < 7; i++) expect(await limits.countUpload('key-4', 520, now)).toBe(0);
    expect(await redis.get(counter)).toBe('8'); // the other 7 came from this process's lease
    expect(await limits.countUpload('key-4', 520, now)).toBe(0);
    expect(await redis.get(counter)).toBe('16');
    // Another API process counts into the same minute; near the limit only what is left is let through.
    const other = new RateLimitRepository(redis, prefix);
    await redis.set(counter, '515');
    let through = 0;
    for (let i = 0; i < 10; i++) if ((await other.countUpload('key-4', 520, now)) === 0) through++;
    expect(through).toBe(5);
    expect(await other.countUpload('key-4', 520, now)).toBe(45);
    // The first process's lease (7 left of its second count) stays within what it counted.
    let leased = 0;
    for (let i = 0; i < 10; i++) if ((await limits.countUpload('key-4', 520, now)) === 0) leased++;
    expect(leased).toBe(7);
  });

  it('counts nothing when the limit is off (0)', async () => {
    expect(await limits.countUpload('key-3', 0)).toBe(0);
    expect(await redis.keys(`${prefix}:limit:upload:key-3:*`)).toEqual([]);
  });
});
