import { h } from './dom.js';

/**
 * A loud banner at the top of every page while the server runs in demo mode (`/readyz` says so):
 * demo credentials are known to whoever saw the server start, so no real patient data belongs here.
 */
export async function showDemoBanner(): Promise<void> {
  const ready = await fetch('/readyz').then((r) => r.json() as Promise<{ demo?: boolean }>, () => ({ demo: false }));
  if (!ready.demo) return;
  document.body.prepend(h('div', { class: 'demo-banner', role: 'alert' },
    'DEMO MODE: demo accounts and key are active. Never use with real patients\' data. Start the server with FT_DEMO=0 for real use.'));
}
