import { createHash, randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import type { UserRole } from '../db/schema.js';
import { CLI_ACTOR, type AuditActor, type AuditRepository } from '../repositories/audit.repository.js';
import type { RateLimitRepository, SessionsEnded } from '../repositories/rate-limit.repository.js';
import type { SiteRepository } from '../repositories/site.repository.js';
import type { UserRepository } from '../repositories/user.repository.js';

/** scrypt (memory-hard): N=2^15, r=8 → 32 MiB per hash, ~50–100 ms on one core. */
const SCRYPT = { N: 2 ** 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };
const KEY_LENGTH = 32;

function scryptAsync(password: string, salt: Buffer, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => scrypt(password, salt, KEY_LENGTH, options, (err, key) => (err ? reject(err) : resolve(key))));
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scryptAsync(password, salt, SCRYPT);
  return `scrypt$${SCRYPT.N}$${SCRYPT.r}$${SCRYPT.p}$${salt.toString('base64url')}$${key.toString('base64url')}`;
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [scheme, n, r, p, salt, key] = stored.split('$');
  if (scheme !== 'scrypt') return false;
  const expected = Buffer.from(key, 'base64url');
  const actual = await scryptAsync(password, Buffer.from(salt, 'base64url'), { N: Number(n), r: Number(r), p: Number(p), maxmem: SCRYPT.maxmem });
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}

/** A new random password (16 characters), shown once by whoever generated it. */
export const generatePassword = () => randomBytes(12).toString('base64url');

const sha256 = (value: string) => createHash('sha256').update(value).digest('hex');

/** Sessions last 12 hours of inactivity at most, and never longer than 7 days. */
const IDLE_MS = 12 * 3600_000;
const ABSOLUTE_MS = 7 * 24 * 3600_000;

export const ROLES: readonly UserRole[] = ['radiologist', 'admin', 'superadmin'];

export type LoginOutcome =
  | { ok: true; token: string; user: SessionUser; expiresAt: number }
  | { ok: false; reason: 'wrong-credentials' }
  | { ok: false; reason: 'too-many-attempts'; retryAfterMs: number };

export interface SessionUser {
  userId: number;
  username: string;
  displayName: string;
  role: UserRole;
  siteIds: string[];
  csrfToken: string;
}

/** Password login and server-side sessions. The session token is random, sent only as a cookie; the database keeps its hash. */
export class AuthService {
  // A hash to check against when the user does not exist, so timing does not reveal usernames.
  private dummyHash: Promise<string> | undefined;

  constructor(
    private readonly users: UserRepository,
    private readonly sites: SiteRepository,
    private readonly audit: AuditRepository,
    private readonly limits: RateLimitRepository,
  ) {}

  private checkPassword(password: string) {
    if (password.length < 10) throw new Error('password: at least 10 characters');
  }

  async createUser(input: { username: string; displayName?: string; password: string; role: UserRole; siteIds: string[] }) {
    if (!/^[a-z0-9._-]{2,40}$/.test(input.username)) throw new Error('username: 2-40 lowercase letters, digits, dots, dashes or underscores');
    this.checkPassword(input.password);
    if (!ROLES.includes(input.role)) throw new Error(`role must be ${ROLES.join(', ')}`);
    for (const siteId of input.siteIds) if (!(await this.sites.get(siteId))) throw new Error(`no site "${siteId}"`);
    if (await this.users.byUsername(input.username)) throw new Error(`user "${input.username}" already exists`);
    const user = await this.users.create({
      username: input.username, displayName: input.displayName ?? input.username,
      passwordHash: await hashPassword(input.password), role: input.role, siteIds: input.siteIds,
    });
    await this.audit.record({ actor_type: 'system', actor_id: 'cli', action: 'user.create', target_type: 'user', target_id: String(user.id), details: { role: input.role, sites: input.siteIds } });
    return user;
  }

