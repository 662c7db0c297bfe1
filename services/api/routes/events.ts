import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Core } from '../../core/core.js';
import type { Authenticate } from '../plugins/auth.js';

interface Client { reply: FastifyReply; stop: () => void }

const HEARTBEAT_MS = 15_000;

/**
 * Server-sent events for open worklists and viewers: the worker's pipeline events (a result
 * stored, a study's AI state changed) and review events, relayed from Redis pub/sub to each
 * signed-in user whose sites include the event's site. One Redis subscription per API process;
 * a client's stream starts (event `hello`) once it is in place.
 */
export function eventRoutes(app: FastifyInstance, core: Core, authenticate: Authenticate) {
  const clients = new Set<Client>();

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
    const siteIds = new Set(request.principal!.siteIds);
    // Subscribed before "hello": whatever happens after the client sees it reaches the client.
    // Only what the browser needs to refresh; the list itself is re-read through the site-scoped API.
    const stop = await core.services.events.subscribe(siteIds, (event) => reply.raw.write(`event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`));
    reply.hijack();
    reply.raw.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
      'X-Content-Type-Options': 'nosniff',
    });
    reply.raw.write(`retry: 3000\nevent: hello\ndata: ${JSON.stringify({ siteIds: [...siteIds] })}\n\n`);
    const client: Client = { reply, stop };
    clients.add(client);
    // Comments keep proxies and the server's idle timeout from closing a quiet stream.
    const heartbeat = setInterval(() => reply.raw.write(': keep-alive\n\n'), HEARTBEAT_MS);
    reply.raw.on('close', () => {
      clearInterval(heartbeat);
      stop();
      clients.delete(client);
    });
  });
}
