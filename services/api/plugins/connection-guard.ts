import fs from 'node:fs';
import type { Server, IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { FastifyInstance } from 'fastify';

/** Descriptors kept back for the database, Redis, stored files, logs and the event loop itself. */
const RESERVED_DESCRIPTORS = 128;

/** The soft open-file limit of this process (Linux: /proc/self/limits), or undefined when unknown. */
export function openFileLimit(): number | undefined {
  try {
    const line = fs.readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
    const soft = line?.split(/\s{2,}/)[1];
    return soft && /^\d+$/.test(soft) ? Number(soft) : undefined;
  } catch {
    return undefined;
  }
}

/** Connections allowed at once: the configured number, or four fifths of what the open-file limit leaves after the reserve. */
export function connectionCap(configured: number, limit = openFileLimit()): number {
  if (configured > 0) return configured;
  if (limit === undefined) return 4096;
  return Math.max(16, Math.min(50_000, Math.floor((limit - RESERVED_DESCRIPTORS) * 0.8)));
}

const busy = new WeakMap<Socket, number>();

/**
 * Keeps the number of open client connections under `cap`, so connecting clients can never use
 * up the process's file descriptors. Past the cap the oldest connection with no request in
 * progress (idle keep-alive, or one still dribbling its headers) is closed to make room; only when
 * every connection is busy is the newcomer closed. A flood of idle connections therefore costs the
 * flooder its own oldest connections, not everyone else's service.
 */
export function guardConnections(server: Server, cap: number): { open(): number } {
  const sockets = new Set<Socket>();
  server.on('request', (request: IncomingMessage, response: ServerResponse) => {
    const socket = request.socket;
    busy.set(socket, (busy.get(socket) ?? 0) + 1);
    response.once('close', () => busy.set(socket, Math.max(0, (busy.get(socket) ?? 1) - 1)));
  });
  server.on('connection', (socket: Socket) => {
    if (sockets.size >= cap) {
      const idle = [...sockets].find((s) => !busy.get(s));
      if (idle) {
        sockets.delete(idle);
        idle.destroy();
      } else {
        socket.destroy();
        return;
      }
    }
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  return { open: () => sockets.size };
}

/**
 * 503 + Retry-After while the event loop lags more than `maxDelayMs` (replaces
 * the former load plugin, whose periodic process.memoryUsage() opens /proc files and threw EMFILE
 * uncaught at the descriptor limit). Measures only the event loop: no files, no allocation.
 */
export function eventLoopGuard(app: FastifyInstance, opts: { maxDelayMs: number; retryAfterSec: number }) {
  const histogram = monitorEventLoopDelay({ resolution: 20 });
  histogram.enable();
  let lagging = false;
  let laggedBefore = false;
  const timer = setInterval(() => {
    // The mean over the last second, as the former load plugin measured it — but only a lag seen in two
    // windows running counts as load. One long pause (a module loaded, a GC, SQLite's synchronous
    // busy wait on a locked database) fills a window alone and is over: shedding the requests
    // after it would refuse work the server can do (it made a retried upload fail with 503).
    const laggedNow = histogram.count > 0 && histogram.mean / 1e6 > opts.maxDelayMs;
    lagging = laggedNow && laggedBefore;
    laggedBefore = laggedNow;
    histogram.reset();
  }, 1_000);
  timer.unref();
  app.addHook('onClose', async () => { clearInterval(timer); histogram.disable(); });
  app.addHook('onRequest', async (request, reply) => {
    if (!lagging || request.url === '/healthz') return;
    reply.header('Retry-After', String(opts.retryAfterSec));
    return reply.code(503).send({ error: 'Service Unavailable', message: 'server under load; retry later' });
  });
}

const DESCRIPTOR_ERRORS = new Set(['EMFILE', 'ENFILE']);

/**
 * Out of file descriptors is a moment, not a reason to die: an error with EMFILE/ENFILE that no
 * one caught is logged and the process goes on (the connection cap frees descriptors again). Any
 * other uncaught error still ends the process, as Node would.
 */
export function surviveDescriptorExhaustion(log: { error(obj: object, msg: string): void }) {
  process.on('uncaughtException', (err: NodeJS.ErrnoException) => {
    if (err && DESCRIPTOR_ERRORS.has(err.code ?? '')) {
      log.error({ code: err.code, syscall: err.syscall }, 'out of file descriptors; carrying on');
      return;
    }
    log.error({ err }, 'uncaught exception; exiting');
    process.exit(1);
  });
}
