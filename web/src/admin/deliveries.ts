// Admin panel: AI results sent back to hospitals (SR/SC to PACS, webhooks) — states, reasons, retry.
import { api } from '../lib/api.js';
import { clear, h } from '../lib/dom.js';
import { duration, shortUid, time } from './format.js';

interface Delivery {
  id: number; site_id: string; status: string; attempts: number; last_error: string | null; sent_at: number | null;
  latency_ms: number | null; updated_at: number; version: number; study_uid: string; destination: string | null; kind: string | null;
}
interface Deliveries { stats: { status: string; count: number; meanLatencyMs: number | null }[]; deliveries: Delivery[] }

export class DeliveriesPanel {
  private readonly summary = h('p', { class: 'muted', id: 'delivery-summary' }, '');
  private readonly body = h('tbody', { id: 'deliveries' });
  readonly element = h('section', { class: 'panel wide', id: 'deliveries-panel' },
    h('h2', {}, 'Results sent to hospitals'), this.summary,
    h('div', { class: 'table-scroll' }, h('table', { class: 'data' },
      h('thead', {}, h('tr', {}, ...['Site', 'Destination', 'Study Instance UID', 'Version', 'State', 'Attempts', 'Reason', 'Updated', ''].map((t) => h('th', {}, t)))),
      this.body)));

  constructor(private readonly onMessage: (text: string, error?: boolean) => void) {}

  async load(): Promise<void> {
    try {
      const data = await api<Deliveries>('/api/admin/results/deliveries?limit=50');
      this.summary.textContent = data.stats.length
        ? data.stats.map((s) => `${s.status}: ${s.count}${s.meanLatencyMs === null ? '' : ` (mean ${duration(s.meanLatencyMs / 1000)})`}`).join(' · ')
        : 'Nothing sent yet. Destinations are set with `npm run cli -- destination:add`.';
      clear(this.body);
      for (const d of data.deliveries) this.body.append(this.row(d));
    } catch (err) {
      this.summary.textContent = `deliveries unavailable: ${(err as Error).message}`;
    }
  }

  private row(d: Delivery) {
    const actions = h('td', { class: 'actions' });
    if (d.status === 'failed' || d.status === 'retrying') {
      const retry = h('button', { class: 'retry' }, 'Send now');
      retry.addEventListener('click', async () => {
        try {
          await api(`/api/admin/results/deliveries/${d.id}/retry`, { method: 'POST' });
          this.onMessage('Delivery sent back to the queue.');
        } catch (err) {
          this.onMessage((err as Error).message, true);
        }
        await this.load();
      });
      actions.append(retry);
    }
    const state = d.status === 'sent' ? 'good' : d.status === 'queued' ? '' : 'bad';
    return h('tr', { dataset: { delivery: String(d.id) } },
      h('td', {}, d.site_id), h('td', {}, `${d.destination ?? '(removed)'} · ${d.kind ?? ''}`),
      h('td', { title: d.study_uid }, shortUid(d.study_uid, 16)), h('td', { class: 'num' }, String(d.version)),
      h('td', {}, h('span', { class: `state ${state}` }, d.status)), h('td', { class: 'num' }, String(d.attempts)),
      h('td', { class: 'reason' }, d.last_error ?? '—'), h('td', {}, time(d.updated_at)), actions);
  }
}
