import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { corruptJpegLossless, makeDx, multipart, uid } from '../helpers/dicom.js';
import { launch, screenshots, signIn } from './browser.js';
import { ensureWebBuilt, startViewerSystem, type ViewerSystem } from './viewer-system.js';

const root = path.resolve(import.meta.dirname, '../..');
// UPDATE_SCREENSHOTS=1 refreshes the ones in docs/; otherwise they go to a temp folder (a test run leaves git clean).
const SHOTS = process.env.UPDATE_SCREENSHOTS === '1' ? path.join(root, 'docs/screenshots') : fs.mkdtempSync(path.join(os.tmpdir(), 'ft-shots-'));

const ROWS = 200;
const COLUMNS = 160;
const SPACING_MM = 0.5;

/** A textured test image: a ramp with a bright block left of centre (so a pan is visible in the pixels). */
function pixels(seed: number) {
  return Uint16Array.from({ length: ROWS * COLUMNS }, (_, i) => {
    const x = i % COLUMNS;
    const y = Math.floor(i / COLUMNS);
    const block = x > 30 && x < 70 && y > 60 && y < 140 ? 3000 : 0;
    return Math.min(4095, 200 + ((x * 11 + y * 5 + seed) % 700) + block);
  });
}

/** One image of a hand-made study: View Position, series, Patient Orientation, Pixel Spacing. */
function view(studyUid: string, o: { series: number; description: string; viewPosition: string; orientation: string; accession: string }) {
  return makeDx({
    studyUid, rows: ROWS, columns: COLUMNS, pixels: pixels(o.series * 97), accession: o.accession, patientName: 'TWO^VIEWS', patientId: 'PID-TWO', bodyPart: 'WRIST',
    extra: {
      '0008103e': { vr: 'LO', value: o.description },
      '00185101': { vr: 'CS', value: o.viewPosition },
      '00200011': { vr: 'IS', value: String(o.series) },
      '00200020': { vr: 'CS', value: o.orientation },
      '00280030': { vr: 'DS', value: `${SPACING_MM}\\${SPACING_MM}` },
    },
  });
}

/** Pixels of a canvas: how many are lit, grey levels, a checksum and the x centroid of the bright ones. */
function canvasStats(page: Page, selector: string) {
  return page.evaluate((sel) => {
    const canvas = document.querySelector(sel) as HTMLCanvasElement;
    const { data } = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height);
    let lit = 0; let sum = 0; let brightX = 0; let bright = 0;
    const levels = new Set<number>();
    for (let i = 0; i < data.length; i += 4) {
      if (data[i] + data[i + 1] + data[i + 2] > 30) lit++;
      if (data[i] > 200) { bright++; brightX += (i / 4) % canvas.width; }
      sum = (sum + data[i] * 3 + data[i + 1] * 5 + data[i + 2] * 7 + (i % 9973)) % 2_147_483_647;
      levels.add(data[i]);
    }
    return { pixels: data.length / 4, lit, levels: levels.size, sum, brightX: bright ? brightX / bright : -1 };
  }, selector);
}

async function openStudy(page: Page, studyId: number) {
  await page.evaluate(() => { location.hash = '#/'; });
  await page.waitForSelector('#worklist-page:not([hidden])');
  await page.evaluate((id) => { location.hash = `#/study/${id}`; }, studyId);
}

async function waitState(page: Page, selector: string, state: 'rendered' | 'failed', imageUrl?: string) {
  await page.waitForFunction(([sel, st, url]) => {
    const el = document.querySelector(sel) as HTMLElement | null;
    return el?.dataset.state === st && (!url || el.dataset.imageId === `wadouri:${url}`);
  }, [selector, state, imageUrl] as const, { timeout: 30_000 });
}

