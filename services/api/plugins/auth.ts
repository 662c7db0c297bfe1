import type { FastifyReply, FastifyRequest } from 'fastify';
import type { UserRole } from '../../core/db/schema.js';
import type { ApiKeyService } from '../../core/services/api-key.service.js';
import type { AuthService } from '../../core/services/auth.service.js';

export const SESSION_COOKIE = 'ft_session';

/**
 * Who is calling. Hospitals (integrators) use a site's API key; people use a session cookie.
 * `siteIds` is what the caller may see: every query is scoped by it.
 */
export type Principal =
  | { type: 'api_key'; id: string; siteIds: string[] }
  | { type: 'user'; id: string; userId: number; username: string; displayName: string; role: UserRole; siteIds: string[]; csrfToken: string };

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
}

function presentedKey(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (header?.toLowerCase().startsWith('bearer ')) return header.slice(7).trim();
  const apiKey = request.headers['x-api-key'];
  return typeof apiKey === 'string' ? apiKey.trim() : undefined;
}

const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export interface AuthOptions {
  /** Accept site API keys (DICOMweb, uploads). */
  apiKey?: boolean;
  /** Accept a logged-in user's session cookie. */
  session?: boolean;
  /** Users must have one of these roles (API keys have no role and are refused where roles are set). */
  roles?: UserRole[];
}

export type Authenticate = (options: AuthOptions) => (request: FastifyRequest, reply: FastifyReply) => Promise<unknown>;

/**
 * Builds onRequest hooks (credentials are checked before a body is read or validated): 401 without valid credentials, 403 with the wrong role or, for a session
 * on an unsafe method, without the session's CSRF token in X-CSRF-Token (the cookie is also
 * SameSite=Strict; the header is the second lock).
 */
export function createAuthenticate(apiKeys: ApiKeyService, auth: AuthService): Authenticate {
  return (options) => async (request, reply) => {
    const key = options.apiKey ? presentedKey(request) : undefined;
    if (key) {
      const verified = await apiKeys.verify(key);
      if (!verified) return unauthorized(reply, 'API key is not valid or was revoked');
      if (options.roles) return reply.code(403).send({ error: 'Forbidden', message: 'this route is for signed-in users' });
      request.principal = { type: 'api_key', id: verified.keyId, siteIds: [verified.siteId] };
      return;
    }
    const token = options.session ? request.cookies?.[SESSION_COOKIE] : undefined;
    const user = token ? await auth.session(token) : undefined;
    if (!user) {
      return unauthorized(reply, options.apiKey && !options.session
        ? 'send an API key: "Authorization: Bearer ft_…" or "X-API-Key: ft_…"'
        : 'sign in first');
    }
    if (options.roles && !hasRole(user.role, options.roles)) {
      return reply.code(403).send({ error: 'Forbidden', message: `needs role ${options.roles.join(' or ')}` });
    }
    if (UNSAFE.has(request.method) && request.headers['x-csrf-token'] !== user.csrfToken) {
      return reply.code(403).send({ error: 'Forbidden', message: 'missing or wrong X-CSRF-Token header' });
    }
    request.principal = { type: 'user', id: String(user.userId), ...user };
  };
}

/** A superadmin may do everything an admin may (and the deployment-wide queue operations besides). */
export function hasRole(role: UserRole, allowed: UserRole[]): boolean {
  return allowed.includes(role) || (role === 'superadmin' && allowed.includes('admin'));
}

function unauthorized(reply: FastifyReply, message: string) {
  reply.header('WWW-Authenticate', 'Bearer realm="fracture-triage"');
  return reply.code(401).send({ error: 'Unauthorized', message });
}
