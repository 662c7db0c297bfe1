import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import {
  CompiledQuery, SqliteAdapter, SqliteIntrospector, SqliteQueryCompiler,
  type DatabaseConnection, type Dialect, type Driver, type Kysely, type QueryResult,
} from 'kysely';

/**
 * SQLite on its own thread. better-sqlite3 is synchronous: run on the main thread, every COMMIT
 * (a WAL fsync with synchronous=FULL) and every busy wait on a lock held by another process stops
 * the event loop, so no other upload's bytes and no other answer move meanwhile (the ingest
 * profile: a third of the API's busy time). Here one worker thread owns the one connection and the
 * main thread only posts statements and awaits their results; durability is unchanged (same file,
 * same pragmas, a commit resolves only after SQLite returned from it).
 *
 * Written as a CommonJS string so it runs the same under tsx and from the compiled output.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const SQLite = require(workerData.module);
let db;
try {
  db = new SQLite(workerData.file);
  // Names, IDs and password hashes: readable by this user only (the WAL files follow the file's mode).
  if (workerData.file !== ':memory:') fs.chmodSync(workerData.file, 0o600);
  for (const p of workerData.pragmas) db.pragma(p);
  parentPort.postMessage({ ready: true });
} catch (e) {
  parentPort.postMessage({ ready: false, error: { message: String(e && e.message || e), code: e && e.code } });
}
// Kysely sends the same few statement texts over and over: prepare each once.
const statements = new Map();
function prepare(sql) {
  let stmt = statements.get(sql);
  if (!stmt) {
    stmt = db.prepare(sql);
    if (statements.size >= 500) statements.delete(statements.keys().next().value);
    statements.set(sql, stmt);
  }
  return stmt;
}
const bind = (p) => (p instanceof Uint8Array && !Buffer.isBuffer(p) ? Buffer.from(p.buffer, p.byteOffset, p.byteLength) : p);
function runOne(sql, params) {
  const stmt = prepare(sql);
  const bound = params.map(bind);
  if (stmt.reader) return { rows: stmt.all(bound) };
  const { changes, lastInsertRowid } = stmt.run(bound);
  return { rows: [], changes, lastInsertRowid };
}
parentPort.on('message', (msg) => {
  if (msg.close) { try { db && db.close(); } finally { parentPort.postMessage({ id: msg.id, closed: true }); } return; }
  if (msg.steps) {
    // Several statements in one message (inside the caller's transaction, or with "transaction" as
    // one of their own: begin, the statements, commit): a step with "when" runs only if that earlier
    // step returned a row or changed one. The first error stops the rest (and rolls back the
    // transaction this message began).
    let began = false;
    try {
      if (msg.transaction) { prepare('begin immediate').run(); began = true; }
      const results = [];
      for (const step of msg.steps) {
        const gate = step.when === undefined ? undefined : results[step.when];
        if (gate !== undefined && (gate === null || (gate.rows.length === 0 && !gate.changes))) { results.push(null); continue; }
        results.push(runOne(step.sql, step.params));
      }
      if (began) prepare('commit').run();
      parentPort.postMessage({ id: msg.id, results });
    } catch (e) {
      if (began && db.inTransaction) { try { prepare('rollback').run(); } catch {} }
      parentPort.postMessage({ id: msg.id, error: { message: String(e && e.message || e), code: e && e.code } });
    }
    return;
  }
  try {
    const stmt = prepare(msg.sql);
    const params = msg.params.map(bind);
    if (stmt.reader) parentPort.postMessage({ id: msg.id, rows: stmt.all(params) });
    else {
      const { changes, lastInsertRowid } = stmt.run(params);
      parentPort.postMessage({ id: msg.id, changes, lastInsertRowid });
    }
  } catch (e) {
    parentPort.postMessage({ id: msg.id, error: { message: String(e && e.message || e), code: e && e.code } });
  }
});
`;

interface Reply {
  id: number;
  results?: ({ rows: Record<string, unknown>[]; changes?: number | bigint; lastInsertRowid?: number | bigint } | null)[];
  rows?: Record<string, unknown>[];
  changes?: number | bigint;
  lastInsertRowid?: number | bigint;
  closed?: boolean;
  error?: { message: string; code?: string };
}

/** An error from the SQLite thread, with better-sqlite3's `code` (SQLITE_FULL, SQLITE_BUSY…). */
function sqliteError(error: { message: string; code?: string }): Error {
  return Object.assign(new Error(error.message), { name: 'SqliteError', code: error.code });
}

