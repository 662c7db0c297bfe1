import { api, ApiError } from '../lib/api.js';
import { currentUser } from '../lib/auth.js';
import { clear, h } from '../lib/dom.js';
import { subscribe, type LiveConnection } from '../lib/events.js';
import { AI_LABEL, AI_STATE_TEXT, DECISION_TEXT, dateTime, dicomDate, dicomTime, personName, priorityText, score } from '../format.js';
import type { WorklistItem, WorklistPage } from '../worklist.js';
import { cornerstone, cornerstoneTools, initCornerstone } from './cornerstone.js';
import { drawOverlay, loadHeatmap, type AiBox } from './overlay.js';
import { PRESETS, rangeStats, type RangeStats } from './presets.js';
import { SHORTCUTS } from './shortcuts.js';

interface ImageAi {
  status: 'done' | 'failed' | 'not_applicable';
  probability: number | null;
  flag: 'none' | 'doubt' | 'definite' | null;
  boxes: AiBox[];
  heatmapUrl: string | null;
  model: { name: string | null; version: string | null };
  reason: string | null;
}

interface StudyImage {
  id: number;
  sopInstanceUid: string;
  seriesNumber: number | null;
  seriesDescription: string | null;
  instanceNumber: number | null;
  modality: string | null;
  bodyPart: string | null;
  laterality: string | null;
  viewPosition: string | null;
  rows: number;
  columns: number;
  photometric: string;
  url: string;
  ai: ImageAi | null;
}

interface ReviewEntry {
  id: number;
  decision: string;
  comment: string | null;
  boxes: AiBox[];
  user: { username: string; displayName: string };
  at: number;
  supersededAt: number | null;
}

interface StudyDetail {
  study: WorklistItem;
  model: { name: string | null; version: string | null } | null;
  images: StudyImage[];
  reviews: ReviewEntry[];
}

const imageIdOf = (image: StudyImage) => `wadouri:${image.url}`;

/**
 * The viewer: one study at a time, cornerstone for the pixels (never altered: the AI overlay is a
 * separate canvas), keyboard first, decisions in the side panel.
 */
export class ViewerPage {
  readonly element: HTMLElement;
  private viewport: HTMLDivElement;
  private overlay: HTMLCanvasElement;
  private info = { tl: h('div', { class: 'info tl' }), tr: h('div', { class: 'info tr' }), bl: h('div', { class: 'info bl', id: 'info-wl' }), br: h('div', { class: 'info br ai-label' }) };
  private side: HTMLElement;
  private aiPanel = h('div', { class: 'panel ai-panel', id: 'ai-panel' });
  private thumbs = h('div', { class: 'panel images', id: 'image-list' });
  private reviewPanel = h('div', { class: 'panel review', id: 'review-panel' });
  private historyList = h('ol', { class: 'history', id: 'review-history' });
  private comment = h('textarea', { id: 'comment', rows: 3, maxLength: 2000, placeholder: 'Optional comment (C)', 'aria-label': 'Comment' });
  private toast = h('div', { class: 'toast', role: 'status', id: 'toast' });
  private help: HTMLElement;
  private drawHint = h('div', { class: 'draw-hint', hidden: true }, 'Draw a box around each fracture the AI missed (drag). Enter or M saves, Esc cancels.');
  private opacity = h('input', { type: 'range', min: 0, max: 100, value: 45, id: 'overlay-opacity', 'aria-label': 'Heat-map opacity' });
  private overlayToggle = h('input', { type: 'checkbox', id: 'overlay-toggle', checked: true });

  private detail: StudyDetail | undefined;
  private studyId: number | undefined;
  private index = 0;
  private overlayOn = true;
  private heat: HTMLCanvasElement | undefined;
  private stats = new Map<string, RangeStats>();
  private drawing = false;
  private busy = false;
  private openedAt = 0;
  private firstRender = false;
  private enabled = false;
  private live: LiveConnection | undefined;
  private onKey = (e: KeyboardEvent) => this.key(e);
  private onResize = () => { if (this.enabled) cornerstone.resize(this.viewport, false); };
  private visible = false;

