import { api, query } from './lib/api.js';
import { clear, h } from './lib/dom.js';
import { subscribe, type LiveConnection } from './lib/events.js';
import { AI_LABEL, AI_STATE_TEXT, ago, dateTime, dicomDate, dicomTime, personName, priorityText, score } from './format.js';

export interface WorklistItem {
  id: number;
  siteId: string;
  studyUid: string;
  patient: { name: string | null; id: string | null; age: string | null; sex: string | null };
  accession: string | null;
  bodyPart: string | null;
  description: string | null;
  studyDate: string | null;
  studyTime: string | null;
  receivedAt: number;
  priority: number;
  ai: { state: string; complete: boolean; score: number | null };
  reviewState: 'unreviewed' | 'reviewed';
  images: number;
}

interface Filter { flag: string; review: string; dateFrom: string; dateTo: string; bodyPart: string; q: string }

const PAGE = 50;
const FLAG_OPTIONS: [string, string][] = [
  ['', 'All AI states'], ['definite,doubt', 'Flagged (definite or doubt)'], ['definite', 'Flagged: definite'], ['doubt', 'Flagged: doubt'],
  ['none', 'Not flagged'], ['pending', 'AI pending'], ['failed', 'AI failed'], ['not_applicable', 'AI n.a.'],
];

const dicomFromInput = (value: string) => value.replace(/-/g, '');

/**
 * The worklist: server-side pages in the default order (unreviewed, AI flag level, priority,
 * waiting time), filters, search, keyboard selection, live refresh that keeps the scroll position
 * and the selected study.
 */
export class WorklistPage {
  readonly element: HTMLElement;
  private filter: Filter = { flag: '', review: '', dateFrom: '', dateTo: '', bodyPart: '', q: '' };
  private offset = 0;
  private total = 0;
  items: WorklistItem[] = [];
  private selectedId: number | undefined;
  private tbody = h('tbody');
  private scroller: HTMLElement;
  private status = h('span', { class: 'status', id: 'worklist-status' });
  private live = h('span', { class: 'live', id: 'live-state', title: 'Updates arrive as AI results come in' }, 'connecting…');
  private pager = h('span', { class: 'pager-text' });
  private prevButton = h('button', { type: 'button', title: 'Previous page' }, '‹ Prev');
  private nextButton = h('button', { type: 'button', title: 'Next page' }, 'Next ›');
  private bodyPart = h('select', { id: 'filter-body-part', 'aria-label': 'Body part' }, h('option', { value: '' }, 'All body parts'));
  private connection: LiveConnection;
  private refreshTimer: number | undefined;
  private loading: Promise<void> | undefined;
  private visible = true;
  private onKey = (e: KeyboardEvent) => this.key(e);

  constructor(private readonly openStudy: (id: number) => void) {
    const flag = h('select', { id: 'filter-flag', 'aria-label': 'AI flag' }, ...FLAG_OPTIONS.map(([v, t]) => h('option', { value: v }, t)));
    const review = h('select', { id: 'filter-review', 'aria-label': 'Review state' },
      h('option', { value: '' }, 'Reviewed and not'), h('option', { value: 'unreviewed' }, 'Unreviewed'), h('option', { value: 'reviewed' }, 'Reviewed'));
    const from = h('input', { type: 'date', id: 'filter-from', 'aria-label': 'Study date from' });
    const to = h('input', { type: 'date', id: 'filter-to', 'aria-label': 'Study date to' });
    const search = h('input', { type: 'search', id: 'search', placeholder: 'Patient name, ID or accession  ( / )', 'aria-label': 'Search' });
    const apply = () => {
      this.filter = { flag: flag.value, review: review.value, dateFrom: dicomFromInput(from.value), dateTo: dicomFromInput(to.value), bodyPart: this.bodyPart.value, q: search.value.trim() };
      this.offset = 0;
      void this.load();
    };
    for (const el of [flag, review, from, to, this.bodyPart]) el.addEventListener('change', apply);
    let typing: number | undefined;
    search.addEventListener('input', () => { clearTimeout(typing); typing = window.setTimeout(apply, 250); });
    search.addEventListener('keydown', (e) => { if (e.key === 'Enter') { clearTimeout(typing); apply(); } if (e.key === 'Escape') search.blur(); });
    this.prevButton.addEventListener('click', () => this.page(-1));
    this.nextButton.addEventListener('click', () => this.page(1));

    const table = h('table', { class: 'worklist', id: 'worklist' },
      h('thead', {}, h('tr', {},
        ...['Patient', 'Patient ID', 'Age/Sex', 'Accession', 'Body part', 'Study time', 'Received', 'Priority'].map((t) => h('th', {}, t)),
        h('th', { class: 'ai-col', title: AI_LABEL }, 'AI ', h('small', { class: 'ai-label' }, '(decision support only)')),
        h('th', { class: 'ai-col' }, 'Score'),
        h('th', {}, 'Review'))),
      this.tbody);
    this.scroller = h('div', { class: 'table-scroll', id: 'worklist-scroll' }, table);
    this.element = h('section', { class: 'worklist-page', id: 'worklist-page' },
      h('div', { class: 'filters' }, search, flag, review, this.bodyPart, h('label', { class: 'date' }, 'From', from), h('label', { class: 'date' }, 'To', to)),
      this.scroller,
      h('div', { class: 'pager' }, this.prevButton, this.pager, this.nextButton, this.status, h('span', { class: 'spacer' }),
        h('span', { class: 'hint' }, '↑/↓ select · Enter open · / search'), this.live));
    this.connection = subscribe(() => this.scheduleRefresh(), (up) => { this.live.textContent = up ? '● live' : 'reconnecting…'; this.live.classList.toggle('up', up); });
    document.addEventListener('keydown', this.onKey);
    void this.loadBodyParts();
    void this.load();
  }

