import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { openDatabase, type DatabaseHandle, type Db } from '../../services/core/db/database.js';
import { GroupCommit } from '../../services/core/db/group-commit.js';
import { databases, PG_URL } from '../helpers/system.js';

/**
 * Group commit (services/core/db/group-commit.ts): pieces submitted together share one transaction,
 * yet each caller hears back only once its own piece is committed, and a bad piece fails alone.
 * "Committed" is checked from a second, independent connection, as a restarted process would see it.
 */
describe.each(await databases())('group commit on %s', (dialect) => {
  let writer: DatabaseHandle;
  let reader: DatabaseHandle;
  let dataDir: string;
  const schema = `gc_${randomBytes(4).toString('hex')}`;

  beforeAll(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ft-group-'));
    const url = dialect === 'postgres' ? PG_URL : `sqlite:${path.join(dataDir, 'db.sqlite')}`;
    writer = await openDatabase(url, { schema });
    reader = await openDatabase(url, { schema });
  });
  afterAll(async () => {
    await writer?.close();
    await reader?.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
    if (dialect === 'postgres') {
      const client = new pg.Client({ connectionString: PG_URL });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await client.end();
    }
  });

  const write = (trx: Db, target: string) => trx.insertInto('audit_log').values({
    site_id: 'site-a', actor_type: 'api_key', actor_id: 'test', action: 'instance.store', target_type: 'instance', target_id: target, at: Date.now(), details: null,
  }).execute();
  const committed = async (target: string) =>
    (await reader.db.selectFrom('audit_log').select('id').where('target_id', '=', target).execute()).length === 1;

  it('answers each caller only after the commit that holds its own piece', async () => {
    const group = new GroupCommit(writer.db);
    const [early, held] = [`early-${randomBytes(3).toString('hex')}`, `held-${randomBytes(3).toString('hex')}`];
    let openGate!: () => void;
    const gate = new Promise<void>((resolve) => { openGate = resolve; });

    // Same tick, so one group: "early" is written first, then "held" keeps the transaction open.
    let earlyVisibleWhenAnswered: boolean | undefined;
    const first = group.run((trx) => write(trx, early)).then(async () => { earlyVisibleWhenAnswered = await committed(early); });
    const second = group.run(async (trx) => { await write(trx, held); await gate; });

    // While the shared transaction is open, nobody has been answered and nothing is visible.
    const answeredEarly = await Promise.race([first.then(() => true), new Promise((r) => setTimeout(() => r(false), 300))]);
    expect(answeredEarly).toBe(false);
    expect(await committed(early)).toBe(false);

    openGate();
    await Promise.all([first, second]);
    expect(earlyVisibleWhenAnswered).toBe(true);
    expect(await committed(held)).toBe(true);
  });

  it('fails only the bad piece of a group; the others are committed and answered', async () => {
    const group = new GroupCommit(writer.db);
    const tag = randomBytes(3).toString('hex');
    const results = await Promise.allSettled([
      group.run((trx) => write(trx, `good1-${tag}`)),
      group.run(async (trx) => { await write(trx, `bad-${tag}`); throw new Error('bad piece'); }),
      group.run((trx) => write(trx, `good2-${tag}`)),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((results[1] as PromiseRejectedResult).reason.message).toBe('bad piece');
    expect(await committed(`good1-${tag}`)).toBe(true);
    expect(await committed(`good2-${tag}`)).toBe(true);
    expect(await committed(`bad-${tag}`)).toBe(false); // its write before the throw was rolled back
  });

  // Scripts (runScript): statements and what to make of them, a whole group sent and committed as one list.
  const insert = (target: string) => ({ query: writer.db.insertInto('audit_log').values({
    site_id: 'site-a', actor_type: 'api_key', actor_id: 'test', action: 'instance.store', target_type: 'instance', target_id: target, at: Date.now(), details: null,
  }).compile() });
  const exists = (target: string) => ({ query: writer.db.selectFrom('audit_log').select('id').where('target_id', '=', target).compile() });

  it('commits a group of scripts together, answers each with its own results, and writes a gated statement only when its gate holds', async () => {
    const group = new GroupCommit(writer.db);
    const tag = randomBytes(3).toString('hex');
    const [a, b] = await Promise.all([
      group.runScript({ steps: [insert(`a-${tag}`), exists(`a-${tag}`), { when: 1, ...insert(`a-gated-${tag}`) }], result: (r) => r.map((x) => x && x.rows.length) }),
      // This one's gate (a row that is not there) keeps its second insert from being written.
      group.runScript({ steps: [insert(`b-${tag}`), exists(`nobody-${tag}`), { when: 1, ...insert(`b-gated-${tag}`) }], result: (r) => r.map((x) => x && x.rows.length) }),
    ]);
    expect(a).toEqual([0, 1, 0]);
    expect(b).toEqual([0, 0, null]);
    for (const target of [`a-${tag}`, `a-gated-${tag}`, `b-${tag}`]) expect(await committed(target), target).toBe(true);
    expect(await committed(`b-gated-${tag}`)).toBe(false);
  });

  it('fails only the script whose statement fails or whose result throws; the others are committed', async () => {
    const group = new GroupCommit(writer.db);
    const tag = randomBytes(3).toString('hex');
    const results = await Promise.allSettled([
      group.runScript({ steps: [insert(`s-good-${tag}`)], result: () => 'ok' }),
      group.runScript({ steps: [insert(`s-bad-${tag}`), { query: sql`select * from no_such_table`.compile(writer.db) }], result: () => 'never' }),
      group.runScript({ steps: [exists(`nobody-${tag}`), { when: 0, ...insert(`s-refused-${tag}`) }], result: () => { throw new Error('refused'); } }),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'rejected']);
    expect((results[2] as PromiseRejectedResult).reason.message).toBe('refused');
    expect(await committed(`s-good-${tag}`)).toBe(true);
    expect(await committed(`s-bad-${tag}`)).toBe(false); // its first statement was rolled back with the failed one
    expect(await committed(`s-refused-${tag}`)).toBe(false);
  });
});
