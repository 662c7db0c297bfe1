import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_MODEL_DIR } from '../../services/inference/defaultModel.js';
import { makeDx, multipart } from '../helpers/dicom.js';
import { startSystem, stow, type TestSystem } from '../helpers/system.js';
import { addUsers, corruptJpegLossless, PASSWORD, waitFor } from './helpers.js';
import { writeTinyModel } from './tiny-model.js';

const root = path.resolve(import.meta.dirname, '../..');
const CHROMIUM = '/usr/bin/chromium';
const shippedModel = path.join(root, DEFAULT_MODEL_DIR);
const samples = path.join(root, 'samples/fracatlas');

/**
 * The admin dashboard in a real browser against a real API, Redis, SQLite and a real classify
 * worker process (the shipped model when models/ has it, else a tiny stand-in with the same
 * contract). Uploads samples, forces one job to fail by replacing its stored file with one the
 * worker cannot decode, and fixes it with Retry from the page.
 */
describe.skipIf(!fs.existsSync(CHROMIUM))('admin dashboard in a browser', () => {
  let system: TestSystem;
  let worker: ChildProcess;
  let browser: Browser;
  let workerLog = '';
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ft-admin-ui-'));
  const external: string[] = [];

  beforeAll(async () => {
    // The web app, built into a folder of its own (web/dist belongs to whoever runs the app).
    const webDist = path.join(tmp, 'web');
    execFileSync(process.execPath, [path.join(root, 'node_modules/vite/bin/vite.js'), 'build', '--config', path.join(root, 'web/vite.config.ts'), '--outDir', webDist, '--logLevel', 'error'], { cwd: root, stdio: 'pipe' });
    process.env.WEB_DIST = webDist;
    const modelDir = fs.existsSync(path.join(shippedModel, 'manifest.json')) ? shippedModel : path.join(tmp, 'model');
    if (modelDir !== shippedModel) await writeTinyModel(modelDir);

    system = await startSystem();
    await addUsers(system);
    // The worker: same environment as the API (data folder, database, Redis, queue prefix).
    worker = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'services/worker/main.ts')], {
      cwd: root,
      env: {
        ...process.env, DATA_DIR: system.config.dataDir, DATABASE_URL: system.config.databaseUrl, REDIS_URL: system.config.redisUrl,
        QUEUE_PREFIX: system.config.queuePrefix, MODEL_DIR: modelDir, LOG_LEVEL: 'info', WORKER_CONCURRENCY: '1', WORKER_METRICS_PORT: '0',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    worker.stdout!.on('data', (d: Buffer) => { workerLog = (workerLog + d.toString()).slice(-20_000); });
    worker.stderr!.on('data', (d: Buffer) => { workerLog = (workerLog + d.toString()).slice(-20_000); });
    await waitFor(async () => workerLog.includes('classify worker started') || worker.exitCode !== null, 90_000, 'the worker to start');
    if (worker.exitCode !== null) throw new Error(`worker exited:\n${workerLog}`);

    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      // launch() gives every run a fresh temporary profile (user-data dir) of its own.
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-sync'],
    });
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    if (worker && worker.exitCode === null) {
      worker.kill('SIGTERM');
      await new Promise((resolve) => { worker.once('exit', resolve); setTimeout(resolve, 10_000); });
    }
    await system?.close();
    delete process.env.WEB_DIST;
    fs.rmSync(tmp, { recursive: true, force: true });
  }, 60_000);

  async function newPage(): Promise<{ context: BrowserContext; page: Page }> {
    const context = await browser.newContext({ viewport: { width: 1400, height: 1100 } });
    const page = await context.newPage();
    page.on('request', (request) => {
      const url = new URL(request.url());
      if (!['127.0.0.1', 'localhost'].includes(url.hostname) && !['data:', 'blob:'].includes(url.protocol)) external.push(request.url());
    });
    page.on('dialog', (dialog) => void dialog.accept());
    return { context, page };
  }

  async function signIn(page: Page, username: string) {
    await page.goto(`${system.url}/admin.html`);
    await page.fill('#login-form input[name=username]', username);
    await page.fill('#login-form input[name=password]', PASSWORD);
    await page.click('#login-form button[type=submit]');
  }

  const tile = (page: Page, key: string) => page.locator(`[data-count="${key}"] .value`);

  it('a radiologist gets 403 on the admin page, the admin APIs and the job browser', async () => {
    const { context, page } = await newPage();
    await signIn(page, 'rad');
    await page.waitForSelector('#forbidden');
    expect(await page.textContent('#forbidden h1')).toBe('Admins only');
    const csrf = (await (await context.request.get(`${system.url}/auth/me`)).json()).csrfToken as string;
    const routes: [string, string][] = [
      ['GET', '/admin.html'], ['GET', '/admin/queues'], ['GET', '/admin/queues/api/queues'],
      ['GET', '/api/admin/overview'], ['GET', '/api/admin/throughput'], ['GET', '/api/admin/jobs/failed'], ['GET', '/api/admin/actions'],
      ['GET', '/api/admin/jobs/x'], ['POST', '/api/admin/jobs/x/retry'], ['DELETE', '/api/admin/jobs/x'], ['POST', '/api/admin/jobs/failed/retry'],
      ['POST', '/api/admin/queue/pause'], ['POST', '/api/admin/queue/resume'], ['POST', '/api/admin/queue/drain'],
    ];
    for (const [method, route] of routes) {
      const res = await context.request.fetch(`${system.url}${route}`, { method, headers: { 'x-csrf-token': csrf } });
      expect(res.status(), `${method} ${route}`).toBe(403);
    }
    expect(await system.core.jobs.classify.queue.isPaused()).toBe(false);
    await context.close();
  });

  it('shows counts that match the queue, a forced failure with its reason, and Retry makes it succeed', async () => {
    const { context, page } = await newPage();
    await signIn(page, 'ops');
    await page.waitForSelector('#queue-panel [data-count="waiting"]');
    expect(await page.textContent('#queue-state')).toBe('running');

    // Pause from the page so the uploads wait where the dashboard can count them.
    await page.click('#queue-pause');
    await page.waitForSelector('#queue-resume');
    expect(await system.core.jobs.classify.queue.isPaused()).toBe(true);

    const files = fs.readdirSync(samples).filter((f) => f.endsWith('.dcm')).sort().slice(0, 3);
    expect(files).toHaveLength(3);
    const body = multipart(files.map((f) => fs.readFileSync(path.join(samples, f))));
    expect((await stow(system, body.body, body.contentType)).status).toBe(200);

    await waitFor(async () => (await tile(page, 'waiting').textContent()) === '3', 15_000, 'the dashboard to show 3 waiting');
    const counts = await system.core.jobs.classify.queue.getJobCounts('waiting', 'prioritized', 'active', 'completed', 'failed');
    expect(counts.waiting + counts.prioritized).toBe(3);
    expect(Number(await tile(page, 'active').textContent())).toBe(counts.active);
    expect(Number(await tile(page, 'completed').textContent())).toBe(counts.completed);
    expect(Number(await tile(page, 'failed').textContent())).toBe(counts.failed);
    expect(await page.textContent('#oldest-waiting')).not.toBe('none waiting');

    // Force a failure: the first image's stored file is replaced by one whose pixels do not decode.
    const instances = await system.core.database.db.selectFrom('instances').innerJoin('studies', 'studies.id', 'instances.study_id')
      .select(['instances.id', 'instances.storage_key', 'instances.sop_instance_uid', 'instances.rows', 'instances.columns', 'studies.accession_number'])
      .orderBy('instances.id').execute();
    const victim = instances[0];
    const file = system.core.repos.storage.pathOf(victim.storage_key);
    const original = fs.readFileSync(file);
    fs.writeFileSync(file, corruptJpegLossless(victim.rows, victim.columns));

    await page.click('#queue-resume');
    await page.waitForSelector('#queue-pause');
    // Two images get a result, the third fails for good (undecodable: no retries).
    await waitFor(async () => (await tile(page, 'completed').textContent()) === '2' && (await tile(page, 'failed').textContent()) === '1', 90_000, `2 completed and 1 failed on the page; worker log:\n${workerLog.slice(-3000)}`);
    const row = page.locator(`#failed-jobs tr[data-job="sop-site-a-${victim.sop_instance_uid}"]`);
    await row.waitFor({ timeout: 10_000 });
    expect(await row.locator('td.reason').textContent()).toMatch(/cannot decode/);
    const after = await system.core.jobs.classify.queue.getJobCounts('completed', 'failed', 'waiting', 'prioritized');
    expect(after).toMatchObject({ completed: 2, failed: 1, waiting: 0, prioritized: 0 });
    expect(await page.textContent('#workers')).toMatch(/alive/);

    // Search by accession number finds it; its history shows the error.
    if (victim.accession_number) {
      await page.fill('#failed-search', victim.accession_number);
      await page.click('#failed-search-form button[type=submit]');
      await waitFor(async () => (await page.textContent('#failed-total'))?.includes('matching'), 10_000, 'search results');
      expect(await row.count()).toBe(1);
    }
    await row.locator('button.history').click();
    await page.waitForSelector('#job-history table.kv');
    expect(await page.textContent('#job-history')).toMatch(/cannot decode/);

    await page.screenshot({ path: path.join(os.tmpdir(), 'ft-admin-dashboard.png'), fullPage: true });

    // Fix the cause and retry from the page.
    fs.writeFileSync(file, original);
    await row.locator('button.retry').click();
    await waitFor(async () => (await tile(page, 'completed').textContent()) === '3' && (await tile(page, 'failed').textContent()) === '0', 60_000, `the retried job to complete; worker log:\n${workerLog.slice(-3000)}`);
    await page.fill('#failed-search', '');
    await page.click('#failed-search-form button[type=submit]');
    await page.waitForSelector('#no-failed');
    const result = await system.core.database.db.selectFrom('ai_results').selectAll().where('instance_id', '=', victim.id).executeTakeFirstOrThrow();
    expect(result.status).toBe('done');
    expect((await system.core.repos.instances.get(victim.id))!.status).toBe('done');
    // The actions are audited and listed.
    await waitFor(async () => /queue\.job_retry/.test((await page.textContent('#recent-actions')) ?? ''), 10_000, 'the audit list');
    const actions = (await system.core.repos.audit.list({ limit: 20 })).map((a) => a.action).filter((a) => a.startsWith('queue.'));
    expect(actions.slice(0, 3)).toEqual(['queue.job_retry', 'queue.resume', 'queue.pause']);

    // Charts have data.
    await waitFor(async () => /[1-9]\d* result\(s\) in the last hour/.test((await page.textContent('#chart-summary')) ?? '') || (await page.reload(), false), 30_000, 'the chart summary');
    expect(await page.locator('#chart-throughput canvas').count()).toBe(1);

    // The read-only job browser (bull-board) loads for an admin, with nothing fetched from elsewhere.
    await page.goto(`${system.url}/admin/queues`);
    await page.waitForSelector('text=classify', { timeout: 20_000 });
    await page.screenshot({ path: path.join(os.tmpdir(), 'ft-admin-bull-board.png') });
    expect(external).toEqual([]);
    await context.close();
  }, 240_000);

  it("the worklist links to the admin page for an admin and a superadmin, not for a radiologist", async () => {
    await system.core.services.auth.createUser({ username: 'site-admin', password: PASSWORD, role: 'admin', siteIds: ['site-a'] });
    for (const [username, linked] of [['ops', true], ['site-admin', true], ['rad', false]] as const) {
      const { context, page } = await newPage();
      await page.goto(`${system.url}/`);
      await page.fill('#login-form input[name=username]', username);
      await page.fill('#login-form input[name=password]', PASSWORD);
      await page.click('#login-form button[type=submit]');
      await page.waitForSelector('#sign-out');
      expect(await page.locator('#admin-link').count(), username).toBe(linked ? 1 : 0);
      await context.close();
    }
  });

  it("an admin resets a user's password from the page (shown once), disables and enables them, and rotates and expires a key", async () => {
    await system.core.services.auth.createUser({ username: 'rad-page', password: PASSWORD, role: 'radiologist', siteIds: ['site-a'] });
    const { context, page } = await newPage();
    await signIn(page, 'site-admin');
    const row = page.locator('#users tr[data-user="rad-page"]');
    await row.waitFor();
    expect(await page.locator('#users tr[data-user="rad"]').count()).toBe(0); // rad also works at site B: not this admin's

    await row.locator('button.reset-password').click();
    await page.waitForSelector('#new-secret:not([hidden])');
    const password = (await page.textContent('#new-secret-value'))!;
    expect(password.length).toBeGreaterThanOrEqual(16);
    const signIn2 = (pw: string) => fetch(`${system.url}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'rad-page', password: pw }) }).then((r) => r.status);
    expect(await signIn2(password)).toBe(200);
    await page.click('#new-secret-done');
    expect(await page.locator('#new-secret-value').count()).toBe(0); // gone for good

    await row.locator('button.disable').click();
    await page.waitForSelector('#users tr[data-user="rad-page"] button.enable');
    expect(await signIn2(password)).toBe(401);
    await page.locator('#users tr[data-user="rad-page"] button.enable').click();
    await page.waitForSelector('#users tr[data-user="rad-page"] button.disable');
    expect(await signIn2(password)).toBe(200);

    const keyId = system.keys.a.split('_')[1];
    expect(await page.locator('#api-keys tr').count()).toBe(1); // site A's key only
    await page.locator(`#api-keys tr[data-key="${keyId}"] button.rotate`).click();
    await page.waitForSelector('#new-secret:not([hidden])');
    const newKey = (await page.textContent('#new-secret-value'))!;
    expect(newKey).toMatch(/^ft_[0-9a-f]{12}_/);
    const upload = async (key: string) => { const b = multipart([makeDx().bytes]); return (await stow(system, b.body, b.contentType, { key })).status; };
    expect(await upload(newKey)).toBe(200);
    await page.waitForSelector(`#api-keys tr[data-key="${keyId}"] button.expire`);
    await page.locator(`#api-keys tr[data-key="${keyId}"] button.expire`).click();
    await page.waitForSelector(`#api-keys tr[data-key="${keyId}"] .state.bad`);
    expect(await upload(system.keys.a)).toBe(401);
    const actions = (await system.core.repos.audit.list({ limit: 20 })).filter((a) => a.actor_type === 'user').map((a) => a.action);
    expect(actions).toEqual(expect.arrayContaining(['user.reset_password', 'user.disable', 'user.enable', 'api_key.create', 'api_key.expire']));
    expect(external).toEqual([]);
    await context.close();
  }, 120_000);
});