  constructor(private readonly worklist: WorklistPage) {
    initCornerstone();
    this.viewport = h('div', { class: 'viewport', id: 'viewport', tabIndex: 0, 'aria-label': 'Image' });
    this.overlay = h('canvas', { class: 'ai-overlay', id: 'ai-overlay' });
    this.viewport.addEventListener('contextmenu', (e) => e.preventDefault());

    const tool = (label: string, title: string, action: () => void, id?: string) => {
      const b = h('button', { type: 'button', title, id }, label);
      b.addEventListener('click', () => { action(); this.viewport.focus(); });
      return b;
    };
    const presetSelect = h('select', { id: 'preset', 'aria-label': 'Window preset' },
      ...PRESETS.map((p) => h('option', { value: p.key }, `${p.key} ${p.name}`)));
    presetSelect.addEventListener('change', () => { this.applyPreset(presetSelect.value); this.viewport.focus(); });
    const toolbar = h('div', { class: 'toolbar' },
      tool('← Worklist', 'Back to the worklist (Esc)', () => this.back(), 'back'),
      tool('‹ Prev', 'Previous study (P)', () => void this.moveStudy(-1)),
      tool('Next ›', 'Next study (N)', () => void this.moveStudy(1), 'next-study'),
      h('span', { class: 'sep' }),
      presetSelect,
      tool('Zoom +', 'Zoom in (+)', () => this.zoom(1.25)), tool('Zoom −', 'Zoom out (−)', () => this.zoom(0.8)),
      tool('⟳', 'Rotate right (R)', () => this.rotate(90)), tool('⟲', 'Rotate left (L)', () => this.rotate(-90)),
      tool('⇋', 'Flip horizontal (H)', () => this.flip('hflip')), tool('⇵', 'Flip vertical (V)', () => this.flip('vflip')),
      tool('Invert', 'Invert (I)', () => this.invert()), tool('Fit', 'Fit to window (F)', () => this.fit()), tool('Reset', 'Reset (0)', () => this.reset()),
      h('span', { class: 'spacer' }),
      tool('? Help', 'Keyboard shortcuts (?)', () => this.toggleHelp(), 'help-button'));

    this.help = h('div', { class: 'help', id: 'help', hidden: true, role: 'dialog', 'aria-label': 'Keyboard shortcuts' },
      h('h2', {}, 'Keyboard shortcuts'),
      h('table', {}, h('tbody', {}, ...SHORTCUTS.map(([k, t]) => h('tr', {}, h('th', {}, k), h('td', {}, t))))),
      h('p', { class: 'ai-label' }, `${AI_LABEL}. The heat map and boxes are drawn over the image; the image's pixels are never changed.`),
      h('p', {}, 'Esc or ? closes this panel.'));

    this.viewport.append(this.overlay, this.info.tl, this.info.tr, this.info.bl, this.info.br, this.drawHint);
    this.side = h('aside', { class: 'side' }, h('div', { class: 'panel study-info', id: 'study-info' }), this.aiPanel, this.thumbs, this.reviewPanel);
    this.element = h('section', { class: 'viewer-page', id: 'viewer-page', hidden: true },
      this.side, h('div', { class: 'stage' }, toolbar, this.viewport), this.help, this.toast);

    this.overlayToggle.addEventListener('change', () => this.setOverlay(this.overlayToggle.checked));
    this.opacity.addEventListener('input', () => this.redrawOverlay());
    this.buildReviewPanel();
  }

  private ensureEnabled() {
    if (this.enabled) return;
    cornerstone.enable(this.viewport);
    const tools = cornerstoneTools;
    for (const T of [tools.WwwcTool, tools.PanTool, tools.ZoomTool, tools.ZoomMouseWheelTool, tools.RectangleRoiTool]) tools.addToolForElement(this.viewport, T);
    tools.setToolActiveForElement(this.viewport, 'Wwwc', { mouseButtonMask: 1 });
    tools.setToolActiveForElement(this.viewport, 'Pan', { mouseButtonMask: 4 });
    tools.setToolActiveForElement(this.viewport, 'Zoom', { mouseButtonMask: 2 });
    tools.setToolActiveForElement(this.viewport, 'ZoomMouseWheel', {});
    tools.setToolPassiveForElement(this.viewport, 'RectangleRoi');
    // Shift + left drag pans (for trackpads without a middle button).
    this.viewport.addEventListener('mousedown', (e) => {
      if (this.drawing) return;
      tools.setToolActiveForElement(this.viewport, e.shiftKey ? 'Pan' : 'Wwwc', { mouseButtonMask: e.shiftKey ? 5 : 1 });
    }, true);
    this.viewport.addEventListener(cornerstone.EVENTS.IMAGE_RENDERED, () => this.rendered());
    this.enabled = true;
  }

