import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import type { UserRole } from '../core/db/schema.js';
import { aeTitle, loadConfig } from '../core/config.js';
import { createCore } from '../core/core.js';
import { createLogger } from '../core/logger.js';

const USAGE = `fracture-triage admin CLI (uses DATABASE_URL / DATA_DIR like the server)

  site:create <id> <name>        create a hospital site (id: lowercase letters, digits, dashes)
  site:list                      list sites
  key:create <site> [label]      create an API key for a site; the key is shown once
  key:list [site]                list keys (ids, labels, state; never the secret)
  key:revoke <key-id>            revoke a key; requests with it get 401 from then on
  user:create <username> --role radiologist|admin --sites a,b [--name "Dr X"] [--password-stdin]
                                 create a user; without --password-stdin a password is generated and shown once
  user:list                      list users, roles and sites
  user:disable <username>        disable a user and end their sessions
  ae:add <site> <calling AE> [--host <ip>]
                                 let a DICOM sender (its calling AE title) C-STORE into a site;
                                 with --host only from that address
  ae:list                        list calling AE titles, their sites and hosts
  ae:remove <calling AE>         stop accepting associations from that AE title
`;

export async function runAdmin(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv, allowPositionals: true, strict: true,
    options: { role: { type: 'string' }, sites: { type: 'string' }, name: { type: 'string' }, 'password-stdin': { type: 'boolean' }, host: { type: 'string' } },
  });
  const [command, ...args] = positionals;
  if (!command || command === 'help') {
    process.stdout.write(USAGE);
    return command ? 0 : 2;
  }
  const config = loadConfig();
  const core = await createCore(config, createLogger('warn', 'cli'));
  try {
    switch (command) {
      case 'site:create': {
        const [id, ...name] = args;
        if (!id) throw new Error('usage: site:create <id> <name>');
        const site = await core.services.apiKeys.createSite(id, name.join(' ') || id);
        console.log(`site ${site.id} created`);
        return 0;
      }
      case 'site:list':
        for (const site of await core.repos.sites.list()) console.log(`${site.id}\t${site.name}`);
        return 0;
      case 'key:create': {
        const [site, ...label] = args;
        if (!site) throw new Error('usage: key:create <site> [label]');
        const { id, key } = await core.services.apiKeys.createKey(site, label.join(' ') || 'default');
        console.log(`key ${id} created for site ${site}. Store it now; it is not shown again:\n\n  ${key}\n`);
        return 0;
      }
      case 'key:list':
        for (const key of await core.repos.sites.listKeys(args[0])) {
          console.log(`${key.id}\t${key.site_id}\t${key.label}\t${key.revoked_at ? 'revoked' : 'active'}\tcreated ${new Date(key.created_at).toISOString()}`);
        }
        return 0;
      case 'key:revoke': {
        if (!args[0]) throw new Error('usage: key:revoke <key-id>');
        const ok = await core.services.apiKeys.revokeKey(args[0]);
        console.log(ok ? `key ${args[0]} revoked` : `no active key ${args[0]}`);
        return ok ? 0 : 1;
      }
      case 'user:create': {
        const [username] = args;
        if (!username || !values.role) throw new Error('usage: user:create <username> --role radiologist|admin --sites a,b');
        const generated = !values['password-stdin'];
        const password = generated ? randomBytes(12).toString('base64url') : (await readStdin()).trim();
        const siteIds = (values.sites ?? '').split(',').map((x) => x.trim()).filter(Boolean);
        await core.services.auth.createUser({ username, displayName: values.name, password, role: values.role as UserRole, siteIds });
        console.log(`user ${username} (${values.role}) created for sites: ${siteIds.join(', ') || '(none)'}`);
        if (generated) console.log(`password (shown once): ${password}`);
        return 0;
      }
      case 'user:list':
        for (const user of await core.repos.users.list()) {
          console.log(`${user.username}\t${user.role}\t${(await core.repos.users.siteIds(user.id)).join(',')}\t${user.disabled_at ? 'disabled' : 'active'}`);
        }
        return 0;
      case 'user:disable': {
        const user = args[0] ? await core.repos.users.byUsername(args[0]) : undefined;
        if (!user) throw new Error('usage: user:disable <existing username>');
        await core.repos.users.disable(user.id);
        await core.repos.audit.record({ actor_type: 'system', actor_id: 'cli', action: 'user.disable', target_type: 'user', target_id: String(user.id) });
        console.log(`user ${user.username} disabled`);
        return 0;
      }
      case 'ae:add': {
        const [site, title] = args;
        if (!site || !title) throw new Error('usage: ae:add <site> <calling AE> [--host <ip>]');
        if (!(await core.repos.sites.get(site))) throw new Error(`no site "${site}" (create it with site:create)`);
        const ae = aeTitle(title, 'calling AE title');
        await core.repos.aeTitles.upsert({ aeTitle: ae, siteId: site, host: values.host ?? null });
        await core.repos.audit.record({ actor_type: 'system', actor_id: 'cli', site_id: site, action: 'ae.add', target_type: 'ae_title', target_id: ae, details: { host: values.host ?? null } });
        console.log(`calling AE ${ae} stores into site ${site}${values.host ? ` (only from ${values.host})` : ''}`);
        return 0;
      }
      case 'ae:list':
        for (const ae of await core.repos.aeTitles.list()) console.log(`${ae.ae_title}\t${ae.site_id}\t${ae.host ?? '(any host)'}`);
        return 0;
      case 'ae:remove': {
        if (!args[0]) throw new Error('usage: ae:remove <calling AE>');
        const ae = args[0].trim();
        const ok = await core.repos.aeTitles.remove(ae);
        if (ok) await core.repos.audit.record({ actor_type: 'system', actor_id: 'cli', action: 'ae.remove', target_type: 'ae_title', target_id: ae });
        console.log(ok ? `calling AE ${ae} removed` : `no calling AE ${ae}`);
        return ok ? 0 : 1;
      }
      default:
        process.stderr.write(`unknown command "${command}"\n\n${USAGE}`);
        return 2;
    }
  } catch (err) {
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
  runAdmin(process.argv.slice(2)).then((code) => process.exit(code));
}
