import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { PASSWORD } from './viewer-system.js';

/** Headless Debian Chromium with a fresh profile, for the e2e tests and bench:viewer. */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-sync'];

export async function launch(): Promise<{ context: BrowserContext; page: Page; close(): Promise<void> }> {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'ft-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, viewport: { width: 1440, height: 900 },
  });
  const page = context.pages()[0] ?? await context.newPage();
  return {
    context, page,
    async close() {
      await context.close();
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

export async function signIn(page: Page, url: string, username: string) {
  await page.goto(`${url}/`);
  await page.fill('input[name=username]', username);
  await page.fill('input[name=password]', PASSWORD);
  await page.click('#login-form button[type=submit]');
  await page.waitForSelector('#worklist tr.row');
}


/** The two screen sizes the docs show: a 1920×1080 monitor and a 1366×768 laptop. */
export const SCREENS = [{ width: 1920, height: 1080, suffix: '' }, { width: 1366, height: 768, suffix: '-1366x768' }] as const;

/**
 * Screenshots of the page at both sizes (`<name>.png` at 1920×1080, `<name>-1366x768.png`), each
 * after every visible image canvas has been resized to its viewport; then back to `restore`.
 */
export async function screenshots(page: Page, dir: string, name: string, restore = { width: 1440, height: 900 }) {
  fs.mkdirSync(dir, { recursive: true });
  for (const screen of SCREENS) {
    await page.setViewportSize({ width: screen.width, height: screen.height });
    // (Runs in the page; typed loosely because this file is also compiled without the DOM library.)
    await page.waitForFunction(() => [...(globalThis as any).document.querySelectorAll('.viewport')].every((el: any) => {
      const canvas = el.querySelector('canvas.cornerstone-canvas');
      return !el.offsetParent || el.dataset.state !== 'rendered' || !canvas || canvas.width === el.clientWidth;
    }), undefined, { timeout: 60_000 });
    await page.screenshot({ path: path.join(dir, `${name}${screen.suffix}.png`) });
  }
  await page.setViewportSize(restore);
}
