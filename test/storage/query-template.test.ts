import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type DatabaseHandle } from '../../services/core/db/database.js';
import { QueryTemplate } from '../../services/core/db/query-template.js';

/** QueryTemplate (services/core/db/query-template.ts): compiled once, filled per call, the same statement Kysely builds. */
describe('query template', () => {
  let dataDir: string;
  let handle: DatabaseHandle;
  beforeAll(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ft-template-'));
    handle = await openDatabase(`sqlite:${path.join(dataDir, 'db.sqlite')}`);
  });
  afterAll(async () => {
    await handle?.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  type Entry = { site: string; actor: string; at: number; details: string | null };
  const build = (v: Entry) => handle.db.insertInto('audit_log').values({
    site_id: v.site, actor_type: 'api_key', actor_id: v.actor, action: 'instance.store', target_type: 'instance',
    target_id: sql<string>`cast((select count(*) from audit_log where site_id = ${v.site}) as text)`, at: v.at, details: v.details,
  }).compile();

  it('gives the statement and parameters Kysely builds, for any values, constants kept', () => {
    const template = new QueryTemplate(build);
    for (const v of [
      { site: 'site-a', actor: 'k1', at: 1, details: null },
      { site: "o'brien", actor: 'k2', at: 2_000_000_000_000, details: '{"origin":"stow"}' },
    ]) {
      const direct = build(v);
      const filled = template.fill(v);
      expect(filled.sql).toBe(direct.sql);
      expect(filled.parameters).toEqual(direct.parameters);
    }
  });

  it('runs: the rows written are the values given', async () => {
    const template = new QueryTemplate(build);
    await handle.db.executeQuery(template.fill({ site: 'site-t', actor: 'k9', at: 42, details: null }));
    const row = await handle.db.selectFrom('audit_log').selectAll().where('site_id', '=', 'site-t').executeTakeFirstOrThrow();
    expect(row).toMatchObject({ actor_id: 'k9', at: 42, details: null, target_id: '0' });
  });

  it('refuses a statement whose text depends on a value', () => {
    const inlined = new QueryTemplate((v: { column: string }) => handle.db.selectFrom('audit_log').select(sql.ref(v.column).as('x')).compile());
    expect(() => inlined.fill({ column: 'site_id' })).toThrow(/text|not parameters/);
    const dropped = new QueryTemplate((v: { site: string; unused: string }) => handle.db.selectFrom('audit_log').select('id').where('site_id', '=', v.site).compile());
    expect(() => dropped.fill({ site: 'a', unused: 'b' })).toThrow(/not parameters of the statement: unused/);
  });
});
