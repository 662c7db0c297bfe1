import { parseArgs } from 'node:util';
import type { UserRole } from '../core/db/schema.js';
import { aeTitle, loadConfig } from '../core/config.js';
import { createCore, type Core } from '../core/core.js';
import { createLogger } from '../core/logger.js';
import { ROLES, generatePassword } from '../core/services/auth.service.js';

import { UsageError, type Command, type Options, type Values } from './command.js';
import { DESTINATION_COMMANDS } from './destination-commands.js';

export { UsageError, type Command };


/** "90d", "12h", "30m" or an ISO date → epoch ms. */
function when(value: string | undefined, now = Date.now()): number {
  if (!value || value === 'now') return now;
  const relative = /^(\d+)([dhm])$/.exec(value);
  if (relative) return now + Number(relative[1]) * { d: 86_400_000, h: 3_600_000, m: 60_000 }[relative[2] as 'd' | 'h' | 'm'];
  const at = Date.parse(value);
  if (Number.isNaN(at)) throw new UsageError(`not a time: "${value}" (use now, 30m, 12h, 90d or an ISO date)`);
  return at;
}

async function passwordFrom(values: Values): Promise<{ password: string; generated: boolean }> {
  if (values['password-stdin']) return { password: (await readStdin()).trim(), generated: false };
  return { password: generatePassword(), generated: true };
}

const passwordStdin: Options = { 'password-stdin': { type: 'boolean' } };

export const COMMANDS: Command[] = [
  {
    name: 'site:create', usage: 'site:create <id> <name>', summary: 'create a hospital site (id: lowercase letters, digits, dashes)',
    async run(core, [id, ...name]) {
      if (!id) throw new UsageError('a site id is needed');
      const site = await core.services.apiKeys.createSite(id, name.join(' ') || id);
      console.log(`site ${site.id} created`);
      return 0;
    },
  },
  {
    name: 'site:list', usage: 'site:list', summary: 'list sites',
    async run(core) {
      for (const site of await core.repos.sites.list()) console.log(`${site.id}\t${site.name}`);
      return 0;
    },
  },
  {
    name: 'key:create', usage: 'key:create <site> [label] [--expires 90d|<ISO date>]', summary: 'create an API key for a site; the key is shown once',
    options: { expires: { type: 'string' } },
    async run(core, [site, ...label], values) {
      if (!site) throw new UsageError('a site is needed');
      const { id, key } = await core.services.apiKeys.createKey(site, label.join(' ') || 'default');
      if (values.expires) await core.services.apiKeys.expireKey(id, when(values.expires as string));
      console.log(`key ${id} created for site ${site}. Store it now; it is not shown again:\n\n  ${key}\n`);
      return 0;
    },
  },
  {
    name: 'key:list', usage: 'key:list [site]', summary: 'list keys (ids, labels, state, expiry; never the secret)',
    async run(core, [site]) {
      const now = Date.now();
      for (const key of await core.repos.sites.listKeys(site)) {
        const state = key.revoked_at ? 'revoked' : key.expires_at !== null && key.expires_at <= now ? 'expired' : 'active';
        const expiry = key.expires_at !== null ? `\texpires ${new Date(key.expires_at).toISOString()}` : '';
        console.log(`${key.id}\t${key.site_id}\t${key.label}\t${state}\tcreated ${new Date(key.created_at).toISOString()}${expiry}`);
      }
      return 0;
    },
  },
  {
    name: 'key:revoke', usage: 'key:revoke <key-id>', summary: 'revoke a key now; requests with it get 401 from then on',
    async run(core, [id]) {
      if (!id) throw new UsageError('a key id is needed');
      const ok = await core.services.apiKeys.revokeKey(id);
      console.log(ok ? `key ${id} revoked` : `no active key ${id}`);
      return ok ? 0 : 1;
    },
  },
  {
    name: 'key:rotate', usage: 'key:rotate <key-id> [--grace 24h]', summary: 'new key for the same site and label (shown once); the old one works until the grace period ends',
    options: { grace: { type: 'string' } },
    async run(core, [id], values) {
      if (!id) throw new UsageError('a key id is needed');
      const until = when((values.grace as string | undefined) ?? '24h');
      const { id: newId, key } = await core.services.apiKeys.rotateKey(id, until);
      console.log(`key ${newId} replaces ${id} (which stops working at ${new Date(until).toISOString()}). Store it now; it is not shown again:\n\n  ${key}\n`);
      return 0;
    },
  },
  {
    name: 'key:expire', usage: 'key:expire <key-id> --at now|30m|12h|90d|<ISO date>', summary: 'make a key stop working at a given time',
    options: { at: { type: 'string' } },
    async run(core, [id], values) {
      if (!id || !values.at) throw new UsageError('a key id and --at are needed');
      const at = when(values.at as string);
      const ok = await core.services.apiKeys.expireKey(id, at);
      console.log(ok ? `key ${id} expires at ${new Date(at).toISOString()}` : `no active key ${id}`);
      return ok ? 0 : 1;
    },
  },
  {
    name: 'user:create', usage: `user:create <username> --role ${ROLES.join('|')} --sites a,b [--name "Dr X"] [--password-stdin]`,
    summary: 'create a user; without --password-stdin a password is generated and shown once',
    options: { role: { type: 'string' }, sites: { type: 'string' }, name: { type: 'string' }, ...passwordStdin },
    async run(core, [username], values) {
      if (!username || !values.role) throw new UsageError('a username and --role are needed');
      const { password, generated } = await passwordFrom(values);
      const siteIds = String(values.sites ?? '').split(',').map((x) => x.trim()).filter(Boolean);
      await core.services.auth.createUser({ username, displayName: values.name as string | undefined, password, role: values.role as UserRole, siteIds });
      console.log(`user ${username} (${values.role}) created for sites: ${siteIds.join(', ') || '(none)'}`);
      if (generated) console.log(`password (shown once): ${password}`);
      return 0;
    },
  },
  {
    name: 'user:list', usage: 'user:list', summary: 'list users, roles, sites and state',
    async run(core) {
      for (const user of await core.repos.users.list()) {
        console.log(`${user.username}\t${user.role}\t${(await core.repos.users.siteIds(user.id)).join(',')}\t${user.disabled_at ? 'disabled' : 'active'}`);
      }
      return 0;
    },
  },
  {
    name: 'user:reset-password', usage: 'user:reset-password <username> [--password-stdin] [--enable]',
    summary: 'set a new password (generated and shown once unless given on stdin); ends their sessions; --enable also re-enables',
    options: { enable: { type: 'boolean' }, ...passwordStdin },
    async run(core, [username], values) {
      if (!username) throw new UsageError('a username is needed');
      const { password, generated } = await passwordFrom(values);
      await core.services.auth.resetPassword(username, password, { enable: Boolean(values.enable) });
      console.log(`password of ${username} reset; their sessions ended`);
      if (generated) console.log(`password (shown once): ${password}`);
      return 0;
    },
  },
  {
    name: 'user:disable', usage: 'user:disable <username>', summary: 'disable a user: sessions and open event streams end, sign-in refused',
    async run(core, [username]) {
      if (!username) throw new UsageError('a username is needed');
      await core.services.auth.setDisabled(username, true);
      console.log(`user ${username} disabled`);
      return 0;
    },
  },
  {
    name: 'user:enable', usage: 'user:enable <username>', summary: 'enable a disabled user again',
    async run(core, [username]) {
      if (!username) throw new UsageError('a username is needed');
      await core.services.auth.setDisabled(username, false);
      console.log(`user ${username} enabled`);
      return 0;
    },
  },
  ...DESTINATION_COMMANDS,
  {
    name: 'ae:add', usage: 'ae:add <site> <calling AE> [--host <ip>]', summary: 'let a DICOM sender (its calling AE title) C-STORE into a site; with --host only from that address',
    options: { host: { type: 'string' } },
    async run(core, [site, title], values) {
      if (!site || !title) throw new UsageError('a site and a calling AE title are needed');
      if (!(await core.repos.sites.get(site))) throw new UsageError(`no site "${site}" (create it with site:create)`);
      const ae = aeTitle(title, 'calling AE title');
      const host = (values.host as string | undefined) ?? null;
      await core.repos.aeTitles.upsert({ aeTitle: ae, siteId: site, host });
      await core.repos.audit.record({ actor_type: 'system', actor_id: 'cli', site_id: site, action: 'ae.add', target_type: 'ae_title', target_id: ae, details: { host } });
      console.log(`calling AE ${ae} stores into site ${site}${host ? ` (only from ${host})` : ''}`);
      return 0;
    },
  },
  {
    name: 'ae:list', usage: 'ae:list', summary: 'list calling AE titles, their sites and hosts',
    async run(core) {
      for (const ae of await core.repos.aeTitles.list()) console.log(`${ae.ae_title}\t${ae.site_id}\t${ae.host ?? '(any host)'}`);
      return 0;
    },
  },
  {
    name: 'ae:remove', usage: 'ae:remove <calling AE>', summary: 'stop accepting associations from that AE title',
    async run(core, [title]) {
      if (!title) throw new UsageError('a calling AE title is needed');
      const ae = title.trim();
      const ok = await core.repos.aeTitles.remove(ae);
      if (ok) await core.repos.audit.record({ actor_type: 'system', actor_id: 'cli', action: 'ae.remove', target_type: 'ae_title', target_id: ae });
      console.log(ok ? `calling AE ${ae} removed` : `no calling AE ${ae}`);
      return ok ? 0 : 1;
    },
  },
];

