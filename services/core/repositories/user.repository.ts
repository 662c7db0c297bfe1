import type { Db } from '../db/database.js';
import type { User, UserRole } from '../db/schema.js';

/** Users, the sites each may see, and their sessions. */
export class UserRepository {
  constructor(private readonly db: Db) {}

  async create(user: { username: string; displayName: string; passwordHash: string; role: UserRole; siteIds: string[] }): Promise<User> {
    return this.db.transaction().execute(async (trx) => {
      const row = await trx.insertInto('users').values({
        username: user.username, display_name: user.displayName, password_hash: user.passwordHash,
        role: user.role, created_at: Date.now(), disabled_at: null,
      }).returningAll().executeTakeFirstOrThrow();
      for (const siteId of user.siteIds) await trx.insertInto('user_sites').values({ user_id: row.id, site_id: siteId }).execute();
      return row;
    });
  }

  byUsername(username: string): Promise<User | undefined> {
    return this.db.selectFrom('users').selectAll().where('username', '=', username).executeTakeFirst();
  }

  get(id: number): Promise<User | undefined> {
    return this.db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
  }

  list(): Promise<User[]> {
    return this.db.selectFrom('users').selectAll().orderBy('username').execute();
  }

  async siteIds(userId: number): Promise<string[]> {
    const rows = await this.db.selectFrom('user_sites').select('site_id').where('user_id', '=', userId).orderBy('site_id').execute();
    return rows.map((r) => r.site_id);
  }

  async setPassword(userId: number, passwordHash: string): Promise<void> {
    await this.db.updateTable('users').set({ password_hash: passwordHash }).where('id', '=', userId).execute();
  }

  async setDisabled(userId: number, disabled: boolean): Promise<void> {
    await this.db.updateTable('users').set({ disabled_at: disabled ? Date.now() : null }).where('id', '=', userId).execute();
  }

  async endSessions(userId: number): Promise<void> {
    await this.db.deleteFrom('sessions').where('user_id', '=', userId).execute();
  }

  async createSession(session: { idHash: string; userId: number; csrfToken: string; expiresAt: number }): Promise<void> {
    const now = Date.now();
    await this.db.insertInto('sessions').values({
      id_hash: session.idHash, user_id: session.userId, csrf_token: session.csrfToken,
      created_at: now, expires_at: session.expiresAt, last_seen_at: now,
    }).execute();
  }

  getSession(idHash: string) {
    return this.db.selectFrom('sessions').innerJoin('users', 'users.id', 'sessions.user_id')
      .select(['sessions.id_hash', 'sessions.user_id', 'sessions.csrf_token', 'sessions.expires_at', 'sessions.last_seen_at', 'sessions.created_at',
        'users.username', 'users.display_name', 'users.role', 'users.disabled_at'])
      .where('sessions.id_hash', '=', idHash).executeTakeFirst();
  }

  async touchSession(idHash: string, expiresAt: number): Promise<void> {
    await this.db.updateTable('sessions').set({ last_seen_at: Date.now(), expires_at: expiresAt }).where('id_hash', '=', idHash).execute();
  }

  async deleteSession(idHash: string): Promise<void> {
    await this.db.deleteFrom('sessions').where('id_hash', '=', idHash).execute();
  }

  async deleteExpiredSessions(): Promise<void> {
    await this.db.deleteFrom('sessions').where('expires_at', '<', Date.now()).execute();
  }
}
