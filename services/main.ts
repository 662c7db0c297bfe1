import { loadConfig } from './core/config.js';
import { createCore } from './core/core.js';
import { createLogger } from './core/logger.js';
import { ensureRedis } from './core/redis-bootstrap.js';
import { DemoService } from './core/services/demo.service.js';
import { supervise, type ChildSpec } from './supervisor/supervisor.js';

/**
 * Every long-running process of `npm start`, each a child of the supervisor (which restarts any
 * that dies). Adding a process is adding a line here.
 */
export const CHILDREN: ChildSpec[] = [
  { name: 'api', entry: 'api/server' },
  { name: 'worker', entry: 'worker/main' },
  // The DICOM C-STORE listener (left out when DIMSE_PORT=0).
  { name: 'dimse', entry: 'dimse/main' },
];

/**
 * `npm start`: the whole system on one machine with embedded defaults (SQLite + local files).
 * Makes sure Redis answers, seeds the demo site in demo mode, then supervises the processes.
 */
async function main() {
  // Files we create (database, stored images, heat maps, files being received) are for this user only.
  process.umask(0o077);
  const config = loadConfig();
  const log = createLogger(config.logLevel, 'main');
  await ensureRedis(config.redisUrl, config.dataDir, log);
  if (config.demo) await seedDemo(config, log);
  supervise(CHILDREN.filter((child) => child.name !== 'dimse' || config.dimse.port), log);
  console.log(`\nfracture-triage is starting at ${config.publicUrl}  (API docs: ${config.publicUrl}/docs)`);
  console.log('Decision support only: every AI finding is for a radiologist to confirm.\n');
}

/** Demo mode: credentials are printed the one time they are made, never again and never stored (but the demo key file). */
async function seedDemo(config: ReturnType<typeof loadConfig>, log: ReturnType<typeof createLogger>) {
  const core = await createCore(config, log);
  try {
    const demo = new DemoService(core.services.apiKeys, core.services.auth, core.repos.sites, core.repos.users, core.repos.audit, config.dataDir);
    const seed = await demo.seed();
    console.log('\n*** DEMO MODE: never use with real patients\' data. Start with FT_DEMO=0 for real use (the demo accounts are then disabled). ***');
    if (seed.newKey) console.log(`  site "demo", API key (shown once; kept for "npm run send" in ${seed.keyFile}, mode 0600):\n    ${seed.newKey}`);
    else console.log(`  site "demo": its API key is in ${seed.keyFile}`);
    const created = Object.entries(seed.newPasswords);
    for (const [user, password] of created) console.log(`  sign in as ${user} / ${password}   (shown once, not stored)`);
    if (!created.length) console.log('  demo users: radiologist, admin (passwords were shown at first start; new one: npm run cli -- user:reset-password radiologist)');
    console.log('');
  } finally {
    await core.close();
  }
}

main().catch((err) => {
  console.error(`fracture-triage: ${err instanceof Error ? err.message : err}`);
  process.exit(1);
});
