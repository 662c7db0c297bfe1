// Admin dashboard (issue 7): queue health, workers, dependencies, charts, failed jobs, queue actions.
import '../styles.css';
import './admin.css';
import { api, ApiError, onUnauthorized, query } from '../lib/api.js';
import { currentUser, loadSession, signOut, type User } from '../lib/auth.js';
import { signInForm } from '../lib/sign-in-form.js';
import { showDemoBanner } from '../lib/demo-banner.js';
import { clear, h } from '../lib/dom.js';
import type { AdminAction, FailedJob, Overview, Throughput, WorkerStatus } from '../../../services/contract/index.js';
import { PipelineCharts } from './charts.js';
import { AccountsPanel } from './accounts.js';
import { DeliveriesPanel } from './deliveries.js';
import { ago, bytes, duration, shortUid, time } from './format.js';

/** How often the dashboard reloads its numbers. */
const REFRESH_MS = 3_000;

type Action = AdminAction;
type Worker = WorkerStatus;

const root = document.getElementById('admin')!;
let dashboard: Dashboard | undefined;

function showLogin(message?: string) {
  dashboard?.destroy();
  dashboard = undefined;
  clear(root);
  const { form, username } = signInForm({ heading: [h('h1', {}, 'fracture-triage admin')], message, onSignedIn: start });
  root.append(form);
  username.focus();
}

function showForbidden(user: User) {
  clear(root);
  const out = h('button', { class: 'link', id: 'sign-out' }, 'Sign out');
  out.addEventListener('click', () => void signOut().finally(() => showLogin()));
  root.append(h('div', { class: 'login', id: 'forbidden' },
    h('h1', {}, 'Admins only'),
    h('p', {}, `You are signed in as ${user.username} (${user.role}). This page is for administrators.`),
    h('a', { href: '/' }, 'Back to the worklist'), out));
}

function start() {
  const user = currentUser();
  if (!user) return showLogin();
  if (user.role !== 'admin' && user.role !== 'superadmin') return showForbidden(user);
  dashboard?.destroy();
  clear(root);
  dashboard = new Dashboard(user);
  root.append(dashboard.element);
  dashboard.start();
}

const cell = (text: string | number | null | undefined, attrs: Record<string, unknown> = {}) => h('td', attrs, text === null || text === undefined || text === '' ? '—' : String(text));

class Dashboard {
  readonly element: HTMLElement;
  private timer: number | undefined;
  private chartTimer: number | undefined;
  private readonly charts = new PipelineCharts();
  private readonly status = h('span', { class: 'muted', id: 'refresh-status' }, '');
  private readonly queueBox = h('section', { class: 'panel', id: 'queue-panel' });
  private readonly healthBox = h('section', { class: 'panel', id: 'health-panel' });
  private readonly workersBox = h('section', { class: 'panel wide', id: 'workers-panel' });
  private readonly chartSummary = h('p', { class: 'muted', id: 'chart-summary' });
  private readonly stageSummary = h('p', { class: 'muted', id: 'stage-summary' });
  private readonly failedBody = h('tbody', { id: 'failed-jobs' });
  private readonly failedTotal = h('span', { id: 'failed-total' }, '');
  private readonly search = h('input', { id: 'failed-search', type: 'search', placeholder: 'SOP Instance UID, Study Instance UID or accession number', 'aria-label': 'Search failed jobs' });
  private readonly historyBox = h('section', { class: 'panel wide', id: 'job-history', hidden: true });
  private readonly actionsBody = h('tbody', { id: 'recent-actions' });
  private readonly message = h('p', { class: 'notice', id: 'action-message', role: 'status' }, '');
  private readonly deliveries = new DeliveriesPanel((text, error) => this.say(text, error));
  private readonly accounts = new AccountsPanel((text, error) => this.say(text, error));
  private busy = false;
  private finished: number | undefined;

