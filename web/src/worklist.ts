import { api, query } from './lib/api.js';
import { clear, h } from './lib/dom.js';
import { subscribe, type LiveConnection } from './lib/events.js';
import type { BodyParts, WorklistItem, WorklistPage as WorklistPageBody } from '../../services/contract/index.js';
import { AI_LABEL, aiStateText, ago, dateTime, dicomDate, dicomTime, personName, priority, score } from './format.js';

/** A sortable column: its header, how to compare two rows (ascending), and its cell. */
interface Column { key: string; title: string | (Node | string)[]; className?: string; compare?: (a: WorklistItem, b: WorklistItem) => number; cell(item: WorklistItem): HTMLTableCellElement }

const text = (value: string | null | undefined) => value ?? '';
const byText = (get: (i: WorklistItem) => string | null | undefined) => (a: WorklistItem, b: WorklistItem) => text(get(a)).localeCompare(text(get(b)));
/** The AI column sorts most suspicious first (unreadable counts as needing a look, next to flagged). */
const AI_RANK: Record<string, number> = { definite: 0, doubt: 1, unreadable: 2, failed: 2, pending: 2, none: 3, not_applicable: 4 };

const COLUMNS: Column[] = [
  { key: 'priority', title: 'Priority', compare: (a, b) => a.priority - b.priority, cell: (i) => { const p = priority(i.priority); return h('td', { class: `prio prio-${p.name}` }, p.text); } },
  { key: 'ai', title: ['AI ', h('small', { class: 'ai-label' }, '(decision support only)')], className: 'ai-col', compare: (a, b) => (AI_RANK[a.ai.state] ?? 9) - (AI_RANK[b.ai.state] ?? 9),
    cell: (i) => h('td', { class: 'ai-col', title: i.ai.unreadableReason ?? i.ai.reason ?? '' }, h('span', { class: `flag flag-${i.ai.state}` }, aiStateText(i.ai.state)),
      i.ai.state === 'unreadable' && i.ai.unreadableReason ? h('small', { class: 'unreadable-reason' }, ` ${i.ai.unreadableReason}`) : null) },
  { key: 'score', title: 'Score', className: 'ai-col', compare: (a, b) => (b.ai.score ?? -1) - (a.ai.score ?? -1), cell: (i) => h('td', { class: 'ai-col num' }, score(i.ai.score)) },
  { key: 'patient', title: 'Patient', compare: byText((i) => i.patient.name), cell: (i) => h('td', { class: 'patient' }, personName(i.patient.name)) },
  { key: 'patientId', title: 'Patient ID', compare: byText((i) => i.patient.id), cell: (i) => h('td', {}, i.patient.id ?? '—') },
  { key: 'ageSex', title: 'Age/Sex', cell: (i) => h('td', {}, [i.patient.age, i.patient.sex].filter(Boolean).join(' / ') || '—') },
  { key: 'accession', title: 'Accession', compare: byText((i) => i.accession), cell: (i) => h('td', { class: 'accession' }, i.accession ?? '—') },
  { key: 'bodyPart', title: 'Body part', compare: byText((i) => i.bodyPart), cell: (i) => h('td', {}, i.bodyPart ?? '—') },
  { key: 'studyTime', title: 'Study time', compare: byText((i) => `${i.studyDate ?? ''}${i.studyTime ?? ''}`), cell: (i) => h('td', {}, `${dicomDate(i.studyDate)} ${dicomTime(i.studyTime)}`) },
  { key: 'received', title: 'Received', compare: (a, b) => a.receivedAt - b.receivedAt, cell: (i) => h('td', { title: dateTime(i.receivedAt) }, ago(i.receivedAt)) },
  { key: 'review', title: 'Review', compare: byText((i) => i.reviewState), cell: (i) => h('td', { class: `review review-${i.reviewState}` }, i.reviewState === 'reviewed' ? '✓ reviewed' : 'unreviewed') },
];
const FLAGGED = new Set(['definite', 'doubt']);

interface Filter { flag: string; review: string; dateFrom: string; dateTo: string; bodyPart: string; q: string }

const PAGE = 50;
const FLAG_OPTIONS: [string, string][] = [
  ['', 'All AI states'], ['definite,doubt', 'Flagged (definite or doubt)'], ['definite', 'Flagged: definite'], ['doubt', 'Flagged: doubt'],
  ['unreadable', 'Unreadable — needs a look'], ['none', 'Not flagged'], ['pending', 'AI pending'], ['failed', 'AI failed'], ['not_applicable', 'AI n.a.'],
];

const dicomFromInput = (value: string) => value.replace(/-/g, '');

