import { randomBytes } from 'node:crypto';
import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { startApi } from './api/server.js';
import { loadConfig } from './core/config.js';
import { createCore } from './core/core.js';
import { createLogger } from './core/logger.js';
import { ensureRedis } from './core/redis-bootstrap.js';

/**
 * `npm start`: the whole system on one machine with embedded defaults (SQLite + local files).
 * Makes sure Redis answers, seeds a demo site in demo mode, then runs the API.
 */
async function main() {
  const config = loadConfig();
  const log = createLogger(config.logLevel, 'main');
  await ensureRedis(config.redisUrl, config.dataDir, log);

  if (config.demo) await seedDemo(config, log);
  await startApi();
  superviseWorker(log);
  if (config.dimse.port) superviseChild(log, 'dimse/main', 'DICOM listener');
  console.log(`\nfracture-triage is running at ${config.publicUrl}  (API docs: ${config.publicUrl}/docs)`);
  if (config.dimse.port) console.log(`DICOM C-STORE: ${config.dimse.host}:${config.dimse.port}, called AE ${config.dimse.aeTitle}${config.demo ? ' (demo: any calling AE stores into site "demo")' : ''}`);
  console.log('Decision support only: every AI finding is for a radiologist to confirm.\n');
}

/**
 * The classify worker runs in its own process (inference must not stall the API's event loop).
 * If it dies it is started again, with a growing pause; its jobs are picked up where they were.
 */
function superviseWorker(log: ReturnType<typeof createLogger>) {
  superviseChild(log, 'worker/main', 'classify worker');
}

/** Runs services/<entry> as a child process, restarted with a growing pause if it dies. */
function superviseChild(log: ReturnType<typeof createLogger>, name: string, what: string) {
  const entry = fileURLToPath(new URL(`./${name}${path.extname(fileURLToPath(import.meta.url))}`, import.meta.url));
  let child: ChildProcess | undefined;
  let delay = 1_000;
  let stopping = false;
  const start = () => {
    const startedAt = Date.now();
    child = fork(entry, [], { stdio: 'inherit' });
    child.on('exit', (code, signal) => {
      if (stopping) return;
      if (Date.now() - startedAt > 60_000) delay = 1_000;
      log.error({ code, signal, restartInMs: delay }, `${what} exited; restarting`);
      setTimeout(start, delay);
      delay = Math.min(delay * 2, 30_000);
    });
  };
  start();
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => {
      stopping = true;
      child?.kill('SIGTERM');
    });
  }
}

/** Demo mode: a "demo" site with an API key kept in data/demo-api-key, so `npm run send -- samples/` works. */
async function seedDemo(config: ReturnType<typeof loadConfig>, log: ReturnType<typeof createLogger>) {
  const keyFile = path.join(config.dataDir, 'demo-api-key');
  const core = await createCore(config, log);
  try {
    if (!(await core.repos.sites.get('demo'))) await core.services.apiKeys.createSite('demo', 'Demo hospital');
    let key = fs.existsSync(keyFile) ? fs.readFileSync(keyFile, 'utf8').trim() : '';
    if (!key || !(await core.services.apiKeys.verify(key))) {
      key = (await core.services.apiKeys.createKey('demo', 'demo')).key;
      fs.writeFileSync(keyFile, `${key}\n`, { mode: 0o600 });
    }
    // Demo users, with passwords kept beside the key so they can be printed at each start.
    const usersFile = path.join(config.dataDir, 'demo-users');
    if (!(await core.repos.users.byUsername('radiologist'))) {
      const credentials = { radiologist: randomBytes(9).toString('base64url'), admin: randomBytes(9).toString('base64url') };
      await core.services.auth.createUser({ username: 'radiologist', displayName: 'Demo Radiologist', password: credentials.radiologist, role: 'radiologist', siteIds: ['demo'] });
      await core.services.auth.createUser({ username: 'admin', displayName: 'Demo Admin', password: credentials.admin, role: 'admin', siteIds: ['demo'] });
      fs.writeFileSync(usersFile, JSON.stringify(credentials), { mode: 0o600 });
    }
    const credentials = fs.existsSync(usersFile) ? JSON.parse(fs.readFileSync(usersFile, 'utf8')) as Record<string, string> : {};
    console.log(`\nDEMO MODE (never use with real patients' data)\n  site "demo", API key (also in ${keyFile}):\n    ${key}`);
    for (const [user, password] of Object.entries(credentials)) console.log(`  sign in as ${user} / ${password}`);
    console.log('');
  } finally {
    await core.close();
  }
}

main().catch((err) => {
  console.error(`fracture-triage: ${err instanceof Error ? err.message : err}`);
  process.exit(1);
});