  constructor(private readonly user: User) {
    const out = h('button', { class: 'link', id: 'sign-out' }, 'Sign out');
    out.addEventListener('click', async () => {
      await signOut().catch(() => undefined);
      showLogin();
    });
    const retryAll = h('button', { id: 'retry-all' }, 'Retry all');
    retryAll.addEventListener('click', () => void this.act('Retry every failed job?', () => api<{ retried: number; remaining: number }>('/api/admin/jobs/failed/retry', { method: 'POST' }), (r) => `Retried ${r.retried} job(s); ${r.remaining} still failed.`));
    const searchForm = h('form', { class: 'search', id: 'failed-search-form' }, this.search, h('button', { type: 'submit' }, 'Search'));
    searchForm.addEventListener('submit', (e) => { e.preventDefault(); void this.loadFailed(); });
    this.search.addEventListener('search', () => void this.loadFailed());

    this.element = h('div', { class: 'admin' },
      h('header', { class: 'topbar' },
        h('a', { href: '/admin.html', class: 'brand' }, 'fracture-triage · admin'),
        h('a', { href: '/' }, 'Worklist'),
        h('a', { href: '/admin/queues', id: 'job-browser' }, 'Job browser'),
        h('a', { href: '/docs' }, 'API docs'),
        h('span', { class: 'spacer' }),
        this.status,
        h('span', { class: 'who' }, `${this.user.displayName} · ${this.user.role}`),
        out),
      h('main', { class: 'admin-main' },
        this.message,
        h('div', { class: 'grid' }, this.queueBox, this.healthBox),
        h('section', { class: 'panel wide' }, h('h2', {}, 'Last hour'), this.chartSummary, this.stageSummary, this.charts.element),
        this.workersBox,
        h('section', { class: 'panel wide', id: 'failed-panel' },
          h('div', { class: 'panel-head' }, h('h2', {}, 'Failed jobs ', this.failedTotal), h('span', { class: 'spacer' }), searchForm, retryAll),
          h('div', { class: 'table-scroll' }, h('table', { class: 'data' },
            h('thead', {}, h('tr', {}, ...['Site', 'SOP Instance UID', 'Study Instance UID', 'Accession', 'Reason', 'Attempts', 'Failed at', ''].map((t) => h('th', {}, t)))),
            this.failedBody))),
        this.historyBox,
        this.deliveries.element,
        this.accounts.element,
        h('section', { class: 'panel wide' }, h('h2', {}, 'Recent queue actions (audited)'),
          h('table', { class: 'data' }, h('thead', {}, h('tr', {}, ...['When', 'Who', 'Action', 'Target', 'Details'].map((t) => h('th', {}, t)))), this.actionsBody))));
  }

  start() {
    void this.refresh();
    void this.loadCharts();
    void this.loadFailed();
    void this.deliveries.load();
    void this.accounts.load();
    this.timer = window.setInterval(() => { void this.refresh(); void this.deliveries.load(); }, REFRESH_MS);
    this.chartTimer = window.setInterval(() => void this.loadCharts(), REFRESH_MS * 5);
  }

  destroy() {
    window.clearInterval(this.timer);
    window.clearInterval(this.chartTimer);
    this.charts.destroy();
  }

  private say(text: string, error = false) {
    this.message.textContent = text;
    this.message.classList.toggle('error', error);
  }

  /** Runs an admin action after a confirmation, then reloads everything. */
  private async act<T>(confirmText: string | null, run: () => Promise<T>, done: (result: T) => string) {
    if (confirmText && !window.confirm(confirmText)) return;
    try {
      const result = await run();
      this.say(done(result));
    } catch (err) {
      this.say((err as Error).message, true);
    }
    await Promise.all([this.refresh(), this.loadFailed()]);
  }

  private async refresh() {
    if (this.busy) return;
    this.busy = true;
    try {
      const [overview, actions] = await Promise.all([api<Overview>('/api/admin/overview'), api<Action[]>('/api/admin/actions')]);
      this.renderQueue(overview);
      this.renderHealth(overview);
      this.renderWorkers(overview.workers, overview.at);
      this.renderActions(actions);
      // The failed list follows the failed count (unless the admin is searching); the charts follow
      // the finished count, besides their own slower refresh.
      const failed = overview.queue?.counts.failed;
      if (failed !== undefined && !this.search.value.trim() && String(failed) !== this.failedTotal.dataset.total) void this.loadFailed();
      const finished = overview.instances ? (overview.instances.done ?? 0) + (overview.instances.failed ?? 0) : undefined;
      if (finished !== undefined && finished !== this.finished) {
        this.finished = finished;
        void this.loadCharts();
      }
      this.status.textContent = `updated ${time(overview.at).slice(11)}`;
      this.status.classList.remove('error');
    } catch (err) {
      if (err instanceof ApiError && err.status === 403) return start();
      this.status.textContent = `refresh failed: ${(err as Error).message}`;
      this.status.classList.add('error');
    } finally {
      this.busy = false;
    }
  }