  async open(studyId: number) {
    this.visible = true;
    this.element.hidden = false;
    document.addEventListener('keydown', this.onKey);
    window.addEventListener('resize', this.onResize);
    this.live ??= subscribe((event) => { if (event.studyId === this.studyId && event.type !== 'review') void this.refreshAi(); });
    this.ensureEnabled();
    // The canvas may have been sized while the viewer was hidden (0×0): size it to the element again.
    cornerstone.resize(this.viewport, true);
    if (studyId === this.studyId && this.detail) return;
    this.studyId = studyId;
    this.detail = undefined;
    this.index = 0;
    this.openedAt = performance.now();
    this.firstRender = false;
    this.viewport.dataset.rendered = '';
    this.stopDrawing(false);
    this.comment.value = '';
    this.worklist.setSelected(studyId);
    try {
      const detail = await api<StudyDetail>(`/api/studies/${studyId}`);
      if (this.studyId !== studyId) return;
      this.detail = detail;
    } catch (err) {
      this.showToast(err instanceof ApiError && err.status === 404 ? 'No such study (or not one of your sites).' : `Could not open: ${(err as Error).message}`, true);
      return;
    }
    document.title = `fracture-triage — ${this.detail.study.accession ?? 'study'}`;
    this.renderStudyInfo();
    this.renderAiPanel();
    this.renderThumbs();
    this.renderHistory();
    await this.showImage(0);
    this.viewport.focus();
  }

  close() {
    if (!this.visible) return;
    this.visible = false;
    this.element.hidden = true;
    this.help.hidden = true;
    document.removeEventListener('keydown', this.onKey);
    window.removeEventListener('resize', this.onResize);
    this.live?.close();
    this.live = undefined;
    this.studyId = undefined;
    this.detail = undefined;
    this.viewport.dataset.rendered = '';
  }

  // --- images ---

  private get image(): StudyImage | undefined {
    return this.detail?.images[this.index];
  }

  private async showImage(index: number) {
    const detail = this.detail;
    if (!detail || !detail.images.length) {
      this.showToast('This study has no images.', true);
      return;
    }
    this.index = (index + detail.images.length) % detail.images.length;
    const image = detail.images[this.index];
    const imageId = imageIdOf(image);
    for (const [i, b] of [...this.thumbs.querySelectorAll('button')].entries()) b.classList.toggle('current', i === this.index);
    this.heat = undefined;
    try {
      const loaded = await cornerstone.loadAndCacheImage(imageId);
      if (this.image !== image) return;
      if (!this.stats.has(imageId)) this.stats.set(imageId, rangeStats(loaded.getPixelData(), loaded.invert === true || image.photometric === 'MONOCHROME1'));
      this.viewport.dataset.imageId = imageId;
      // Each image starts from its own defaults (its VOI, MONOCHROME1 inversion), never the last image's.
      cornerstone.displayImage(this.viewport, loaded, cornerstone.getDefaultViewportForImage(this.viewport, loaded));
      cornerstone.fitToWindow(this.viewport);
      (this.element.querySelector('#preset') as HTMLSelectElement).value = '1';
    } catch (err) {
      this.showToast(`Could not display the image: ${errorText(err)}`, true);
      return;
    }
    if (image.ai?.heatmapUrl) {
      loadHeatmap(image.ai.heatmapUrl).then((heat) => {
        if (this.image === image) {
          this.heat = heat;
          this.redrawOverlay();
        }
      });
    }
    // Prefetch the study's other images so the next one is one key away.
    for (const other of detail.images) if (other !== image) cornerstone.loadAndCacheImage(imageIdOf(other)).catch(() => undefined);
  }

  private rendered() {
    const vp = cornerstone.getViewport(this.viewport);
    const drawn: string | undefined = cornerstone.getEnabledElement(this.viewport).image?.imageId;
    if (!vp || !drawn) return;
    // The current image of the open study is on the canvas (tests and bench:viewer wait on this).
    // A late render of the previous study's image (resize, W/L) must not count: it is ignored.
    if (!this.image || drawn !== imageIdOf(this.image)) return;
    this.viewport.dataset.rendered = drawn;
    if (!this.firstRender) {
      this.firstRender = true;
      this.viewport.dataset.firstRenderMs = String(Math.round(performance.now() - this.openedAt));
    }
    this.viewport.dataset.ww = String(Math.round(vp.voi.windowWidth));
    this.viewport.dataset.wc = String(Math.round(vp.voi.windowCenter));
    this.renderInfo(vp);
    this.redrawOverlay();
  }