  destroy() {
    this.connection.close();
    document.removeEventListener('keydown', this.onKey);
  }

  show() {
    this.visible = true;
    this.element.hidden = false;
    document.title = 'fracture-triage — worklist';
    void this.load({ keepScroll: true });
  }

  hide() {
    this.visible = false;
    this.element.hidden = true;
  }

  private async loadBodyParts() {
    try {
      const { bodyParts } = await api<{ bodyParts: string[] }>('/api/worklist/body-parts');
      for (const part of bodyParts) this.bodyPart.append(h('option', { value: part }, part));
    } catch { /* the filter just stays empty */ }
  }

  private params(extra: Record<string, string | number> = {}) {
    const f = this.filter;
    return query({ flag: f.flag, review: f.review, dateFrom: f.dateFrom, dateTo: f.dateTo, bodyPart: f.bodyPart, q: f.q, limit: PAGE, offset: this.offset, ...extra });
  }

  /** Reloads the current page; the scroll position and selection survive (rows are re-rendered in place). */
  load(opts: { keepScroll?: boolean } = {}): Promise<void> {
    const run = async () => {
      const scrollTop = this.scroller.scrollTop;
      const started = performance.now();
      try {
        const page = await api<{ total: number; items: WorklistItem[] }>(`/api/worklist${this.params()}`);
        this.items = page.items;
        this.total = page.total;
        if (!this.items.some((i) => i.id === this.selectedId)) this.selectedId = this.items[0]?.id;
        this.render();
        if (opts.keepScroll) this.scroller.scrollTop = scrollTop;
        this.status.textContent = `${Math.round(performance.now() - started)} ms`;
        this.element.dataset.loadedAt = String(Date.now());
      } catch (err) {
        this.status.textContent = `Could not load: ${(err as Error).message}`;
      }
    };
    // One load at a time; a request made meanwhile runs after it.
    this.loading = (this.loading ?? Promise.resolve()).then(run);
    return this.loading;
  }

  private scheduleRefresh() {
    clearTimeout(this.refreshTimer);
    this.refreshTimer = window.setTimeout(() => void this.load({ keepScroll: true }), 300);
  }

  private page(direction: number) {
    const next = this.offset + direction * PAGE;
    if (next < 0 || next >= this.total) return;
    this.offset = next;
    void this.load().then(() => { this.scroller.scrollTop = 0; });
  }