  private renderQueue(o: Overview) {
    clear(this.queueBox);
    if (!o.queue) {
      this.queueBox.append(h('h2', {}, 'Queue'), h('p', { class: 'error' }, 'Queue state unavailable (Redis does not answer).'));
      return;
    }
    const q = o.queue;
    const tile = (key: string, label: string, value: number, cls = '') => h('div', { class: `tile ${cls}`, dataset: { count: key } }, h('span', { class: 'value' }, String(value)), h('span', { class: 'label' }, label));
    const pause = h('button', { id: q.paused ? 'queue-resume' : 'queue-pause' }, q.paused ? 'Resume' : 'Pause');
    pause.addEventListener('click', () => void this.act(null,
      () => api(`/api/admin/queue/${q.paused ? 'resume' : 'pause'}`, { method: 'POST' }),
      () => (q.paused ? 'Queue resumed.' : 'Queue paused: workers finish their current jobs and take no new ones.')));
    const drain = h('button', { id: 'queue-drain' }, 'Drain');
    drain.addEventListener('click', () => void this.act(
      'Drain removes every waiting and delayed job from Redis. Images stay in the database as unclassified and the reconciler queues them again on its next pass. Go on?',
      () => api<{ removed: number }>('/api/admin/queue/drain', { method: 'POST' }),
      (r) => `Drained ${r.removed} job(s).`));
    this.queueBox.append(
      h('div', { class: 'panel-head' },
        h('h2', {}, `Queue “${q.name}” `, h('span', { class: `state ${q.paused ? 'bad' : 'good'}`, id: 'queue-state' }, q.paused ? 'paused' : 'running')),
        h('span', { class: 'spacer' }), pause, drain),
      h('div', { class: 'tiles' },
        tile('waiting', 'waiting', q.waitingTotal),
        tile('active', 'active', q.counts.active),
        tile('delayed', 'delayed (retry backoff)', q.counts.delayed),
        tile('completed', 'completed (kept 7 days)', q.counts.completed),
        tile('failed', 'failed', q.counts.failed, q.counts.failed ? 'bad' : '')),
      h('p', {}, 'Oldest waiting image: ', h('strong', { id: 'oldest-waiting' }, q.oldestWaitingAgeSec === null ? 'none waiting' : duration(q.oldestWaitingAgeSec))),
      o.instances ? h('p', { class: 'muted', id: 'instances-by-status' }, `Images in the database: ${Object.entries(o.instances).map(([k, v]) => `${k} ${v}`).join(' · ')}`) : '');
  }

  private renderHealth(o: Overview) {
    clear(this.healthBox);
    const dep = (name: string, state: string) => h('li', { dataset: { health: name } }, `${name}: `, h('span', { class: `state ${state === 'ok' ? 'good' : 'bad'}` }, state));
    const disk = o.disk;
    const workersAlive = (o.workers ?? []).filter((w) => w.alive).length;
    this.healthBox.append(
      h('h2', {}, 'Health'),
      h('ul', { class: 'health' },
        dep('redis', o.health.redis),
        dep('database', o.health.database),
        h('li', { dataset: { health: 'workers' } }, 'workers alive: ', h('span', { class: `state ${workersAlive ? 'good' : 'bad'}` }, String(workersAlive))),
        disk
          ? h('li', { dataset: { health: 'disk' } }, 'data disk: ', h('span', { class: `state ${disk.usedFraction > 0.9 ? 'bad' : 'good'}` }, `${bytes(disk.freeBytes)} free of ${bytes(disk.totalBytes)} (${Math.round(disk.usedFraction * 100)}% used)`))
          : h('li', { dataset: { health: 'disk' } }, 'data disk: ', h('span', { class: 'state bad' }, 'unknown'))),
      disk ? h('p', { class: 'muted' }, `Data folder: ${disk.path}`) : '');
  }

