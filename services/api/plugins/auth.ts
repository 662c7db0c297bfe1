import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ApiKeyService } from '../../core/services/api-key.service.js';

/** Who is calling. Hospitals (integrators) call with a site's API key. */
export interface Principal {
  type: 'api_key';
  id: string;
  siteId: string;
}

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

/** preHandler: 401 unless the request carries a valid, unrevoked API key. */
export function requireApiKey(apiKeys: ApiKeyService) {
  return async (request: FastifyRequest, reply: FastifyReply) => {
    const key = presentedKey(request);
    const verified = key ? await apiKeys.verify(key) : undefined;
    if (!verified) {
      reply.header('WWW-Authenticate', 'Bearer realm="fracture-triage"');
      return reply.code(401).send({ error: 'Unauthorized', message: key ? 'API key is not valid or was revoked' : 'send an API key: "Authorization: Bearer ft_…" or "X-API-Key: ft_…"' });
    }
    request.principal = { type: 'api_key', id: verified.keyId, siteId: verified.siteId };
  };
}
