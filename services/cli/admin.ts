import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import type { UserRole } from '../core/db/schema.js';
import { loadConfig } from '../core/config.js';
import { createCore } from '../core/core.js';
import { createLogger } from '../core/logger.js';
import { describeDestination, destinationRow, type DestinationSpec } from '../results/destinations.js';
import { resultsFor } from '../results/index.js';

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
  destination:add <site> <name> --stow <DICOMweb base URL> [--header 'Name: value']...
  destination:add <site> <name> --dimse <AE>@<host>:<port>
                                 send the site's AI results (SR + marked-up images) to a PACS
  destination:list [site]        list destinations (never header values or secrets)
  destination:remove <site> <name>
  webhook:add <site> <url> [--secret <key>] [--name <name>]
                                 POST each study's AI result as signed JSON; without --secret a key is generated and shown once
`;

export async function runAdmin(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv, allowPositionals: true, strict: true,
    options: {
      role: { type: 'string' }, sites: { type: 'string' }, name: { type: 'string' }, 'password-stdin': { type: 'boolean' },
      stow: { type: 'string' }, dimse: { type: 'string' }, header: { type: 'string', multiple: true }, secret: { type: 'string' },
    },
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
      case 'destination:add': {
        const [site, name] = args;
        if (!site || !name || Boolean(values.stow) === Boolean(values.dimse)) {
          throw new Error("usage: destination:add <site> <name> --stow <DICOMweb base URL> [--header 'Name: value'] | --dimse <AE>@<host>:<port>");
        }
        const spec: DestinationSpec = values.stow ? { kind: 'stow', url: values.stow, headers: values.header ?? [] } : { kind: 'dimse', target: values.dimse! };
        return await addDestination(site, name, spec);
      }
      case 'webhook:add': {
        const [site, url] = args;
        if (!site || !url) throw new Error('usage: webhook:add <site> <url> [--secret <key>] [--name <name>]');
        return await addDestination(site, values.name ?? `webhook-${new URL(url).host.replace(/[^a-z0-9.-]/gi, '-')}`, { kind: 'webhook', url, secret: values.secret });
      }
      case 'destination:list':
        for (const d of await resultsFor(core).repo.listDestinations(args[0])) console.log(describeDestination(d));
        return 0;
      case 'destination:remove': {
        const [site, name] = args;
        if (!site || !name) throw new Error('usage: destination:remove <site> <name>');
        const removed = await resultsFor(core).repo.removeDestination(site, name);
        if (removed) await core.repos.audit.record({ actor_type: 'system', actor_id: 'cli', site_id: site, action: 'destination.remove', target_type: 'destination', target_id: name });
        console.log(removed ? `destination ${name} of site ${site} removed` : `no destination ${name} for site ${site}`);
        return removed ? 0 : 1;
      }
      default:
        process.stderr.write(`unknown command "${command}"\n\n${USAGE}`);
        return 2;
    }
  } catch (err) {
    console.error(`error: ${(err as Error).message}`);
    return 1;
  } finally {
    await resultsFor(core).queue.close().catch(() => {});
    await core.close();
  }

  async function addDestination(site: string, name: string, spec: DestinationSpec): Promise<number> {
    if (!(await core.repos.sites.list()).some((s) => s.id === site)) throw new Error(`no site ${site}`);
    const { row, generatedSecret } = destinationRow(site, name, spec);
    const { repo } = resultsFor(core);
    if ((await repo.listDestinations(site)).some((d) => d.name === name)) throw new Error(`site ${site} already has a destination ${name}`);
    await repo.addDestination(row);
    await core.repos.audit.record({ actor_type: 'system', actor_id: 'cli', site_id: site, action: 'destination.add', target_type: 'destination', target_id: name });
    console.log(`destination ${name} (${row.kind}) added for site ${site}`);
    if (generatedSecret) console.log(`webhook secret (shown once; the receiver checks X-FT-Signature with it):\n\n  ${generatedSecret}\n`);
    return 0;
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