  private renderWorkers(workers: Worker[] | null, now: number) {
    clear(this.workersBox);
    this.workersBox.append(h('h2', {}, 'Workers'));
    if (workers === null) {
      this.workersBox.append(h('p', { class: 'error' }, 'Worker heartbeats unavailable (Redis does not answer).'));
      return;
    }
    if (!workers.length) {
      this.workersBox.append(h('p', { class: 'muted', id: 'no-workers' }, 'No classify worker has sent a heartbeat in the last 5 minutes.'));
      return;
    }
    this.workersBox.append(h('table', { class: 'data', id: 'workers' },
      h('thead', {}, h('tr', {}, ...['Worker', 'Host', 'PID', 'Backend', 'Model', 'Version', 'Jobs done', 'Jobs failed', 'Last heartbeat', 'State'].map((t) => h('th', {}, t)))),
      h('tbody', {}, ...workers.map((w) => h('tr', { dataset: { worker: w.id } },
        cell(w.id), cell(w.host), cell(w.pid), cell(w.backend), cell(w.modelName), cell(w.modelVersion),
        cell(w.jobsDone, { class: 'num' }), cell(w.jobsFailed, { class: 'num' }), cell(ago(w.lastHeartbeat, now)),
        h('td', {}, h('span', { class: `state ${w.alive ? 'good' : 'bad'}` }, w.alive ? 'alive' : 'stale')))))));
  }

  private renderActions(actions: Action[]) {
    clear(this.actionsBody);
    if (!actions.length) this.actionsBody.append(h('tr', {}, h('td', { colspan: 5, class: 'muted' }, 'No queue actions yet.')));
    for (const a of actions) {
      const { username, ...details } = a.details ?? {};
      this.actionsBody.append(h('tr', {},
        cell(time(a.at)), cell(String(username ?? a.actor_id ?? a.actor_type)), cell(a.action), cell(a.target_id),
        cell(Object.keys(details).length ? JSON.stringify(details) : '')));
    }
  }

  private async loadCharts() {
    try {
      const t = await api<Throughput>('/api/admin/throughput?minutes=60');
      this.charts.update(t.minutes);
      const ms = (v: number | null) => (v === null ? '—' : duration(v / 1000));
      this.chartSummary.textContent = `${t.total.results} result(s) in the last hour · ${t.total.perMinute.toFixed(2)} images/min · latency p50 ${ms(t.total.p50Ms)}, p95 ${ms(t.total.p95Ms)}`;
      const names: [keyof Throughput['stages'], string][] = [['queue_wait', 'queue wait'], ['decode', 'decode'], ['inference', 'inference'], ['store', 'store']];
      this.stageSummary.textContent = `Per stage, p50 / p95: ${names.map(([k, label]) => `${label} ${ms(t.stages[k].p50Ms)} / ${ms(t.stages[k].p95Ms)}`).join(' · ')}`;
    } catch (err) {
      this.chartSummary.textContent = `charts unavailable: ${(err as Error).message}`;
    }
  }

  private async loadFailed() {
    const q = this.search.value.trim();
    try {
      const result = await api<{ total: number; jobs: FailedJob[] }>(`/api/admin/jobs/failed${query({ q, limit: 100 })}`);
      this.failedTotal.textContent = `(${result.total}${q ? ' matching' : ''})`;
      this.failedTotal.dataset.total = q ? '' : String(result.total);
      clear(this.failedBody);
      if (!result.jobs.length) {
        this.failedBody.append(h('tr', {}, h('td', { colspan: 8, class: 'muted', id: 'no-failed' }, q ? 'No failed job matches.' : 'No failed jobs.')));
        return;
      }
      for (const job of result.jobs) this.failedBody.append(this.failedRow(job));
    } catch (err) {
      this.failedTotal.textContent = `(error: ${(err as Error).message})`;
    }
  }

