import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Redis } from 'ioredis';
import type { Core } from '../../core/core.js';
import { redisConnection } from '../../core/queue/classify-queue.js';
import { eventsChannel } from '../../core/queue/worker-registry.js';
import type { Authenticate } from '../plugins/auth.js';

interface Client { siteIds: Set<string>; reply: FastifyReply }

const HEARTBEAT_MS = 15_000;

/**
 * Server-sent events for open worklists and viewers: the worker's pipeline events (a result
 * stored, a study's AI state changed) and review events, relayed from Redis pub/sub to each
 * signed-in user whose sites include the event's site. One Redis subscription per API process.
 */
export function eventRoutes(app: FastifyInstance, core: Core, authenticate: Authenticate) {
  const clients = new Set<Client>();
  let subscriber: Redis | undefined;

  const ensureSubscriber = () => {
    if (subscriber) return;
    subscriber = redisConnection(core.config.redisUrl, { lazyConnect: false });
    subscriber.on('error', (err) => app.log.warn({ err: err.message }, 'events subscriber: redis error'));
    subscriber.subscribe(eventsChannel(core.config.queuePrefix)).catch((err: Error) => app.log.warn({ err: err.message }, 'events subscribe failed'));
    subscriber.on('message', (_channel: string, message: string) => {
      let event: { type?: string; siteId?: string; studyId?: number };
      try {
        event = JSON.parse(message);
      } catch {
        return;
      }
      if (typeof event.siteId !== 'string' || typeof event.studyId !== 'number') return;
      // Only what the browser needs to refresh; the list itself is re-read through the site-scoped API.
      const payload = `event: ${event.type === 'review' ? 'review' : event.type === 'result' ? 'result' : 'study'}\ndata: ${JSON.stringify(event)}\n\n`;
      for (const client of clients) if (client.siteIds.has(event.siteId)) client.reply.raw.write(payload);
    });
  };

  // preClose: the streams must end before the server waits for its connections to close.
  app.addHook('preClose', async () => {
    for (const client of clients) {
      client.reply.raw.end();
      client.reply.raw.socket?.destroy();
    }
    clients.clear();
    subscriber?.disconnect();
  });

  app.get('/api/events', {
    onRequest: authenticate({ session: true, roles: ['radiologist', 'admin'] }),
    schema: { tags: ['Viewer'], summary: 'Server-sent events: AI results and decisions for the caller\'s sites (text/event-stream)' },
  }, async (request, reply) => {
    ensureSubscriber();
    const client: Client = { siteIds: new Set(request.principal!.siteIds), reply };
    reply.hijack();
    reply.raw.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
      'X-Content-Type-Options': 'nosniff',
    });
    reply.raw.write(`retry: 3000\nevent: hello\ndata: ${JSON.stringify({ siteIds: [...client.siteIds] })}\n\n`);
    clients.add(client);
    // Comments keep proxies and the server's idle timeout from closing a quiet stream.
    const heartbeat = setInterval(() => reply.raw.write(': keep-alive\n\n'), HEARTBEAT_MS);
    reply.raw.on('close', () => {
      clearInterval(heartbeat);
      clients.delete(client);
    });
  });
}
