import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Core } from '../../core/core.js';
import { SESSION_COOKIE, type Authenticate } from '../plugins/auth.js';

/** At most 10 failed sign-ins per username, and 50 per client address, in 15 minutes. */
const WINDOW_MS = 15 * 60_000;
const LIMITS = { user: 10, ip: 50 };

class LoginLimiter {
  private failures = new Map<string, number[]>();

  blocked(...keys: string[]): number {
    const now = Date.now();
    let retryAfter = 0;
    for (const key of keys) {
      const recent = (this.failures.get(key) ?? []).filter((t) => now - t < WINDOW_MS);
      this.failures.set(key, recent);
      if (recent.length >= (key.startsWith('ip:') ? LIMITS.ip : LIMITS.user)) retryAfter = Math.max(retryAfter, Math.ceil((recent[0] + WINDOW_MS - now) / 1000));
    }
    return retryAfter;
  }

  fail(...keys: string[]) {
    for (const key of keys) this.failures.set(key, [...(this.failures.get(key) ?? []), Date.now()]);
  }

  clear(key: string) {
    this.failures.delete(key);
  }
}

export function authRoutes(app: FastifyInstance, core: Core, authenticate: Authenticate) {
  const limiter = new LoginLimiter();
  const secureCookie = (request: FastifyRequest) => core.config.cookieSecure === 'auto' ? request.protocol === 'https' : core.config.cookieSecure;
  const tags = ['Session'];

  app.post('/auth/login', {
    schema: {
      tags, summary: 'Sign in; sets the session cookie and returns the CSRF token for unsafe requests',
      body: { type: 'object', required: ['username', 'password'], properties: { username: { type: 'string', maxLength: 100 }, password: { type: 'string', maxLength: 1000 } } },
    },
  }, async (request, reply) => {
    const { username, password } = request.body as { username: string; password: string };
    const userKey = `u:${username.toLowerCase()}`;
    const ipKey = `ip:${request.ip}`;
    const wait = limiter.blocked(userKey, ipKey);
    if (wait) {
      reply.header('Retry-After', String(wait));
      return reply.code(429).send({ error: 'Too Many Requests', message: `too many failed sign-ins; try again in ${Math.ceil(wait / 60)} min` });
    }
    const result = await core.services.auth.login(username.toLowerCase(), password);
    if (!result) {
      limiter.fail(userKey, ipKey);
      return reply.code(401).send({ error: 'Unauthorized', message: 'wrong username or password' });
    }
    limiter.clear(userKey);
    reply.setCookie(SESSION_COOKIE, result.token, {
      path: '/', httpOnly: true, sameSite: 'strict', secure: secureCookie(request), expires: new Date(Date.now() + 7 * 24 * 3600_000),
    });
    const { csrfToken, ...user } = result.user;
    return { user, csrfToken };
  });

  app.post('/auth/logout', { schema: { tags, summary: 'Sign out (ends the session server-side)' }, onRequest: authenticate({ session: true }) }, async (request, reply: FastifyReply) => {
    const token = request.cookies[SESSION_COOKIE];
    if (token && request.principal?.type === 'user') await core.services.auth.logout(token, request.principal.userId);
    reply.clearCookie(SESSION_COOKIE, { path: '/' });
    return { status: 'signed out' };
  });

  app.get('/auth/me', { schema: { tags, summary: 'The signed-in user, their sites and the CSRF token' }, onRequest: authenticate({ session: true }) }, async (request) => {
    const p = request.principal!;
    if (p.type !== 'user') throw new Error('unreachable');
    return { user: { userId: p.userId, username: p.username, displayName: p.displayName, role: p.role, siteIds: p.siteIds }, csrfToken: p.csrfToken };
  });
}
