import type { Core } from '../core/core.js';
import { describeDestination, destinationRow, type DestinationSpec } from '../results/destinations.js';
import { resultsFor } from '../results/index.js';
import { UsageError, type Command } from './command.js';

/** Where a site's AI results go (issue 13): DICOMweb and DIMSE destinations, webhooks. */
export const DESTINATION_COMMANDS: Command[] = [
  {
    name: 'destination:add',
    usage: "destination:add <site> <name> --stow <DICOMweb base URL> [--header 'Name: value']... | --dimse <AE>@<host>:<port>",
    summary: "send the site's AI results (SR + marked-up images) to a PACS",
    options: { stow: { type: 'string' }, dimse: { type: 'string' }, header: { type: 'string', multiple: true } },
    async run(core, [site, name], values) {
      if (!site || !name || Boolean(values.stow) === Boolean(values.dimse)) throw new UsageError('a site, a name and one of --stow or --dimse are needed');
      const spec: DestinationSpec = values.stow
        ? { kind: 'stow', url: values.stow as string, headers: (values.header as unknown as string[] | undefined) ?? [] }
        : { kind: 'dimse', target: values.dimse as string };
      return withResults(core, () => addDestination(core, site, name, spec));
    },
  },
  {
    name: 'webhook:add',
    usage: 'webhook:add <site> <url> [--secret <key>] [--name <name>]',
    summary: "POST each study's AI result as signed JSON; without --secret a key is generated and shown once",
    options: { secret: { type: 'string' }, name: { type: 'string' } },
    async run(core, [site, url], values) {
      if (!site || !url) throw new UsageError('a site and a URL are needed');
      const name = (values.name as string | undefined) ?? `webhook-${new URL(url).host.replace(/[^a-z0-9.-]/gi, '-')}`;
      return withResults(core, () => addDestination(core, site, name, { kind: 'webhook', url, secret: values.secret as string | undefined }));
    },
  },
  {
    name: 'destination:list', usage: 'destination:list [site]', summary: 'list destinations (never header values or secrets)',
    async run(core, [site]) {
      return withResults(core, async () => {
        for (const d of await resultsFor(core).repo.listDestinations(site)) console.log(describeDestination(d));
        return 0;
      });
    },
  },
  {
    name: 'destination:remove', usage: 'destination:remove <site> <name>', summary: 'stop sending to a destination (pending sends fail with "destination removed")',
    async run(core, [site, name]) {
      if (!site || !name) throw new UsageError('a site and a name are needed');
      return withResults(core, async () => {
        const removed = await resultsFor(core).repo.removeDestination(site, name);
        if (removed) await core.repos.audit.record({ actor_type: 'system', actor_id: 'cli', site_id: site, action: 'destination.remove', target_type: 'destination', target_id: name });
        console.log(removed ? `destination ${name} of site ${site} removed` : `no destination ${name} for site ${site}`);
        return removed ? 0 : 1;
      });
    },
  },
];

/** The results queue opens a Redis connection of its own; close it with the command. */
async function withResults(core: Core, run: () => Promise<number>): Promise<number> {
  try {
    return await run();
  } finally {
    await resultsFor(core).queue.close().catch(() => {});
  }
}

async function addDestination(core: Core, site: string, name: string, spec: DestinationSpec): Promise<number> {
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