  /**
   * Checks the password and opens a new session (always a new token: no session fixation). The
   * attempt is counted in Redis (per user + address, address, user) before the password is
   * checked, so a burst of guesses sent together is limited like guesses sent one by one; past
   * a few failures each further attempt waits longer (back-off, not lock-out).
   */
  async login(username: string, password: string, address: string): Promise<LoginOutcome> {
    const retryAfterMs = await this.limits.reserveSignIn(username, address);
    // Refused attempts are not audited one by one: a flood must not grow the database.
    if (retryAfterMs > 0) return { ok: false, reason: 'too-many-attempts', retryAfterMs };
    const user = await this.users.byUsername(username);
    this.dummyHash ??= hashPassword(randomBytes(16).toString('hex'));
    const ok = await verifyPassword(password, user?.password_hash ?? (await this.dummyHash));
    if (!user || !ok || user.disabled_at !== null) {
      await this.audit.record({ actor_type: 'user', actor_id: user ? String(user.id) : null, action: 'auth.login_failed', details: { known_user: Boolean(user), address } });
      return { ok: false, reason: 'wrong-credentials' };
    }
    await this.limits.signInSucceeded(username, address);
    const token = randomBytes(32).toString('base64url');
    const csrfToken = randomBytes(24).toString('base64url');
    const expiresAt = Date.now() + IDLE_MS;
    await this.users.createSession({ idHash: sha256(token), userId: user.id, csrfToken, expiresAt });
    await this.audit.record({ actor_type: 'user', actor_id: String(user.id), action: 'auth.login', details: { address } });
    return {
      ok: true, token, expiresAt,
      user: { userId: user.id, username: user.username, displayName: user.display_name, role: user.role, siteIds: await this.users.siteIds(user.id), csrfToken },
    };
  }

  /** The user behind a session token, or undefined when unknown, expired or disabled. Slides the idle expiry. */
  async session(token: string): Promise<SessionUser | undefined> {
    const idHash = sha256(token);
    const row = await this.users.getSession(idHash);
    const now = Date.now();
    if (!row || row.expires_at < now || row.disabled_at !== null) return undefined;
    if (now - row.last_seen_at > 60_000) await this.users.touchSession(idHash, Math.min(now + IDLE_MS, row.created_at + ABSOLUTE_MS));
    return {
      userId: row.user_id, username: row.username, displayName: row.display_name, role: row.role,
      siteIds: await this.users.siteIds(row.user_id), csrfToken: row.csrf_token,
    };
  }

  /** Calls `listener` when sessions end anywhere (sign-out, disable, password reset), so open streams can close. */
  onSessionsEnded(listener: (ended: SessionsEnded) => void): Promise<() => void> {
    return this.limits.onSessionsEnded(listener);
  }

  /** Hash under which a session is stored (and named in sessions-ended events). */
  static sessionHash(token: string): string {
    return sha256(token);
  }

  async logout(token: string, userId?: number): Promise<void> {
    await this.users.deleteSession(sha256(token));
    await this.limits.publishSessionsEnded({ sessionHash: sha256(token) });
    if (userId !== undefined) await this.audit.record({ actor_type: 'user', actor_id: String(userId), action: 'auth.logout' });
  }

  private async existing(username: string) {
    const user = await this.users.byUsername(username);
    if (!user) throw new Error(`no user "${username}"`);
    return user;
  }

  /** Sets a new password and ends the user's sessions; `enable` also lifts a disable. */
  async resetPassword(username: string, password: string, opts: { enable?: boolean; by?: AuditActor } = {}): Promise<void> {
    this.checkPassword(password);
    const user = await this.existing(username);
    await this.users.setPassword(user.id, await hashPassword(password));
    await this.users.endSessions(user.id);
    if (opts.enable) await this.users.setDisabled(user.id, false);
    await this.limits.publishSessionsEnded({ userId: user.id });
    const by = opts.by ?? CLI_ACTOR;
    await this.audit.record({ actor_type: by.type, actor_id: by.id, action: 'user.reset_password', target_type: 'user', target_id: String(user.id), details: { enabled: Boolean(opts.enable) } });
  }

  /** Disables a user (their sessions end and their open event streams close) or enables them again. */
  async setDisabled(username: string, disabled: boolean, by: AuditActor = CLI_ACTOR): Promise<void> {
    const user = await this.existing(username);
    await this.users.setDisabled(user.id, disabled);
    if (disabled) {
      await this.users.endSessions(user.id);
      await this.limits.publishSessionsEnded({ userId: user.id });
    }
    await this.audit.record({ actor_type: by.type, actor_id: by.id, action: disabled ? 'user.disable' : 'user.enable', target_type: 'user', target_id: String(user.id) });
  }
}
