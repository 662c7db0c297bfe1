import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { UserRole } from '../db/schema.js';
import type { AuditRepository } from '../repositories/audit.repository.js';
import type { SiteRepository } from '../repositories/site.repository.js';
import type { UserRepository } from '../repositories/user.repository.js';
import type { ApiKeyService } from './api-key.service.js';
import type { AuthService } from './auth.service.js';

export const DEMO_SITE = 'demo';
const DEMO_USERS: { username: string; displayName: string; role: UserRole }[] = [
  { username: 'radiologist', displayName: 'Demo Radiologist', role: 'radiologist' },
  { username: 'admin', displayName: 'Demo Admin', role: 'admin' },
];

export interface DemoSeed {
  /** The demo site's API key when it was created now (shown once), else undefined. */
  newKey?: string;
  keyFile: string;
  /** Passwords of demo users created or re-enabled now (shown once; never stored). */
  newPasswords: Record<string, string>;
}

/**
 * Demo mode: a "demo" site, its API key and two users, made on first start. Passwords are shown
 * once and never stored; the key is kept in DATA_DIR/demo-api-key (0600) so `npm run send` works.
 * Started without demo mode, `retire` disables the demo users and revokes the demo keys.
 */
export class DemoService {
  constructor(
    private readonly apiKeys: ApiKeyService,
    private readonly auth: AuthService,
    private readonly sites: SiteRepository,
    private readonly users: UserRepository,
    private readonly audit: AuditRepository,
    private readonly dataDir: string,
  ) {}

  private get keyFile() {
    return path.join(this.dataDir, 'demo-api-key');
  }

  async seed(): Promise<DemoSeed> {
    if (!(await this.sites.get(DEMO_SITE))) await this.apiKeys.createSite(DEMO_SITE, 'Demo hospital');
    const seed: DemoSeed = { keyFile: this.keyFile, newPasswords: {} };
    const stored = fs.existsSync(this.keyFile) ? fs.readFileSync(this.keyFile, 'utf8').trim() : '';
    if (!stored || !(await this.apiKeys.verify(stored))) {
      seed.newKey = (await this.apiKeys.createKey(DEMO_SITE, 'demo')).key;
      fs.writeFileSync(this.keyFile, `${seed.newKey}\n`, { mode: 0o600 });
    }
    // Plain-text passwords from older versions are not kept.
    fs.rmSync(path.join(this.dataDir, 'demo-users'), { force: true });
    for (const demoUser of DEMO_USERS) {
      const existing = await this.users.byUsername(demoUser.username);
      if (existing && existing.disabled_at === null) continue;
      const password = randomBytes(12).toString('base64url');
      if (existing) await this.auth.resetPassword(existing.username, password, { enable: true });
      else await this.auth.createUser({ ...demoUser, password, siteIds: [DEMO_SITE] });
      seed.newPasswords[demoUser.username] = password;
    }
    return seed;
  }

  /** Disables demo users still active and revokes the demo site's keys; returns what it turned off. */
  async retire(): Promise<{ users: string[]; keys: string[] }> {
    const retired = { users: [] as string[], keys: [] as string[] };
    if (!(await this.sites.get(DEMO_SITE))) return retired;
    for (const { username } of DEMO_USERS) {
      const user = await this.users.byUsername(username);
      if (!user || user.disabled_at !== null) continue;
      if ((await this.users.siteIds(user.id)).join() !== DEMO_SITE) continue; // a real account that took the name
      await this.auth.setDisabled(username, true, { type: 'system', id: 'system' });
      retired.users.push(username);
    }
    for (const key of await this.sites.listKeys(DEMO_SITE)) {
      if (key.revoked_at === null && (await this.apiKeys.revokeKey(key.id))) retired.keys.push(key.id);
    }
    fs.rmSync(this.keyFile, { force: true });
    if (retired.users.length || retired.keys.length) {
      await this.audit.record({ actor_type: 'system', actor_id: 'startup', site_id: DEMO_SITE, action: 'demo.retire', details: retired });
    }
    return retired;
  }
}