  private redrawOverlay() {
    if (!this.enabled || !this.image) return;
    const ai = this.image.ai;
    drawOverlay(this.viewport, this.overlay, {
      visible: this.overlayOn && ai?.status === 'done',
      opacity: Number(this.opacity.value) / 100,
      heat: this.heat,
      boxes: ai?.boxes ?? [],
    });
    this.viewport.dataset.overlay = this.overlayOn ? 'on' : 'off';
  }

  private setOverlay(on: boolean) {
    this.overlayOn = on;
    this.overlayToggle.checked = on;
    this.redrawOverlay();
    this.renderInfo(cornerstone.getViewport(this.viewport));
  }

  // --- viewport operations ---

  private update(change: (vp: any) => void) {
    const vp = cornerstone.getViewport(this.viewport);
    if (!vp) return;
    change(vp);
    cornerstone.setViewport(this.viewport, vp);
  }

  private zoom(factor: number) { this.update((vp) => { vp.scale = Math.min(40, Math.max(0.05, vp.scale * factor)); }); }
  private rotate(deg: number) { this.update((vp) => { vp.rotation = ((vp.rotation + deg) % 360 + 360) % 360; }); }
  private flip(which: 'hflip' | 'vflip') { this.update((vp) => { vp[which] = !vp[which]; }); }
  private invert() { this.update((vp) => { vp.invert = !vp.invert; }); }
  private fit() { cornerstone.fitToWindow(this.viewport); }
  private reset() { cornerstone.reset(this.viewport); cornerstone.fitToWindow(this.viewport); }

  private applyPreset(key: string) {
    const preset = PRESETS.find((p) => p.key === key);
    const imageId = this.viewport.dataset.imageId;
    if (!preset || !imageId) return;
    const select = this.element.querySelector('#preset') as HTMLSelectElement;
    select.value = key;
    const stats = this.stats.get(imageId);
    const result = stats ? preset.compute(stats) : 'default';
    if (result === 'default') {
      const enabled = cornerstone.getEnabledElement(this.viewport);
      const def = cornerstone.getDefaultViewportForImage(this.viewport, enabled.image);
      this.update((vp) => { vp.voi = { ...def.voi }; });
    } else {
      this.update((vp) => { vp.voi = { windowWidth: result.windowWidth, windowCenter: result.windowCenter }; });
    }
  }

  // --- panels ---

  private renderStudyInfo() {
    const panel = this.side.querySelector('#study-info')!;
    clear(panel);
    const s = this.detail!.study;
    panel.append(
      h('h2', { class: 'patient-name' }, personName(s.patient.name)),
      h('dl', {},
        h('dt', {}, 'Patient ID'), h('dd', {}, s.patient.id ?? '—'),
        h('dt', {}, 'Age / sex'), h('dd', {}, [s.patient.age, s.patient.sex].filter(Boolean).join(' / ') || '—'),
        h('dt', {}, 'Accession'), h('dd', {}, s.accession ?? '—'),
        h('dt', {}, 'Study'), h('dd', {}, `${dicomDate(s.studyDate)} ${dicomTime(s.studyTime)}`),
        h('dt', {}, 'Received'), h('dd', {}, dateTime(s.receivedAt)),
        h('dt', {}, 'Body part'), h('dd', {}, s.bodyPart ?? '—'),
        h('dt', {}, 'Priority'), h('dd', {}, priorityText(s.priority)),
        s.description ? h('dt', {}, 'Description') : null, s.description ? h('dd', {}, s.description) : null));
  }