  private failedRow(job: FailedJob) {
    const retry = h('button', { class: 'retry' }, 'Retry');
    retry.addEventListener('click', () => void this.act(null, () => api(`/api/admin/jobs/${encodeURIComponent(job.id)}/retry`, { method: 'POST' }), () => 'Job sent back to the queue.'));
    const remove = h('button', { class: 'remove' }, 'Remove');
    remove.addEventListener('click', () => void this.act('Remove this job? Its image stays marked failed.', () => api(`/api/admin/jobs/${encodeURIComponent(job.id)}`, { method: 'DELETE' }), () => 'Job removed.'));
    const history = h('button', { class: 'history' }, 'History');
    history.addEventListener('click', () => void this.showHistory(job.id));
    return h('tr', { dataset: { job: job.id }, title: `job ${job.id}` },
      cell(job.siteId),
      h('td', { title: job.sopInstanceUid ?? '' }, shortUid(job.sopInstanceUid, 16)),
      h('td', { title: job.studyUid ?? '' }, shortUid(job.studyUid, 16)),
      cell(job.accessionNumber),
      h('td', { class: 'reason' }, job.failedReason || '—'),
      cell(`${job.attemptsMade}/${job.attempts}`, { class: 'num' }),
      cell(time(job.finishedOn)),
      h('td', { class: 'actions' }, history, retry, remove));
  }

  private async showHistory(id: string) {
    const box = this.historyBox;
    clear(box);
    box.hidden = false;
    const close = h('button', { class: 'link' }, 'Close');
    close.addEventListener('click', () => { box.hidden = true; });
    try {
      const j = await api<any>(`/api/admin/jobs/${encodeURIComponent(id)}`);
      const row = (k: string, v: unknown) => h('tr', {}, h('th', {}, k), h('td', {}, v === null || v === undefined || v === '' ? '—' : String(v)));
      box.append(
        h('div', { class: 'panel-head' }, h('h2', {}, 'Job history'), h('span', { class: 'spacer' }), close),
        h('table', { class: 'kv' }, h('tbody', {},
          row('Job', j.id), row('State', j.state), row('Site', j.data?.siteId), row('Instance id', j.data?.instanceId),
          row('SOP Instance UID', j.instance?.sopInstanceUid), row('Study Instance UID', j.instance?.studyUid), row('Accession', j.instance?.accessionNumber),
          row('Attempts', `${j.attemptsMade} made of ${j.attempts} allowed (${j.attemptsStarted} started)`),
          row('Queued', time(j.queuedAt)), row('Last started', time(j.processedOn)), row('Finished', time(j.finishedOn)),
          row('Failed reason', j.failedReason),
          row('Stored result', j.result ? `${j.result.status}${j.result.flag ? ` (${j.result.flag})` : ''}${j.result.reason ? `: ${j.result.reason}` : ''}; attempts ${j.result.attempts}; model ${j.result.model_name ?? '—'} ${j.result.model_version ?? ''}` : null))),
        h('h3', {}, 'Errors of attempts (oldest first)'),
        j.errors.length ? h('ol', { class: 'errors' }, ...j.errors.map((e: string) => h('li', {}, h('pre', {}, e)))) : h('p', { class: 'muted' }, 'none'),
        j.logs.length ? h('div', {}, h('h3', {}, 'Job log'), h('pre', {}, j.logs.join('\n'))) : '',
        h('h3', {}, 'Admin actions on this job'),
        j.audit.length
          ? h('ul', {}, ...j.audit.map((a: Action) => h('li', {}, `${time(a.at)} · ${String(a.details?.username ?? a.actor_id)} · ${a.action}`)))
          : h('p', { class: 'muted' }, 'none'));
      box.scrollIntoView({ block: 'nearest' });
    } catch (err) {
      box.append(h('p', { class: 'error' }, (err as Error).message), close);
    }
  }
}

onUnauthorized(() => showLogin('Your session ended. Please sign in again.'));
loadSession().then(() => start()).catch((err) => {
  clear(root);
  root.append(h('p', { class: 'error' }, `Cannot reach the server: ${(err as Error).message}`));
});

void showDemoBanner();
