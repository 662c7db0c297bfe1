import { AppError } from '../errors.js';
import type { AuditActor } from '../repositories/audit.repository.js';
import type { SiteRepository } from '../repositories/site.repository.js';
import type { UserRepository } from '../repositories/user.repository.js';
import type { ApiKeyService } from './api-key.service.js';
import { generatePassword, type AuthService } from './auth.service.js';

/** Who manages accounts: a superadmin every one, an admin those of their own sites. */
export interface AccountManager {
  userId: number;
  role: string;
  siteIds: string[];
}

export interface ManagedUser {
  username: string;
  displayName: string;
  role: string;
  siteIds: string[];
  disabled: boolean;
}

export interface ManagedKey {
  id: string;
  siteId: string;
  label: string;
  state: 'active' | 'expired' | 'revoked';
  createdAt: string;
  expiresAt: string | null;
  lastUsedAt: string | null;
}

const MAX_GRACE_MS = 30 * 24 * 3600_000;

/**
 * Account management from the admin page (issue 16): reset a password, disable or enable a user,
 * rotate or expire a site's API key — the same operations as the CLI (auth and api-key services),
 * scoped: an admin manages only users all of whose sites are theirs (never a superadmin) and the
 * keys of their sites; anything outside that answers "not found", like a job of another site.
 * Audited as the signed-in user.
 */
export class AccountAdminService {
  constructor(
    private readonly users: UserRepository,
    private readonly sites: SiteRepository,
    private readonly auth: AuthService,
    private readonly apiKeys: ApiKeyService,
  ) {}

  private all(by: AccountManager) {
    return by.role === 'superadmin';
  }

  private async manages(by: AccountManager, user: { id: number; role: string }): Promise<boolean> {
    if (this.all(by)) return true;
    if (user.role === 'superadmin') return false;
    const sites = await this.users.siteIds(user.id);
    return sites.length > 0 && sites.every((s) => by.siteIds.includes(s));
  }

  async listUsers(by: AccountManager): Promise<ManagedUser[]> {
    const out: ManagedUser[] = [];
    for (const user of await this.users.list()) {
      if (!(await this.manages(by, user))) continue;
      out.push({ username: user.username, displayName: user.display_name, role: user.role, siteIds: await this.users.siteIds(user.id), disabled: user.disabled_at !== null });
    }
    return out;
  }

  private async user(by: AccountManager, username: string) {
    const user = await this.users.byUsername(username);
    if (!user || !(await this.manages(by, user))) throw new AppError('user_not_found');
    return user;
  }

  private actor(by: AccountManager): AuditActor {
    return { type: 'user', id: String(by.userId) };
  }

  /** A new generated password, returned once; the user's sessions and event streams end. */
  async resetPassword(by: AccountManager, username: string, opts: { enable?: boolean } = {}): Promise<{ password: string }> {
    await this.user(by, username);
    const password = generatePassword();
    await this.auth.resetPassword(username, password, { enable: opts.enable, by: this.actor(by) });
    return { password };
  }

  async setDisabled(by: AccountManager, username: string, disabled: boolean): Promise<void> {
    const user = await this.user(by, username);
    if (disabled && user.id === by.userId) throw new AppError('bad_request', 'you cannot disable your own account');
    await this.auth.setDisabled(username, disabled, this.actor(by));
  }

  async listKeys(by: AccountManager): Promise<ManagedKey[]> {
    const now = Date.now();
    const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
    return (await this.sites.listKeys())
      .filter((k) => this.all(by) || by.siteIds.includes(k.site_id))
      .map((k) => ({
        id: k.id, siteId: k.site_id, label: k.label,
        state: k.revoked_at !== null ? 'revoked' : k.expires_at !== null && k.expires_at <= now ? 'expired' : 'active',
        createdAt: new Date(k.created_at).toISOString(), expiresAt: iso(k.expires_at), lastUsedAt: iso(k.last_used_at),
      }));
  }

  private async key(by: AccountManager, id: string) {
    const key = await this.sites.getKey(id);
    if (!key || !(this.all(by) || by.siteIds.includes(key.site_id))) throw new AppError('key_not_found');
    if (key.revoked_at !== null || (key.expires_at !== null && key.expires_at <= Date.now())) {
      throw new AppError('bad_request', `key ${id} no longer works`);
    }
    return key;
  }

  /** A new key for the same site and label, returned once; the old one works for `graceMs` more. */
  async rotateKey(by: AccountManager, id: string, graceMs: number): Promise<{ id: string; key: string; oldExpiresAt: string }> {
    if (!(graceMs >= 0 && graceMs <= MAX_GRACE_MS)) throw new AppError('bad_request', 'grace period: 0 to 30 days');
    await this.key(by, id);
    const until = Date.now() + graceMs;
    const fresh = await this.apiKeys.rotateKey(id, until, this.actor(by));
    const old = await this.sites.getKey(id);
    return { ...fresh, oldExpiresAt: new Date(old!.expires_at ?? until).toISOString() };
  }

  /** The key stops working at `at` (now or later; never moved later than an expiry it already has). */
  async expireKey(by: AccountManager, id: string, at: number): Promise<{ expiresAt: string }> {
    if (!Number.isFinite(at)) throw new AppError('bad_request', 'at: an ISO date or "now"');
    const key = await this.key(by, id);
    const when = Math.min(Math.max(at, Date.now()), key.expires_at ?? Infinity);
    await this.apiKeys.expireKey(id, when, this.actor(by));
    return { expiresAt: new Date(when).toISOString() };
  }
}