class SqliteThread {
  private readonly pending = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();
  private nextId = 0;
  private dead: Error | undefined;

  private constructor(private readonly worker: Worker) {
    worker.on('message', (reply: Reply) => {
      const waiter = this.pending.get(reply.id);
      if (!waiter) return;
      this.pending.delete(reply.id);
      if (!this.pending.size) this.worker.unref();
      if (reply.error) waiter.reject(sqliteError(reply.error));
      else waiter.resolve(reply);
    });
    const fail = (error: Error) => {
      this.dead = error;
      for (const waiter of this.pending.values()) waiter.reject(error);
      this.pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`the SQLite thread exited (${code})`)));
  }

  static async open(file: string, pragmas: string[]): Promise<SqliteThread> {
    const module = createRequire(import.meta.url).resolve('better-sqlite3');
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { file, pragmas, module } });
    const first = await new Promise<{ ready: boolean; error?: { message: string; code?: string } }>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    if (!first.ready) {
      await worker.terminate();
      throw sqliteError(first.error!);
    }
    worker.unref();
    return new SqliteThread(worker);
  }

  /** One request; the thread is kept referenced only while requests are in flight (an idle database must not keep a CLI alive). */
  request(message: { sql: string; params: readonly unknown[] } | { steps: ScriptStep[]; transaction?: boolean } | { close: true }): Promise<Reply> {
    if (this.dead) return Promise.reject(this.dead);
    const id = ++this.nextId;
    return new Promise<Reply>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.ref();
      this.worker.postMessage({ id, ...message });
    });
  }

  async close(): Promise<void> {
    if (!this.dead) await this.request({ close: true }).catch(() => {});
    await this.worker.terminate();
  }
}

class ThreadConnection implements DatabaseConnection {
  /**
   * `begin immediate` (writeTransaction) is not sent on its own: it goes in the same message as the
   * transaction's first statement (one hand-off to the thread fewer per transaction). Same order on
   * the same connection, which nobody else uses meanwhile (the driver's lock), so the same effect;
   * if it fails (SQLITE_BUSY after busy_timeout) that first statement fails with its error.
   */
  private beginPending = false;

  constructor(private readonly thread: SqliteThread) {}

