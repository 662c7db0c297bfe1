import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Core } from '../../core/core.js';
import { AuthService } from '../../core/services/auth.service.js';
import { SESSION_COOKIE, type Authenticate } from '../plugins/auth.js';
import { connectionCap } from '../plugins/connection-guard.js';

interface Client { reply: FastifyReply; stop: () => void; siteIds: Set<string>; userId: number; sessionHash: string }

const HEARTBEAT_MS = 15_000;

/**
 * Server-sent events for open worklists and viewers: the worker's pipeline events (a result
 * stored, a study's AI state changed) and review events, relayed from Redis pub/sub to each
 * signed-in user whose sites include the event's site. One Redis subscription per API process;
 * a client's stream starts (event `hello`) once it is in place.
 */
export function eventRoutes(app: FastifyInstance, core: Core, authenticate: Authenticate) {
  const clients = new Set<Client>();
  const { limits } = core.config;
  // Streams are long-lived connections: they may take at most half the connection cap in all.
  const maxStreams = Math.max(1, Math.floor(connectionCap(limits.maxConnections) / 2));

  const close = (client: Client) => {
    clients.delete(client);
    client.stop();
    client.reply.raw.end();
  };
  /** Why a new stream for this user may not open, or undefined when it may. */
  const refusal = (userId: number, siteIds: string[]) => {
    if (clients.size >= maxStreams) return 'too many event streams open on this server';
    let mine = 0;
    const perSite = new Map<string, number>();
    for (const client of clients) {
      if (client.userId === userId) mine++;
      for (const site of client.siteIds) perSite.set(site, (perSite.get(site) ?? 0) + 1);
    }
    if (mine >= limits.maxStreamsPerUser) return `at most ${limits.maxStreamsPerUser} event streams per user; close another tab`;
    if (siteIds.some((site) => (perSite.get(site) ?? 0) >= limits.maxStreamsPerSite)) return 'too many event streams open for this site';
    return undefined;
  };
  // Sign-out, disable, password reset (from any API process or the CLI): their streams end now.
  let sessionsWatched: Promise<unknown> | undefined;
  const watchSessions = () => (sessionsWatched ??= core.services.auth.onSessionsEnded((ended) => {
    for (const client of clients) if (client.userId === ended.userId || client.sessionHash === ended.sessionHash) close(client);
  }));

  // preClose: the streams must end before the server waits for its connections to close.
  app.addHook('preClose', async () => {
    for (const client of clients) {
      client.stop();
      client.reply.raw.end();
      client.reply.raw.socket?.destroy();
    }
    clients.clear();
  });

  app.get('/api/events', {
    onRequest: authenticate({ session: true, roles: ['radiologist', 'admin'] }),
    schema: { tags: ['Viewer'], summary: 'Server-sent events: AI results and decisions for the caller\'s sites (text/event-stream)' },
  }, async (request, reply) => {
    const principal = request.principal!;
    if (principal.type !== 'user') throw new Error('unreachable: sessions only');
    const token = request.cookies[SESSION_COOKIE]!;
    await watchSessions();
    const siteIds = new Set(principal.siteIds);
    // Subscribed before "hello": whatever happens after the client sees it reaches the client.
    // Only what the browser needs to refresh; the list itself is re-read through the site-scoped API.
    const stop = await core.services.events.subscribe(siteIds, (event) => reply.raw.write(`event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`));
    // Counted after the awaits above and before the stream is added, with nothing awaited between:
    // concurrent requests cannot all pass the check.
    const refused = refusal(principal.userId, principal.siteIds);
    if (refused) {
      stop();
      reply.header('Retry-After', '30');
      return reply.code(429).send({ error: 'Too Many Requests', message: refused });
    }
    reply.hijack();
    reply.raw.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
      'X-Content-Type-Options': 'nosniff',
    });
    reply.raw.write(`retry: 3000\nevent: hello\ndata: ${JSON.stringify({ siteIds: [...siteIds] })}\n\n`);
    const client: Client = { reply, stop, siteIds, userId: principal.userId, sessionHash: AuthService.sessionHash(token) };
    clients.add(client);
    // Comments keep proxies and the server's idle timeout from closing a quiet stream; each beat
    // also checks the session, so a stream ends within one beat of the session expiring.
    const heartbeat = setInterval(() => {
      core.services.auth.session(token).then((user) => {
        if (!user) close(client);
        else reply.raw.write(': keep-alive\n\n');
      }, () => reply.raw.write(': keep-alive\n\n'));
    }, HEARTBEAT_MS);
    reply.raw.on('close', () => {
      clearInterval(heartbeat);
      stop();
      clients.delete(client);
    });
  });
}
