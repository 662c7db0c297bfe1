import fs from 'node:fs';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import { CompiledQuery, Kysely, PostgresDialect, SqliteAdapter, SqliteDialect, sql } from 'kysely';
import pg from 'pg';
import { migrateToLatest } from './migrations.js';
import { STEPS_SQL, TRANSACTION_SQL, sqliteThreadDialect, type ScriptStep } from './sqlite-thread.js';
import type { Database } from './schema.js';

export type Db = Kysely<Database>;

export interface DatabaseHandle {
  db: Db;
  /**
   * For reads outside any transaction that may see only committed data (the ingest's "stored
   * before?" lookup). On a SQLite file: a second, read-only connection, so such a
   * read does not queue behind the writer's open transaction and its COMMIT (WAL lets it read
   * meanwhile). It runs on the calling (main) thread: use it for short indexed lookups only.
   * Elsewhere (PostgreSQL's pool, SQLite in memory) the same as `db`.
   */
  readDb: Db;
  dialect: 'sqlite' | 'postgres';
  close(): Promise<void>;
}

// int8 (bigint) columns hold epoch milliseconds and ids: well inside 2^53, so plain numbers.
pg.types.setTypeParser(20, (value) => Number(value));

/**
 * Opens the database named by `url` (`sqlite:<file>`, `sqlite::memory:` or `postgres://…`) and
 * brings its schema up to date. `schema` (PostgreSQL only) isolates tests sharing one database.
 */
export async function openDatabase(url: string, opts: { schema?: string } = {}): Promise<DatabaseHandle> {
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    if (opts.schema) {
      const admin = new pg.Client({ connectionString: url });
      await admin.connect();
      await admin.query(`CREATE SCHEMA IF NOT EXISTS "${opts.schema}"`);
      await admin.end();
    }
    const pool = new pg.Pool({
      connectionString: url,
      max: 10,
      ...(opts.schema ? { options: `-c search_path="${opts.schema}"` } : {}),
    });
    // A dropped connection must not take the process down; the next query reconnects.
    pool.on('error', () => {});
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    await migrateToLatest(db, 'postgres', opts.schema);
    return { db, readDb: db, dialect: 'postgres', close: () => db.destroy() };
  }

  const file = url.replace(/^sqlite:/, '');
  if (file !== ':memory:') fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true, mode: 0o700 });
  // WAL + synchronous=FULL: a committed row survives a power cut, which is what lets us say "stored".
  // The connection lives on its own thread (sqliteThreadDialect): commits and lock waits do not stop the event loop.
  const db = new Kysely<Database>({ dialect: sqliteThreadDialect(file, ['journal_mode = WAL', 'synchronous = FULL', 'busy_timeout = 5000', 'foreign_keys = ON']) });
  await migrateToLatest(db, 'sqlite');
  if (file === ':memory:') return { db, readDb: db, dialect: 'sqlite', close: () => db.destroy() };
  // journal_mode=WAL is a property of the file (set above). This one is read-only and on the main
  // thread: a point lookup by a unique key takes microseconds, and in WAL mode a reader does not wait
  // for the writer's lock or its COMMIT, whereas a message to a thread cost milliseconds of wake-up
  // on a loaded machine. Writes and anything that can wait stay on the SQLite thread.
  const reader = new SQLite(file, { readonly: true, fileMustExist: true });
  reader.pragma('busy_timeout = 1000');
  // Kysely's SQLite driver prepares every query anew; the same few lookups run per request, so keep them.
  const prepared = new Map<string, ReturnType<typeof reader.prepare>>();
  const database = {
    close: () => reader.close(),
    prepare: (text: string) => {
      let stmt = prepared.get(text);
      if (!stmt) {
        stmt = reader.prepare(text);
        if (prepared.size >= 200) prepared.delete(prepared.keys().next().value!);
        prepared.set(text, stmt);
      }
      return stmt;
    },
  };
  const readDb = new Kysely<Database>({ dialect: new SqliteDialect({ database }) });
  return { db, readDb, dialect: 'sqlite', close: async () => { await readDb.destroy(); await db.destroy(); } };
}

/**
 * A transaction that reads, then writes. On SQLite it starts with BEGIN IMMEDIATE (takes the write
 * lock first, waiting up to busy_timeout): a plain deferred transaction that reads first fails at
 * once with "database is locked" (SQLITE_BUSY_SNAPSHOT, busy_timeout does not apply) when another
 * process — the API and the workers share the file — commits between its read and its write.
 */
export async function writeTransaction<T>(db: Db, fn: (trx: Db) => Promise<T>): Promise<T> {
  if (!(db.getExecutor().adapter instanceof SqliteAdapter)) return db.transaction().execute(fn);
  return db.connection().execute(async (conn) => {
    await sql`begin immediate`.execute(conn);
    try {
      const result = await fn(conn);
      await sql`commit`.execute(conn);
      return result;
    } catch (error) {
      await sql`rollback`.execute(conn).catch(() => {});
      throw error;
    }
  });
}

/** One statement for `runSteps`; `when`: run it only if that earlier step returned or changed a row. */
export interface Step {
  query: CompiledQuery;
  when?: number;
}

/** What a step gave: its rows (for `returning` and selects) and rows changed; null if skipped by its `when`. */
export type StepResult = { rows: Record<string, unknown>[]; changes: number } | null;

/**
 * Runs statements in order, inside the caller's transaction (`trx`), where a statement that does
 * not depend on an earlier one's result in JS can be sent with it. On SQLite the whole list is one
 * message to the SQLite thread instead of one round trip per statement (the thread hand-off, not
 * the statement, was the cost); elsewhere the statements run one by one. An error stops the list
 * and is thrown: the caller's transaction rolls back what ran before it.
 */
export async function runSteps(trx: Db, steps: Step[]): Promise<StepResult[]> {
  if (trx.getExecutor().adapter instanceof SqliteAdapter) {
    const message: ScriptStep[] = steps.map((s) => ({ sql: s.query.sql, params: s.query.parameters, when: s.when }));
    const { rows } = await trx.executeQuery(CompiledQuery.raw(STEPS_SQL, [message]));
    return rows as StepResult[];
  }
  const results: StepResult[] = [];
  for (const step of steps) {
    const gate = step.when === undefined ? undefined : results[step.when];
    if (gate !== undefined && (gate === null || (gate.rows.length === 0 && !gate.changes))) {
      results.push(null);
      continue;
    }
    const r = await trx.executeQuery(step.query);
    results.push({ rows: r.rows as Record<string, unknown>[], changes: Number(r.numAffectedRows ?? 0) });
  }
  return results;
}

/**
 * Runs statements (as `runSteps`) as a transaction of their own, taking the write lock first (as
 * `writeTransaction`). On a SQLite file that is one message to the SQLite thread — begin, the
 * statements, commit — instead of a round trip for the statements and another for the commit;
 * elsewhere an ordinary transaction. Checks that decide whether to write must therefore be
 * statements too (a `when` on a select), not JavaScript between the statements and the commit.
 */
export async function runTransaction(db: Db, steps: Step[]): Promise<StepResult[]> {
  if (db.getExecutor().adapter instanceof SqliteAdapter) {
    const message: ScriptStep[] = steps.map((s) => ({ sql: s.query.sql, params: s.query.parameters, when: s.when }));
    return db.connection().execute(async (conn) => (await conn.executeQuery(CompiledQuery.raw(TRANSACTION_SQL, [message]))).rows as StepResult[]);
  }
  return writeTransaction(db, (trx) => runSteps(trx, steps));
}