  async executeQuery<R>(compiled: CompiledQuery): Promise<QueryResult<R>> {
    const text = compiled.sql.trim().toLowerCase();
    if (text === 'begin immediate') {
      this.beginPending = true;
      return { rows: [] };
    }
    if (this.beginPending && (text === 'commit' || text === 'rollback')) {
      this.beginPending = false; // nothing ran: nothing to end
      return { rows: [] };
    }
    const begin = this.beginPending;
    this.beginPending = false;
    if (compiled.sql === TRANSACTION_SQL) {
      if (begin) throw new Error('a transaction of its own cannot run inside another');
      const reply = await this.thread.request({ steps: compiled.parameters[0] as ScriptStep[], transaction: true });
      return { rows: reply.results!.map((r) => (r ? { rows: r.rows.map(toBuffers), changes: Number(r.changes ?? 0) } : null)) as R[] };
    }
    if (compiled.sql === STEPS_SQL || begin) {
      // runSteps (database.ts): the statements of one piece of work in one message, not one round trip each.
      const asked = compiled.sql === STEPS_SQL ? (compiled.parameters[0] as ScriptStep[]) : [{ sql: compiled.sql, params: compiled.parameters }];
      const steps = begin
        ? [{ sql: 'begin immediate', params: [] }, ...asked.map((s) => (s.when === undefined ? s : { ...s, when: s.when + 1 }))]
        : asked;
      const reply = await this.thread.request({ steps });
      const results = begin ? reply.results!.slice(1) : reply.results!;
      if (compiled.sql !== STEPS_SQL) {
        const r = results[0]!;
        return { rows: r.rows.map(toBuffers) as R[], numAffectedRows: r.changes == null ? undefined : BigInt(r.changes), insertId: r.lastInsertRowid == null ? undefined : BigInt(r.lastInsertRowid) };
      }
      return { rows: results.map((r) => (r ? { rows: r.rows.map(toBuffers), changes: Number(r.changes ?? 0) } : null)) as R[] };
    }
    const reply = await this.thread.request({ sql: compiled.sql, params: compiled.parameters });
    if (reply.rows) return { rows: reply.rows.map(toBuffers) as R[] };
    return {
      numAffectedRows: reply.changes == null ? undefined : BigInt(reply.changes),
      insertId: reply.lastInsertRowid == null ? undefined : BigInt(reply.lastInsertRowid),
      rows: [],
    };
  }

  // eslint-disable-next-line require-yield
  async *streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
    throw new Error('streaming queries are not supported on SQLite');
  }
}

/**
 * The marker `runSteps` (database.ts) sends instead of SQL: its one parameter is a list of
 * compiled statements that the SQLite thread runs in one go. Never sent to a database.
 */
export const STEPS_SQL = '/* ft:steps */';

/** Like STEPS_SQL, but the list is a transaction of its own: begun, committed (or rolled back) by the thread in the same message (`runTransaction`). */
export const TRANSACTION_SQL = '/* ft:transaction */';

/** One statement of a `runSteps` message; `when`: run only if that earlier step returned or changed a row. */
export interface ScriptStep {
  sql: string;
  params: readonly unknown[];
  when?: number;
}

/** BLOBs arrive from the thread as Uint8Array; better-sqlite3 on the main thread gave Buffers. */
function toBuffers(row: Record<string, unknown>): Record<string, unknown> {
  for (const key in row) {
    const value = row[key];
    if (value instanceof Uint8Array && !Buffer.isBuffer(value)) row[key] = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  }
  return row;
}

/** One connection, so one user at a time (a transaction holds it from BEGIN to COMMIT), as Kysely's own SQLite driver does. */
class ThreadDriver implements Driver {
  private thread!: SqliteThread;
  private connection!: ThreadConnection;
  private lock: Promise<void> = Promise.resolve();
  private release: (() => void) | undefined;

  constructor(private readonly file: string, private readonly pragmas: string[]) {}

  async init(): Promise<void> {
    this.thread = await SqliteThread.open(this.file, this.pragmas);
    this.connection = new ThreadConnection(this.thread);
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    const previous = this.lock;
    let release!: () => void;
    this.lock = new Promise<void>((resolve) => { release = resolve; });
    await previous;
    this.release = release;
    return this.connection;
  }

  async releaseConnection(): Promise<void> {
    const release = this.release;
    this.release = undefined;
    release?.();
  }

  async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin'));
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('commit'));
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('rollback'));
  }

  async destroy(): Promise<void> {
    await this.thread?.close();
  }
}

/** A Kysely dialect for a SQLite file whose one connection lives on a worker thread. */
export function sqliteThreadDialect(file: string, pragmas: string[]): Dialect {
  return {
    createAdapter: () => new SqliteAdapter(),
    createDriver: () => new ThreadDriver(file, pragmas),
    createIntrospector: (db: Kysely<any>) => new SqliteIntrospector(db), // eslint-disable-line @typescript-eslint/no-explicit-any
    createQueryCompiler: () => new SqliteQueryCompiler(),
  };
}
