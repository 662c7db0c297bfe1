import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSystem, type TestSystem } from '../helpers/system.js';
import { scrape } from './helpers.js';

describe('/metrics with METRICS_TOKEN', () => {
  let system: TestSystem;
  beforeAll(async () => {
    process.env.METRICS_TOKEN = 'scrape-secret-123';
    system = await startSystem();
  });
  afterAll(async () => {
    delete process.env.METRICS_TOKEN;
    await system?.close();
  });

  it('needs the bearer token when one is set', async () => {
    expect((await scrape(system.url)).status).toBe(401);
    expect((await scrape(system.url, { authorization: 'Bearer wrong' })).status).toBe(401);
    const ok = await scrape(system.url, { authorization: 'Bearer scrape-secret-123' });
    expect(ok.status).toBe(200);
    expect(ok.samples.length).toBeGreaterThan(10);
  });
});