describe('viewer tools, layouts and decision safety, end to end (headless Chromium)', () => {
  let system: ViewerSystem;
  let browser: Awaited<ReturnType<typeof launch>>;
  let page: Page;
  const ids = { twoView: 0, pa: 0, lat: 0, corrupt: 0 };

  async function stow(files: Buffer[]) {
    const body = multipart(files);
    const res = await fetch(`${system.url}/dicomweb/studies`, { method: 'POST', headers: { 'content-type': body.contentType, authorization: `Bearer ${system.key}` }, body: body.body });
    expect(res.status).toBe(200);
  }
  const instanceBySop = (sop: string) => system.core.database.db.selectFrom('instances').select(['id', 'study_id']).where('sop_instance_uid', '=', sop).executeTakeFirstOrThrow();
  const reviewsOf = (studyId: number) => system.core.database.db.selectFrom('reviews').selectAll().where('study_id', '=', studyId).execute();

  beforeAll(async () => {
    ensureWebBuilt();
    system = await startViewerSystem({ samples: false });
    const studyUid = uid();
    // Sent lateral first: the hanging rule, not the order of arrival, puts the PA left.
    const lat = view(studyUid, { series: 2, description: 'WRIST LAT', viewPosition: 'LL', orientation: 'A\\F', accession: 'TWO-VIEW' });
    const pa = view(studyUid, { series: 1, description: 'WRIST PA', viewPosition: 'PA', orientation: 'L\\F', accession: 'TWO-VIEW' });
    await stow([lat.bytes, pa.bytes]);
    const corrupt = corruptJpegLossless(64, 64);
    await stow([corrupt]);
    const paRow = await instanceBySop(pa.sopInstanceUid);
    ids.twoView = paRow.study_id;
    ids.pa = paRow.id;
    ids.lat = (await instanceBySop(lat.sopInstanceUid)).id;
    const newest = await system.core.database.db.selectFrom('studies').select('id').where('site_id', '=', 'site-a').orderBy('id', 'desc').executeTakeFirstOrThrow();
    ids.corrupt = newest.id;
    browser = await launch();
    page = browser.page;
    await signIn(page, system.url, 'rad-a');
  }, 240_000);
  afterAll(async () => {
    await browser?.close();
    await system?.stop();
    if (!SHOTS.startsWith(root)) fs.rmSync(SHOTS, { recursive: true, force: true });
  });

  it('hangs the PA left and the lateral right (1 × 2), both rendered, with series, orientation labels and thumbnails', async () => {
    await openStudy(page, ids.twoView);
    await waitState(page, '#viewport', 'rendered', `/api/instances/${ids.pa}/file`);
    await waitState(page, '#viewport-2', 'rendered', `/api/instances/${ids.lat}/file`);
    expect(await page.getAttribute('#viewport-grid', 'class')).toContain('layout-1x2');
    for (const sel of ['#viewport canvas.cornerstone-canvas', '#viewport-2 canvas.cornerstone-canvas']) {
      const stats = await canvasStats(page, sel);
      expect(stats.lit / stats.pixels, sel).toBeGreaterThan(0.1);
      expect(stats.levels, sel).toBeGreaterThan(30);
    }
    // The two canvases show different images.
    expect((await canvasStats(page, '#viewport canvas.cornerstone-canvas')).sum).not.toBe((await canvasStats(page, '#viewport-2 canvas.cornerstone-canvas')).sum);
    const strip = await page.textContent('#series-strip');
    expect(strip).toContain('Series 1');
    expect(strip).toContain('WRIST PA');
    expect(strip).toContain('Series 2');
    expect(strip).toContain('WRIST LAT');
    // Orientation labels ("L\F": right edge L, left edge R) are drawn on the overlay canvas.
    await expect.poll(async () => page.evaluate(() => {
      const c = document.querySelector('#ai-overlay') as HTMLCanvasElement;
      const d = c.getContext('2d')!.getImageData(0, c.height / 2 - 12, 28, 24).data;
      let on = 0;
      for (let i = 3; i < d.length; i += 4) if (d[i] > 0) on++;
      return on;
    })).toBeGreaterThan(10);
    // Thumbnails are drawn once the images are up.
    await expect.poll(async () => (await canvasStats(page, '#series-strip button[data-index="0"] canvas')).lit).toBeGreaterThan(100);

    await screenshots(page, SHOTS, 'viewer-1x2', { width: 1366, height: 768 });
    // At 1366×768 the help fits on the screen and the side panel reaches the decision buttons.
    await page.keyboard.press('?');
    const help = (await page.locator('#help').boundingBox())!;
    expect(help.y).toBeGreaterThanOrEqual(0);
    expect(help.y + help.height).toBeLessThanOrEqual(768);
    expect(help.x + help.width).toBeLessThanOrEqual(1366);
    await page.screenshot({ path: path.join(SHOTS, 'viewer-help-1366x768.png') });
    await page.keyboard.press('Escape');
    await page.keyboard.press('t');
    const vp = (await page.locator('#viewport').boundingBox())!;
    await page.mouse.move(vp.x + vp.width * 0.3, vp.y + vp.height * 0.3);
    await page.mouse.down();
    await page.mouse.move(vp.x + vp.width * 0.6, vp.y + vp.height * 0.7, { steps: 6 });
    await page.mouse.up();
    await page.waitForSelector('#measurements li.measurement-length');
    await screenshots(page, SHOTS, 'viewer-length', { width: 1366, height: 768 });
    await page.keyboard.press('Delete');
    await page.keyboard.press('w');
    await page.keyboard.press('?');
    await page.keyboard.press('Escape');
    await page.locator('#decide-agree').scrollIntoViewIfNeeded();
    const agree = (await page.locator('#decide-agree').boundingBox())!;
    expect(agree.y + agree.height).toBeLessThanOrEqual(768);
    await page.setViewportSize({ width: 1440, height: 900 });
  }, 90_000);

  it('a length on an image with Pixel Spacing reads the known value in mm (± 1 %)', async () => {
    await openStudy(page, ids.twoView);
    await waitState(page, '#viewport', 'rendered', `/api/instances/${ids.pa}/file`);
    await page.waitForFunction(() => (document.querySelector('#viewport canvas') as HTMLCanvasElement).width === (document.querySelector('#viewport') as HTMLElement).clientWidth);
    await page.keyboard.press('t');
    expect(await page.getAttribute('#viewport', 'data-tool')).toBe('length');
    // The image is fitted and centred: image pixel (x, y) is at centre + (x − columns/2, y − rows/2) × scale.
    const box = (await page.locator('#viewport').boundingBox())!;
    const scale = Number(await page.getAttribute('#viewport', 'data-scale'));
    const at = (x: number, y: number) => ({ x: box.x + box.width / 2 + (x - COLUMNS / 2) * scale, y: box.y + box.height / 2 + (y - ROWS / 2) * scale });
    const from = at(40, 100);
    const to = at(120, 160); // 80 × 60 px → 100 px → 50 mm at 0.5 mm
    await page.mouse.move(from.x, from.y);
    await page.mouse.down();
    await page.mouse.move(to.x, to.y, { steps: 10 });
    await page.mouse.up();
    await page.waitForSelector('#measurements li.measurement-length');
    const value = Number(await page.getAttribute('#measurements li.measurement-length', 'data-value'));
    expect(await page.getAttribute('#measurements li.measurement-length', 'data-unit')).toBe('mm');
    expect(Math.abs(value - 50) / 50).toBeLessThan(0.01);
    await page.keyboard.press('Delete');
    await page.waitForSelector('#measurements li.measurement-length', { state: 'detached' });
    await page.keyboard.press('w');
  }, 60_000);

  it('Shift+drag pans: the image moves, window/level unchanged', async () => {
    await openStudy(page, ids.twoView);
    await waitState(page, '#viewport', 'rendered', `/api/instances/${ids.pa}/file`);
    const before = { ww: await page.getAttribute('#viewport', 'data-ww'), wc: await page.getAttribute('#viewport', 'data-wc'), pan: await page.getAttribute('#viewport', 'data-pan') };
    const pixelsBefore = await canvasStats(page, '#viewport canvas.cornerstone-canvas');
    const box = (await page.locator('#viewport').boundingBox())!;
    await page.keyboard.down('Shift');
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width / 2 + 120, box.y + box.height / 2 + 40, { steps: 8 });
    await page.mouse.up();
    await page.keyboard.up('Shift');
    await expect.poll(() => page.getAttribute('#viewport', 'data-pan')).not.toBe(before.pan);
    expect(await page.getAttribute('#viewport', 'data-ww')).toBe(before.ww);
    expect(await page.getAttribute('#viewport', 'data-wc')).toBe(before.wc);
    const after = await canvasStats(page, '#viewport canvas.cornerstone-canvas');
    expect(after.sum).not.toBe(pixelsBefore.sum);
    // The bright block moved right by about the drag distance.
    expect(after.brightX - pixelsBefore.brightX).toBeGreaterThan(60);
    // A plain drag afterwards is window/level again.
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width / 2 + 100, box.y + box.height / 2 + 80, { steps: 6 });
    await page.mouse.up();
    await expect.poll(() => page.getAttribute('#viewport', 'data-ww')).not.toBe(before.ww);
  }, 60_000);

  it('no decision behind the open help; P/N walk the list as it was when the viewer opened', async () => {
    await openStudy(page, ids.twoView);
    await waitState(page, '#viewport', 'rendered', `/api/instances/${ids.pa}/file`);
    await waitState(page, '#viewport-2', 'rendered');
    await page.keyboard.press('?');
    await page.keyboard.press('a');
    await page.keyboard.press('Escape');
    expect(await page.isVisible('#help')).toBe(false);
    expect(page.url()).toContain(`#/study/${ids.twoView}`);
    expect(await reviewsOf(ids.twoView)).toHaveLength(0);

    const listed = await page.evaluate(async () => {
      const res = await fetch('/api/worklist?limit=50');
      return ((await res.json()) as { items: { id: number }[] }).items.map((i) => i.id);
    });
    const at = listed.indexOf(ids.twoView);
    const other = listed[at + 1] ?? listed[at - 1];
    await page.keyboard.press(listed[at + 1] ? 'n' : 'p');
    await page.waitForFunction((id) => location.hash === `#/study/${id}`, other);
    await page.keyboard.press(listed[at + 1] ? 'p' : 'n');
    await page.waitForFunction((id) => location.hash === `#/study/${id}`, ids.twoView);

    // Two keys before the page follows the address (on a busy machine Chromium can take the second
    // key before the first one's hashchange; here both in one task, so always): the second walks on
    // from where the first went, not from the study still shown.
    await page.evaluate((keys) => {
      for (const key of keys) document.body.dispatchEvent(new KeyboardEvent('keydown', { key, bubbles: true }));
    }, listed[at + 1] ? ['n', 'p'] : ['p', 'n']);
    await page.waitForFunction((id) => location.hash === `#/study/${id}`, ids.twoView);
    await waitState(page, '#viewport', 'rendered', `/api/instances/${ids.pa}/file`);
    expect(page.url()).toContain(`#/study/${ids.twoView}`);
  }, 60_000);

  it('an image the browser cannot decode is said in words, and a decision key on it saves nothing', async () => {
    await openStudy(page, ids.corrupt);
    await waitState(page, '#viewport', 'failed');
    expect(await page.textContent('#viewport .viewport-message')).toBe('This image could not be displayed — open the original in your PACS.');
    const toast = await page.textContent('#toast');
    expect(toast).not.toMatch(/error|exception|decode/i);
    expect(await page.isDisabled('#decide-disagree')).toBe(true);
    await page.keyboard.press('d');
    await page.waitForFunction(() => document.querySelector('#toast')?.textContent?.includes('No decision can be recorded'));
    expect(page.url()).toContain(`#/study/${ids.corrupt}`);
    expect(await reviewsOf(ids.corrupt)).toHaveLength(0);
    const audit = (await system.core.repos.audit.list({ action: 'review.decide', limit: 50 })).filter((e) => e.target_id === String(ids.corrupt));
    expect(audit).toHaveLength(0);
  }, 60_000);

  it('a decision names the study in its toast, and can be changed from the viewer', async () => {
    await openStudy(page, ids.twoView);
    await waitState(page, '#viewport', 'rendered', `/api/instances/${ids.pa}/file`);
    await waitState(page, '#viewport-2', 'rendered');
    await page.waitForSelector('#review-panel[data-gate="open"]');
    await page.keyboard.press('u');
    await page.waitForFunction(() => document.querySelector('#toast')?.textContent?.includes('Saved for TWO-VIEW'));
    await expect.poll(async () => (await reviewsOf(ids.twoView)).length).toBe(1);
    // The decision names both images of the 1 × 2 layout as shown.
    expect((JSON.parse((await reviewsOf(ids.twoView))[0].shown_instance_ids!) as number[]).sort((a, b) => a - b)).toEqual([ids.pa, ids.lat].sort((a, b) => a - b));
    // Back to it (the list may have ended): the current decision is shown, another key changes it.
    await openStudy(page, ids.twoView);
    await waitState(page, '#viewport', 'rendered', `/api/instances/${ids.pa}/file`);
    await waitState(page, '#viewport-2', 'rendered');
    await page.waitForSelector('#review-panel[data-decision="uncertain"]');
    // A length drawn on the PA is kept with the changed decision.
    await page.keyboard.press('t');
    const box = (await page.locator('#viewport').boundingBox())!;
    await page.mouse.move(box.x + box.width / 2 - 40, box.y + box.height / 2);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width / 2 + 40, box.y + box.height / 2, { steps: 8 });
    await page.mouse.up();
    await page.waitForSelector('#measurements li.measurement-length');
    await page.keyboard.press('a');
    await expect.poll(async () => (await reviewsOf(ids.twoView)).filter((r) => !r.superseded_at).map((r) => r.decision)).toEqual(['agree']);
    expect((await reviewsOf(ids.twoView)).length).toBe(2); // history kept
    const current = (await reviewsOf(ids.twoView)).find((r) => !r.superseded_at)!;
    expect(JSON.parse(current.measurements!)).toEqual([expect.objectContaining({ kind: 'length', unit: 'mm', instanceId: ids.pa })]);
  }, 60_000);

  it('a decision can be undone from the viewer', async () => {
    await openStudy(page, ids.twoView);
    await waitState(page, '#viewport', 'rendered', `/api/instances/${ids.pa}/file`);
    await waitState(page, '#viewport-2', 'rendered');
    await page.waitForSelector('#review-panel[data-decision="agree"]');
    await page.keyboard.press('z');
    await page.waitForFunction(() => document.querySelector('#toast')?.textContent?.includes('Undone for TWO-VIEW'));
    await page.waitForSelector('#review-panel[data-decision=""]');
    const study = await system.core.database.db.selectFrom('studies').select('review_state').where('id', '=', ids.twoView).executeTakeFirstOrThrow();
    expect(study.review_state).toBe('unreviewed');
  }, 60_000);
});
