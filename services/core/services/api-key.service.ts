import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { CLI_ACTOR, type AuditActor, type AuditRepository } from '../repositories/audit.repository.js';
import type { SiteRepository } from '../repositories/site.repository.js';

/**
 * API keys look like `ft_<id>_<secret>`. Only a SHA-256 of the secret is stored: the secret has
 * 256 bits of entropy, so a fast hash is enough (a memory-hard one is for human passwords).
 * The full key is returned once, at creation.
 */
export class ApiKeyService {
  constructor(private readonly sites: SiteRepository, private readonly audit: AuditRepository) {}

  async createSite(id: string, name: string) {
    if (!/^[a-z0-9][a-z0-9-]{0,39}$/.test(id)) throw new Error('site id: 1-40 lowercase letters, digits or dashes');
    if (await this.sites.get(id)) throw new Error(`site "${id}" already exists`);
    const site = await this.sites.create({ id, name });
    await this.audit.record({ actor_type: 'system', actor_id: 'cli', site_id: id, action: 'site.create', target_type: 'site', target_id: id });
    return site;
  }

  async createKey(siteId: string, label: string, by: AuditActor = CLI_ACTOR): Promise<{ id: string; key: string }> {
    if (!(await this.sites.get(siteId))) throw new Error(`no site "${siteId}"`);
    const id = randomBytes(6).toString('hex');
    const secret = randomBytes(32).toString('base64url');
    await this.sites.addKey({ id, site_id: siteId, label, key_hash: hashSecret(secret), created_at: Date.now() });
    await this.audit.record({ actor_type: by.type, actor_id: by.id, site_id: siteId, action: 'api_key.create', target_type: 'api_key', target_id: id });
    return { id, key: `ft_${id}_${secret}` };
  }

  async revokeKey(id: string): Promise<boolean> {
    const key = await this.sites.getKey(id);
    const revoked = await this.sites.revokeKey(id);
    if (revoked) {
      await this.audit.record({ actor_type: 'system', actor_id: 'cli', site_id: key?.site_id ?? null, action: 'api_key.revoke', target_type: 'api_key', target_id: id });
    }
    return revoked;
  }

  /** Makes a key stop working at `expiresAt` (epoch ms); false when there is no active key with that id. */
  async expireKey(id: string, expiresAt: number, by: AuditActor = CLI_ACTOR): Promise<boolean> {
    const key = await this.sites.getKey(id);
    const updated = await this.sites.setKeyExpiry(id, expiresAt);
    if (updated) await this.audit.record({ actor_type: by.type, actor_id: by.id, site_id: key?.site_id ?? null, action: 'api_key.expire', target_type: 'api_key', target_id: id, details: { expires_at: expiresAt } });
    return updated;
  }

  /** A new key for the same site and label; the old one keeps working until `oldExpiresAt`, so senders can switch over. */
  async rotateKey(id: string, oldExpiresAt: number, by: AuditActor = CLI_ACTOR): Promise<{ id: string; key: string }> {
    const old = await this.sites.getKey(id);
    if (!old || old.revoked_at !== null) throw new Error(`no active key ${id}`);
    const fresh = await this.createKey(old.site_id, old.label, by);
    await this.expireKey(id, Math.min(oldExpiresAt, old.expires_at ?? Infinity), by);
    return fresh;
  }

  /** The site a presented key belongs to, or undefined for a malformed, unknown or revoked key. */
  async verify(presented: string): Promise<{ keyId: string; siteId: string } | undefined> {
    const match = /^ft_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/.exec(presented);
    if (!match) return undefined;
    const key = await this.sites.getKey(match[1]);
    if (!key || key.revoked_at !== null || (key.expires_at !== null && key.expires_at <= Date.now())) return undefined;
    const expected = Buffer.from(key.key_hash, 'hex');
    const actual = Buffer.from(hashSecret(match[2]), 'hex');
    if (expected.length !== actual.length || !timingSafeEqual(expected, actual)) return undefined;
    return { keyId: key.id, siteId: key.site_id };
  }
}

function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}
