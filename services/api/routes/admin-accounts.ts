import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Core } from '../../core/core.js';
import type { AccountManager } from '../../core/services/account-admin.service.js';
import { KeyExpirySchema, ManagedKeysSchema, ManagedUsersSchema, NewPasswordSchema, RotatedKeySchema } from '../../contract/index.js';

/**
 * Account management for the admin page (issue 16): reset a password, disable or enable a user,
 * rotate or expire a site's API key. Registered inside the admin scope (admin session, CSRF token
 * on changes, no-store); the service limits an admin to their own sites' users and keys. A new
 * password or key is in the answer once and never again.
 */
export function accountRoutes(scope: FastifyInstance, core: Core) {
  const tags = ['Admin'];
  const accounts = core.services.accounts;
  const manager = (request: FastifyRequest): AccountManager => {
    const p = request.principal!;
    return p.type === 'user' ? { userId: p.userId, role: p.role, siteIds: p.siteIds } : { userId: -1, role: 'none', siteIds: [] };
  };
  const userParams = { type: 'object', required: ['username'], properties: { username: { type: 'string', minLength: 1, maxLength: 60 } } } as const;
  const keyParams = { type: 'object', required: ['id'], properties: { id: { type: 'string', pattern: '^[0-9a-f]{12}$' } } } as const;

  scope.get('/api/admin/users', {
    schema: { tags, summary: "Users this admin manages (their sites' users; a superadmin: all)", response: { 200: ManagedUsersSchema } },
  }, async (request) => accounts.listUsers(manager(request)));

  scope.post('/api/admin/users/:username/reset-password', {
    schema: {
      tags, summary: 'Generate a new password (in this answer only); ends the user\'s sessions; enable: also re-enable; audited',
      params: userParams,
      body: { anyOf: [{ type: 'object', additionalProperties: false, properties: { enable: { type: 'boolean' } } }, { type: 'null' }] },
      response: { 200: NewPasswordSchema },
    },
  }, async (request) => {
    const { username } = request.params as { username: string };
    const body = (request.body ?? {}) as { enable?: boolean };
    return { username, ...(await accounts.resetPassword(manager(request), username, { enable: body.enable })) };
  });

  for (const [action, disabled] of [['disable', true], ['enable', false]] as const) {
    scope.post(`/api/admin/users/:username/${action}`, {
      schema: { tags, summary: disabled ? 'Disable a user: sessions and event streams end, sign-in refused; audited' : 'Enable a disabled user; audited', params: userParams },
    }, async (request) => {
      const { username } = request.params as { username: string };
      await accounts.setDisabled(manager(request), username, disabled);
      return { ok: true, username, disabled };
    });
  }

  scope.get('/api/admin/keys', {
    schema: { tags, summary: "API keys of this admin's sites (a superadmin: all); never the secret", response: { 200: ManagedKeysSchema } },
  }, async (request) => accounts.listKeys(manager(request)));

  scope.post('/api/admin/keys/:id/rotate', {
    schema: {
      tags, summary: 'New key for the same site and label (in this answer only); the old one works for graceHours more (default 24, 0 = stops now); audited',
      params: keyParams,
      body: { anyOf: [{ type: 'object', additionalProperties: false, properties: { graceHours: { type: 'number', minimum: 0, maximum: 720 } } }, { type: 'null' }] },
      response: { 200: RotatedKeySchema },
    },
  }, async (request) => {
    const { id } = request.params as { id: string };
    const graceHours = ((request.body ?? {}) as { graceHours?: number }).graceHours ?? 24;
    const fresh = await accounts.rotateKey(manager(request), id, graceHours * 3600_000);
    return { id: fresh.id, key: fresh.key, replaces: id, oldExpiresAt: fresh.oldExpiresAt };
  });

  scope.post('/api/admin/keys/:id/expire', {
    schema: {
      tags, summary: 'Make a key stop working at a time ("now" or an ISO date; never later than an expiry it has); audited',
      params: keyParams,
      body: { type: 'object', required: ['at'], additionalProperties: false, properties: { at: { type: 'string', maxLength: 40 } } },
      response: { 200: KeyExpirySchema },
    },
  }, async (request) => {
    const { id } = request.params as { id: string };
    const { at } = request.body as { at: string };
    return { id, ...(await accounts.expireKey(manager(request), id, at === 'now' ? Date.now() : Date.parse(at))) };
  });
}