  private renderAiPanel() {
    clear(this.aiPanel);
    const d = this.detail!;
    const state = d.study.ai.state;
    const image = this.image ?? d.images[0];
    const model = d.model ? `${d.model.name ?? 'model'} ${d.model.version ?? ''}`.trim() : '—';
    const toggle = h('label', { class: 'toggle' }, this.overlayToggle, ' Overlay (O)');
    this.aiPanel.append(
      h('div', { class: 'ai-label strong', id: 'ai-label' }, AI_LABEL),
      h('div', { class: `flag big flag-${state}`, id: 'ai-state' }, AI_STATE_TEXT[state] ?? state),
      h('dl', {},
        h('dt', {}, 'Study score'), h('dd', { id: 'ai-score' }, score(d.study.ai.score)),
        h('dt', {}, 'This image'), h('dd', {}, image?.ai ? (image.ai.status === 'done' ? `${score(image.ai.probability)} (${image.ai.flag ?? 'none'})` : image.ai.status.replace('_', ' ')) : 'pending'),
        h('dt', {}, 'Model'), h('dd', { id: 'ai-model' }, model)),
      toggle,
      h('label', { class: 'opacity' }, 'Heat-map opacity', this.opacity),
      h('p', { class: 'legend' }, h('span', { class: 'box-solid' }, '▭ solid'), ' definite · ', h('span', { class: 'box-dotted' }, '┄ dotted'), ' doubt'),
      image?.ai?.reason ? h('p', { class: 'muted' }, `No score: ${image.ai.reason}`) : '');
  }

  private renderThumbs() {
    clear(this.thumbs);
    const images = this.detail!.images;
    this.thumbs.append(h('h3', {}, `Images (${images.length})`, images.length > 1 ? h('small', {}, ' → / ← to switch') : null));
    images.forEach((img, i) => {
      const b = h('button', { type: 'button', class: i === this.index ? 'current' : '', title: img.sopInstanceUid },
        `${i + 1}. ${[img.bodyPart, img.viewPosition, img.laterality].filter(Boolean).join(' ') || img.modality || 'image'}`,
        img.ai?.flag && img.ai.flag !== 'none' ? h('span', { class: `flag flag-${img.ai.flag}` }, ` ${img.ai.flag}`) : null);
      b.addEventListener('click', () => void this.showImage(i).then(() => { this.renderAiPanel(); this.viewport.focus(); }));
      this.thumbs.append(b);
    });
  }

  private buildReviewPanel() {
    const button = (decision: string, key: string) => {
      const b = h('button', { type: 'button', class: `decide decide-${decision}`, id: `decide-${decision}`, title: `${DECISION_TEXT[decision]} (${key})` },
        h('kbd', {}, key), ` ${DECISION_TEXT[decision]}`);
      b.addEventListener('click', () => {
        // Focus back on the image, so Space/Enter never re-press a decision button on the next study.
        this.viewport.focus();
        if (decision === 'missed') this.startOrFinishMissed();
        else void this.decide(decision);
      });
      if (currentUser()?.role !== 'radiologist') {
        b.disabled = true;
        b.title = 'Decisions are recorded by radiologists';
      }
      return b;
    };
    this.reviewPanel.append(
      h('h3', {}, 'Your decision'),
      button('agree', 'A'), button('disagree', 'D'), button('missed', 'M'), button('uncertain', 'U'),
      this.comment,
      h('h3', {}, 'History'),
      this.historyList);
  }

  private renderHistory() {
    clear(this.historyList);
    const reviews = this.detail?.reviews ?? [];
    if (!reviews.length) this.historyList.append(h('li', { class: 'muted' }, 'No decision yet.'));
    for (const r of reviews) {
      this.historyList.append(h('li', { class: r.supersededAt ? 'superseded' : 'current' },
        h('strong', {}, DECISION_TEXT[r.decision] ?? r.decision),
        ` — ${r.user.displayName}, ${dateTime(r.at)}`,
        r.boxes.length ? ` · ${r.boxes.length} box${r.boxes.length > 1 ? 'es' : ''}` : '',
        r.supersededAt ? ' (changed)' : '',
        r.comment ? h('div', { class: 'comment' }, r.comment) : null));
    }
  }