  private render() {
    clear(this.tbody);
    if (!this.items.length) {
      this.tbody.append(h('tr', {}, h('td', { colspan: 11, class: 'empty' }, 'No studies match.')));
    }
    for (const item of this.items) {
      const row = h('tr', {
        class: `row ai-${item.ai.state} ${item.reviewState}${item.id === this.selectedId ? ' selected' : ''}`,
        dataset: { id: String(item.id), ai: item.ai.state, review: item.reviewState },
        tabIndex: -1,
      },
      h('td', { class: 'patient' }, personName(item.patient.name)),
      h('td', {}, item.patient.id ?? '—'),
      h('td', {}, [item.patient.age, item.patient.sex].filter(Boolean).join(' / ') || '—'),
      h('td', {}, item.accession ?? '—'),
      h('td', {}, item.bodyPart ?? '—'),
      h('td', {}, `${dicomDate(item.studyDate)} ${dicomTime(item.studyTime)}`),
      h('td', { title: dateTime(item.receivedAt) }, ago(item.receivedAt)),
      h('td', { class: `prio prio-${priorityText(item.priority)}` }, priorityText(item.priority)),
      h('td', { class: 'ai-col' }, h('span', { class: `flag flag-${item.ai.state}` }, AI_STATE_TEXT[item.ai.state] ?? item.ai.state)),
      h('td', { class: 'ai-col num' }, score(item.ai.score)),
      h('td', { class: `review review-${item.reviewState}` }, item.reviewState === 'reviewed' ? '✓ reviewed' : 'unreviewed'));
      row.addEventListener('click', () => this.select(item.id));
      row.addEventListener('dblclick', () => this.openStudy(item.id));
      this.tbody.append(row);
    }
    const end = Math.min(this.offset + this.items.length, this.total);
    this.pager.textContent = this.total ? `${this.offset + 1}–${end} of ${this.total}` : '0 studies';
    this.prevButton.disabled = this.offset === 0;
    this.nextButton.disabled = end >= this.total;
  }

  private select(id: number, scroll = false) {
    this.selectedId = id;
    for (const row of this.tbody.querySelectorAll('tr.row')) {
      const on = (row as HTMLElement).dataset.id === String(id);
      row.classList.toggle('selected', on);
      if (on && scroll) (row as HTMLElement).scrollIntoView({ block: 'nearest' });
    }
  }

  private key(e: KeyboardEvent) {
    if (!this.visible || e.ctrlKey || e.metaKey || e.altKey) return;
    const target = e.target as HTMLElement;
    if (target.closest('input, select, textarea')) return;
    if (target.closest('button, a') && (e.key === 'Enter' || e.key === ' ')) return; // the button's own action
    const index = this.items.findIndex((i) => i.id === this.selectedId);
    if (e.key === 'ArrowDown' || e.key === 'j') {
      e.preventDefault();
      const next = this.items[Math.min(this.items.length - 1, index + 1)];
      if (next) this.select(next.id, true);
    } else if (e.key === 'ArrowUp' || e.key === 'k') {
      e.preventDefault();
      const prev = this.items[Math.max(0, index - 1)];
      if (prev) this.select(prev.id, true);
    } else if (e.key === 'Enter' && this.selectedId !== undefined) {
      e.preventDefault();
      this.openStudy(this.selectedId);
    } else if (e.key === '/') {
      e.preventDefault();
      (this.element.querySelector('#search') as HTMLInputElement).focus();
    }
  }

  /** The study after (+1) or before (-1) this one in the current worklist order, loading the next page if needed. */
  async neighbour(studyId: number, direction: 1 | -1): Promise<number | undefined> {
    let index = this.items.findIndex((i) => i.id === studyId);
    if (index >= 0 && this.items[index + direction]) return this.items[index + direction].id;
    // Off the loaded page: ask the server for the neighbouring page.
    const offset = this.offset + (index >= 0 ? index : 0) + direction;
    if (offset < 0) return undefined;
    const page = await api<{ items: WorklistItem[] }>(`/api/worklist${this.params({ offset, limit: 1 })}`);
    index = page.items.findIndex((i) => i.id !== studyId);
    return index >= 0 ? page.items[index].id : undefined;
  }

  /** The next study still to be read, in the worklist's order and filters (after a decision). */
  async nextUnreviewed(currentId: number): Promise<number | undefined> {
    const page = await api<{ items: WorklistItem[] }>(`/api/worklist${query({
      flag: this.filter.flag, dateFrom: this.filter.dateFrom, dateTo: this.filter.dateTo, bodyPart: this.filter.bodyPart, q: this.filter.q,
      review: 'unreviewed', limit: 2, offset: 0,
    })}`);
    const next = page.items.find((i) => i.id !== currentId);
    if (next) this.selectedId = next.id;
    return next?.id;
  }

  setSelected(id: number) {
    this.selectedId = id;
  }
}