/**
 * The worklist: server-side pages in the server's default order (clinical priority first, then the
 * AI flag, score, waiting time), columns sortable within the page, filters, search, keyboard
 * selection, live refresh that keeps the scroll position and the selected study, and a quiet notice
 * (and tab title) when a newly flagged study arrives.
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
  private sort: { key: string; direction: 1 | -1 } | undefined;
  private headers = new Map<string, HTMLTableCellElement>();
  /** Studies flagged by the AI since the user last looked at the top of the list. */
  private newFlagged = new Set<number>();
  /** The flag each study had when last seen (list or event), so only a new or raised flag is announced. */
  private knownFlags = new Map<number, string>();
  private notice = h('button', { type: 'button', class: 'new-flagged', id: 'new-flagged', hidden: true, title: 'Show the top of the list' });
  private baseTitle: string | undefined;

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

    const headerRow = h('tr', {}, ...COLUMNS.map((c) => {
      const th = h('th', { class: c.className ?? '', dataset: { key: c.key }, title: c.key === 'ai' ? AI_LABEL : c.compare ? 'Sort' : '' }, ...(typeof c.title === 'string' ? [c.title] : c.title));
      if (c.compare) {
        th.classList.add('sortable');
        th.tabIndex = 0;
        th.addEventListener('click', () => this.sortBy(c.key));
        th.addEventListener('keydown', (e) => {
          if (e.key !== 'Enter' && e.key !== ' ') return;
          e.preventDefault();
          e.stopPropagation(); // not the list's Enter (open the selected study)
          this.sortBy(c.key);
        });
      }
      this.headers.set(c.key, th);
      return th;
    }));
    const table = h('table', { class: 'worklist', id: 'worklist' }, h('thead', {}, headerRow), this.tbody);
    this.notice.addEventListener('click', () => this.acknowledgeNew(true));
    this.scroller = h('div', { class: 'table-scroll', id: 'worklist-scroll' }, table);
    this.element = h('section', { class: 'worklist-page', id: 'worklist-page' },
      h('div', { class: 'filters' }, search, flag, review, this.bodyPart, h('label', { class: 'date' }, 'From', from), h('label', { class: 'date' }, 'To', to),
        h('span', { class: 'spacer' }), this.notice),
      this.scroller,
      h('div', { class: 'pager' }, this.prevButton, this.pager, this.nextButton, this.status, h('span', { class: 'spacer' }),
        h('span', { class: 'hint' }, '↑/↓ select · Enter open · / search'), this.live));
    this.connection = subscribe((event) => { this.noticeFlagged(event); this.scheduleRefresh(); }, (up) => { this.live.textContent = up ? '● live' : 'reconnecting…'; this.live.classList.toggle('up', up); });
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
    this.setBaseTitle(undefined);
    void this.load({ keepScroll: true });
  }

  /** The tab title: the page's own (the viewer's study, or the worklist), with the count of new flagged studies. */
  setBaseTitle(title: string | undefined) {
    this.baseTitle = title;
    this.updateTitle();
  }

  private updateTitle() {
    const count = this.newFlagged.size;
    document.title = `${count ? `(${count} new flagged) ` : ''}${this.baseTitle ?? 'fracture-triage — worklist'}`;
    this.notice.hidden = count === 0;
    this.notice.textContent = `● ${count} new flagged ${count === 1 ? 'study' : 'studies'} — show`;
  }

  /** A study the AI newly flagged, or raised from doubt to definite, is counted for the notice. */
  private noticeFlagged(event: { type: string; studyId: number; aiFlag?: unknown }) {
    const flag = String(event.aiFlag);
    if (event.type !== 'study' || !FLAGGED.has(flag)) return;
    const before = this.knownFlags.get(event.studyId);
    this.knownFlags.set(event.studyId, flag);
    if (before === flag || before === 'definite') return;
    this.newFlagged.add(event.studyId);
    this.updateTitle();
  }

  /** The user has seen the new arrivals: clear the count (and go to the top of the list when asked). */
  private acknowledgeNew(scrollTop: boolean) {
    this.newFlagged.clear();
    this.updateTitle();
    if (scrollTop) {
      this.scroller.scrollTop = 0;
      if (this.items[0]) this.select(this.items[0].id);
    }
  }

  private sortBy(key: string) {
    this.sort = this.sort?.key === key ? (this.sort.direction === 1 ? { key, direction: -1 } : undefined) : { key, direction: 1 };
    this.applySort();
    this.render();
  }

  /** Sorts the loaded page by the chosen column; without one, the server's order stands. */
  private applySort() {
    for (const [key, th] of this.headers) th.dataset.sort = this.sort?.key === key ? (this.sort.direction === 1 ? 'asc' : 'desc') : '';
    const sort = this.sort;
    const column = sort && COLUMNS.find((c) => c.key === sort.key);
    if (!sort || !column?.compare) return;
    const compare = column.compare;
    this.items = this.items.map((item, index) => ({ item, index }))
      .sort((a, b) => sort.direction * compare(a.item, b.item) || a.index - b.index).map((x) => x.item);
  }

  hide() {
    this.visible = false;
    this.element.hidden = true;
  }

  private async loadBodyParts() {
    try {
      const { bodyParts } = await api<BodyParts>('/api/worklist/body-parts');
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
      const started = performance.now();
      try {
        const page = await api<WorklistPageBody>(`/api/worklist${this.params()}`);
        this.items = page.items;
        this.total = page.total;
        for (const item of page.items) this.knownFlags.set(item.id, item.ai.state);
        this.applySort();
        if (!this.items.some((i) => i.id === this.selectedId)) this.selectedId = this.items[0]?.id;
        // The position is read right before the rows are replaced, not when the request left: the
        // user may have scrolled while it was in flight (and a slow answer must not undo that).
        const scrollTop = this.scroller.scrollTop;
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
      this.tbody.append(h('tr', {}, h('td', { colspan: COLUMNS.length, class: 'empty' }, 'No studies match.')));
    }
    for (const item of this.items) {
      const row = h('tr', {
        class: `row ai-${item.ai.state} ${item.reviewState}${item.id === this.selectedId ? ' selected' : ''}`,
        dataset: { id: String(item.id), ai: item.ai.state, review: item.reviewState, priority: String(item.priority) },
        tabIndex: -1,
      }, ...COLUMNS.map((c) => c.cell(item)));
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

  setSelected(id: number) {
    this.selectedId = id;
    if (this.newFlagged.delete(id)) this.updateTitle();
  }
}