  private renderInfo(vp: any) {
    const d = this.detail;
    const image = this.image;
    if (!d || !image || !vp) return;
    const s = d.study;
    const set = (el: HTMLElement, lines: string[]) => { clear(el); for (const l of lines) el.append(h('div', {}, l)); };
    set(this.info.tl, [personName(s.patient.name), `${s.patient.id ?? ''}  ${[s.patient.age, s.patient.sex].filter(Boolean).join(' ')}`, `Acc ${s.accession ?? '—'}  ${dicomDate(s.studyDate)}`]);
    set(this.info.tr, [[image.bodyPart, image.viewPosition].filter(Boolean).join(' ') || (image.modality ?? ''), `Laterality ${image.laterality ?? '—'}`, `View ${image.viewPosition ?? '—'}`, `Image ${this.index + 1}/${d.images.length}`]);
    const transform = [vp.rotation ? `rot ${vp.rotation}°` : '', vp.hflip ? 'flip H' : '', vp.vflip ? 'flip V' : '', vp.invert ? 'inverted' : ''].filter(Boolean).join(' · ');
    set(this.info.bl, [`W ${Math.round(vp.voi.windowWidth)}  L ${Math.round(vp.voi.windowCenter)}`, `Zoom ${Math.round(vp.scale * 100)}%`, transform]);
    const ai = image.ai;
    set(this.info.br, [
      AI_LABEL,
      ai?.status === 'done' ? `score ${score(ai.probability)} · ${ai.flag ?? 'none'} · overlay ${this.overlayOn ? 'on' : 'off'} (O)` : `AI ${ai ? ai.status.replace('_', ' ') : 'pending'}`,
      ai?.model.version ? `${ai.model.name ?? 'model'} ${ai.model.version}` : '',
    ].filter(Boolean));
  }

  private async refreshAi() {
    const id = this.studyId;
    if (!id) return;
    try {
      const fresh = await api<{ study: WorklistItem; model: StudyDetail['model']; images: { id: number; ai: ImageAi | null }[] }>(`/api/studies/${id}/ai`);
      if (this.studyId !== id || !this.detail) return;
      this.detail.study = { ...this.detail.study, ai: fresh.study.ai, reviewState: fresh.study.reviewState };
      this.detail.model = fresh.model;
      for (const img of this.detail.images) img.ai = fresh.images.find((f) => f.id === img.id)?.ai ?? img.ai;
      const image = this.image;
      if (image?.ai?.heatmapUrl && !this.heat) this.heat = await loadHeatmap(image.ai.heatmapUrl);
      this.renderAiPanel();
      this.renderThumbs();
      this.redrawOverlay();
      this.renderInfo(cornerstone.getViewport(this.viewport));
    } catch { /* next event retries */ }
  }

  // --- decisions ---

  private startOrFinishMissed() {
    if (this.drawing) void this.decide('missed');
    else this.startDrawing();
  }

  private startDrawing() {
    this.drawing = true;
    this.drawHint.hidden = false;
    this.viewport.classList.add('drawing');
    cornerstoneTools.setToolActiveForElement(this.viewport, 'RectangleRoi', { mouseButtonMask: 1 });
    this.showToast('Draw the missed fracture(s), then Enter or M to save.');
  }

  private stopDrawing(clearBoxes: boolean) {
    if (!this.enabled) return;
    this.drawing = false;
    this.drawHint.hidden = true;
    this.viewport.classList.remove('drawing');
    cornerstoneTools.setToolPassiveForElement(this.viewport, 'RectangleRoi');
    cornerstoneTools.setToolActiveForElement(this.viewport, 'Wwwc', { mouseButtonMask: 1 });
    if (clearBoxes) {
      cornerstoneTools.globalImageIdSpecificToolStateManager.restoreToolState({});
      cornerstone.updateImage(this.viewport);
    }
  }

  /** Boxes the radiologist drew (RectangleRoi), per image, in original pixel coordinates. */
  private drawnBoxes() {
    const state = cornerstoneTools.globalImageIdSpecificToolStateManager.saveToolState() as Record<string, { RectangleRoi?: { data: any[] } }>;
    const boxes: { x: number; y: number; width: number; height: number; instanceId: number }[] = [];
    for (const image of this.detail?.images ?? []) {
      for (const item of state[imageIdOf(image)]?.RectangleRoi?.data ?? []) {
        const { start, end } = item.handles;
        const x = Math.max(0, Math.min(start.x, end.x));
        const y = Math.max(0, Math.min(start.y, end.y));
        const width = Math.abs(end.x - start.x);
        const height = Math.abs(end.y - start.y);
        if (width >= 1 && height >= 1) boxes.push({ x, y, width, height, instanceId: image.id });
      }
    }
    return boxes;
  }

