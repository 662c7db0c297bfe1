import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Core } from '../../core/core.js';
import { SESSION_COOKIE, type Authenticate } from '../plugins/auth.js';

export function authRoutes(app: FastifyInstance, core: Core, authenticate: Authenticate) {
  const secureCookie = (request: FastifyRequest) => core.config.cookieSecure === 'auto' ? request.protocol === 'https' : core.config.cookieSecure;
  const tags = ['Session'];

  app.post('/auth/login', {
    schema: {
      tags, summary: 'Sign in; sets the session cookie and returns the CSRF token for unsafe requests',
      body: { type: 'object', required: ['username', 'password'], properties: { username: { type: 'string', maxLength: 100 }, password: { type: 'string', maxLength: 1000 } } },
    },
  }, async (request, reply) => {
    const { username, password } = request.body as { username: string; password: string };
    // request.ip is the peer, or the client named by a proxy listed in TRUST_PROXY.
    const result = await core.services.auth.login(username.toLowerCase(), password, request.ip);
    if (!result.ok && result.reason === 'too-many-attempts') {
      const wait = Math.ceil(result.retryAfterMs / 1000);
      reply.header('Retry-After', String(wait));
      return reply.code(429).send({ error: 'Too Many Requests', message: `too many sign-in attempts; try again in ${wait} s` });
    }
    if (!result.ok) return reply.code(401).send({ error: 'Unauthorized', message: 'wrong username or password' });
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
