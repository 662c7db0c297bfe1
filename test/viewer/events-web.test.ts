import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventsChannel } from '../../services/core/repositories/event.repository.js';
import { CONTENT_SECURITY_POLICY } from '../../services/api/routes/web.js';
import { startSystem, type TestSystem } from '../helpers/system.js';
import { ensureWebBuilt } from '../e2e/viewer-system.js';
import { addStudy, api, login, PASSWORD, type Session } from './helpers.js';

/** Reads server-sent events from a fetch body until `until` says stop. */
async function readEvents(res: Response, until: (events: { event: string; data: any }[]) => boolean, timeoutMs = 5_000) {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  const events: { event: string; data: any }[] = [];
  let buffer = '';
  const deadline = Date.now() + timeoutMs;
  while (!until(events) && Date.now() < deadline) {
    const chunk = await Promise.race([reader.read(), new Promise<{ done: true; value: undefined }>((r) => setTimeout(() => r({ done: true, value: undefined }), deadline - Date.now()))]);
    if (chunk.done) break;
    buffer += decoder.decode(chunk.value, { stream: true });
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event = /^event: (.*)$/m.exec(block)?.[1];
      const data = /^data: (.*)$/m.exec(block)?.[1];
      if (event && data) events.push({ event, data: JSON.parse(data) });
    }
  }
  await reader.cancel().catch(() => undefined);
  return events;
}

describe('live events and the web app', () => {
  let system: TestSystem;
  let radA: Session;

  beforeAll(async () => {
    ensureWebBuilt(); // web/dist is built output (not in git); the header test needs the real pages
    system = await startSystem();
    await system.core.services.auth.createUser({ username: 'rad-a', password: PASSWORD, role: 'radiologist', siteIds: ['site-a'] });
    radA = await login(system, 'rad-a');
  });
  afterAll(() => system?.close());

  it("relays pipeline and review events for the user's sites only, over SSE", async () => {
    const res = await fetch(`${system.url}/api/events`, { headers: { cookie: radA.cookie } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const channel = eventsChannel(system.config.queuePrefix);
    const publish = async () => {
      // No wait: the stream answers only once its subscription is in place.
      await system.core.redis.publish(channel, JSON.stringify({ type: 'study', siteId: 'site-b', studyId: 99, aiState: 'complete', aiFlag: 'definite', aiScore: 0.9 }));
      await system.core.redis.publish(channel, JSON.stringify({ type: 'result', siteId: 'site-a', studyId: 5, instanceId: 6, status: 'done', flag: 'doubt', probability: 0.6 }));
      const { id, dx } = await addStudy(system, 'a');
      const shown = (await system.core.repos.instances.findBySop('site-a', dx.sopInstanceUid))!.id;
      const decided = await api(system, radA, `/api/studies/${id}/review`, { method: 'POST', body: { decision: 'disagree', shownInstanceIds: [shown] } });
      expect(decided.status).toBe(201);
      await system.core.redis.publish(channel, JSON.stringify({ type: 'study', siteId: 'site-a', studyId: id, aiState: 'complete', aiFlag: 'none', aiScore: 0.1 }));
    };
    const [events] = await Promise.all([readEvents(res, (e) => e.filter((x) => x.event !== 'hello').length >= 3), publish()]);
    const relayed = events.filter((e) => e.event !== 'hello');
    expect(events[0].event).toBe('hello');
    expect(relayed.map((e) => e.event)).toEqual(['result', 'review', 'study']);
    expect(relayed.every((e) => e.data.siteId === 'site-a')).toBe(true);
    expect(relayed[1].data).toMatchObject({ type: 'review', decision: 'disagree', reviewState: 'reviewed' });
  });

  it('refuses the event stream without a session', async () => {
    expect((await fetch(`${system.url}/api/events`)).status).toBe(401);
  });

  it('serves the web app with a strict CSP (no inline script) and the other security headers', async () => {
    const res = await fetch(`${system.url}/`);
    expect(res.status).toBe(200);
    const html = await res.text();
    const csp = res.headers.get('content-security-policy')!;
    expect(csp).toBe(CONTENT_SECURITY_POLICY);
    expect(csp).toContain("default-src 'self'");
    const tokens = csp.split(';').flatMap((d) => d.trim().split(/\s+/));
    expect(tokens).not.toContain("'unsafe-inline'");
    expect(tokens).not.toContain("'unsafe-eval'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    // No inline script or style in the page: every script is a file.
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(html).not.toMatch(/<style/);
    const worker = await fetch(`${system.url}/assets/index.worker.bundle.min.worker.js`);
    expect(worker.status).toBe(200);
    expect(worker.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect((await worker.arrayBuffer()).byteLength).toBeGreaterThan(100_000);
    const admin = await fetch(`${system.url}/admin.html`);
    expect(admin.status).toBe(200);
    await admin.arrayBuffer();
  });
});