  private async decide(decision: string) {
    const studyId = this.studyId;
    if (!studyId || this.busy) return;
    if (currentUser()?.role !== 'radiologist') {
      this.showToast('Only radiologists record decisions.', true);
      return;
    }
    this.busy = true;
    try {
      const boxes = decision === 'missed' ? this.drawnBoxes() : undefined;
      await api(`/api/studies/${studyId}/review`, { method: 'POST', body: { decision, comment: this.comment.value.trim() || null, ...(boxes ? { boxes } : {}) } });
      this.stopDrawing(true);
      this.showToast(`Saved: ${DECISION_TEXT[decision]}`);
      void this.worklist.load({ keepScroll: true });
      const next = await this.worklist.nextUnreviewed(studyId);
      if (next !== undefined) location.hash = `#/study/${next}`;
      else {
        this.showToast('Saved. No more unreviewed studies.');
        this.back();
      }
    } catch (err) {
      this.showToast(`Not saved: ${(err as Error).message}`, true);
    } finally {
      this.busy = false;
    }
  }

  private async moveStudy(direction: 1 | -1) {
    if (!this.studyId) return;
    const id = await this.worklist.neighbour(this.studyId, direction).catch(() => undefined);
    if (id !== undefined) location.hash = `#/study/${id}`;
    else this.showToast(direction > 0 ? 'This is the last study.' : 'This is the first study.');
  }

  private back() {
    location.hash = '#/';
  }

  private toggleHelp(force?: boolean) {
    this.help.hidden = force === undefined ? !this.help.hidden : !force;
  }

  private toastTimer: number | undefined;
  private showToast(message: string, error = false) {
    this.toast.textContent = message;
    this.toast.classList.toggle('error', error);
    this.toast.classList.add('show');
    clearTimeout(this.toastTimer);
    this.toastTimer = window.setTimeout(() => this.toast.classList.remove('show'), 2500);
  }

  private key(e: KeyboardEvent) {
    if (!this.visible || e.ctrlKey || e.metaKey || e.altKey) return;
    const target = e.target as HTMLElement;
    if (target === this.comment) {
      if (e.key === 'Escape') this.viewport.focus();
      return;
    }
    if (target.closest('input[type=text], input[type=search], input[type=range], textarea, select')) return;
    if (target.closest('button') && (e.key === 'Enter' || e.key === ' ')) return; // the button's own action
    const key = e.key;
    const handled = (() => {
      switch (key) {
        case '?': this.toggleHelp(); return true;
        case 'Escape':
          if (!this.help.hidden) this.toggleHelp(false);
          else if (this.drawing) this.stopDrawing(true);
          else this.back();
          return true;
        case 'n': case 'N': case 'PageDown': void this.moveStudy(1); return true;
        case 'p': case 'P': case 'PageUp': void this.moveStudy(-1); return true;
        case 'ArrowRight': case ' ': void this.showImage(this.index + 1).then(() => this.renderAiPanel()); return true;
        case 'ArrowLeft': case 'Backspace': void this.showImage(this.index - 1).then(() => this.renderAiPanel()); return true;
        case 'o': case 'O': this.setOverlay(!this.overlayOn); return true;
        case 'a': case 'A': void this.decide('agree'); return true;
        case 'd': case 'D': void this.decide('disagree'); return true;
        case 'u': case 'U': void this.decide('uncertain'); return true;
        case 'm': case 'M': this.startOrFinishMissed(); return true;
        case 'Enter': if (this.drawing) { void this.decide('missed'); return true; } return false;
        case 'c': case 'C': this.comment.focus(); return true;
        case '+': case '=': this.zoom(1.25); return true;
        case '-': case '_': this.zoom(0.8); return true;
        case 'r': case 'R': this.rotate(90); return true;
        case 'l': case 'L': this.rotate(-90); return true;
        case 'h': case 'H': this.flip('hflip'); return true;
        case 'v': case 'V': this.flip('vflip'); return true;
        case 'i': case 'I': this.invert(); return true;
        case 'f': case 'F': this.fit(); return true;
        case '0': this.reset(); return true;
        default:
          if (PRESETS.some((p) => p.key === key)) { this.applyPreset(key); return true; }
          return false;
      }
    })();
    if (handled) e.preventDefault();
  }
}

function errorText(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (err && typeof err === 'object' && 'error' in err) return String((err as { error: unknown }).error);
  return String(err);
}