export function usage(commands = COMMANDS): string {
  const width = Math.max(...commands.map((c) => c.name.length)) + 2;
  return [
    'fracture-triage admin CLI (uses DATABASE_URL / DATA_DIR like the server)',
    '',
    'usage: npm run cli -- <command> [arguments]      npm run cli -- <command> --help',
    '',
    ...commands.map((c) => `  ${c.name.padEnd(width)}${c.summary}`),
    '',
  ].join('\n');
}

const commandHelp = (command: Command) => `usage: npm run cli -- ${command.usage}\n\n  ${command.summary}\n`;

export async function runAdmin(argv: string[], commands = COMMANDS): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === 'help' || name === '--help' || name === '-h') {
    process.stdout.write(usage(commands));
    return name ? 0 : 2;
  }
  const command = commands.find((c) => c.name === name);
  if (!command) {
    process.stderr.write(`unknown command "${name}"\n\n${usage(commands)}`);
    return 2;
  }
  let parsed: { positionals: string[]; values: Values };
  try {
    parsed = parseArgs({ args: rest, allowPositionals: true, strict: true, options: { ...command.options, help: { type: 'boolean', short: 'h' } } });
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${commandHelp(command)}`);
    return 2;
  }
  if (parsed.values.help) {
    process.stdout.write(commandHelp(command));
    return 0;
  }
  const core = await createCore(loadConfig(), createLogger('warn', 'cli'));
  try {
    return await command.run(core, parsed.positionals, parsed.values);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`error: ${err.message}\n\n${commandHelp(command)}`);
      return 2;
    }
    console.error(`error: ${(err as Error).message}`);
    return 1;
  } finally {
    await core.close();
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.umask(0o077);
  runAdmin(process.argv.slice(2)).then((code) => process.exit(code));
}
