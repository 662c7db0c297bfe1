import type { Decision, DecisionRequest, Measurement, ReviewList, StudyAi, StudyDetail, StudyImage } from '../../../services/contract/index.js';
import { api, ApiError } from '../lib/api.js';
import { currentUser } from '../lib/auth.js';
import { clear, h } from '../lib/dom.js';
import { subscribe, type LiveConnection, type LiveEvent } from '../lib/events.js';
import { AI_LABEL, DECISION_TEXT, dicomDate, personName, studyLabel } from '../format.js';
import type { WorklistPage } from '../worklist.js';
import { bindingFor, DECISION_COMMANDS, helpRows, type Command } from './keymap.js';
import { defaultLayout, hang, LAYOUTS, layoutById, type Layout } from './layout.js';
import { drawOverlays, loadHeatmap } from './overlays.js';
import { DecisionPanel, imageAiText, renderAiPanel, renderStudyInfo, SeriesStrip, type DecisionGate } from './panels.js';
import { PRESETS } from './presets.js';
import { imageIdOf, UNDISPLAYABLE, Viewport, type ToolMode, type ViewState } from './viewport.js';

/** Whether the server offers undo, read from its OpenAPI document (absent → learnt from the answer). */
let undoOffered: Promise<boolean> | undefined;
function serverOffersUndo(): Promise<boolean> {
  undoOffered ??= api<{ paths?: Record<string, Record<string, unknown>> }>('/openapi.json')
    .then((doc) => !!doc.paths?.['/api/studies/{id}/review']?.delete)
    .catch(() => true);
  return undoOffered;
}

/** One viewport of the layout, with its corner texts. */
interface Cell {
  viewport: Viewport;
  element: HTMLElement;
  info: { tl: HTMLElement; tr: HTMLElement; bl: HTMLElement; br: HTMLElement };
}

const TOOL_OF: Partial<Record<Command, ToolMode>> = { toolWwwc: 'wwwc', toolPan: 'pan', toolLength: 'length', toolAngle: 'angle' };

/**
 * The viewer page: one study at a time in a layout of viewports (1 × 1 or 1 × 2, hung frontal left
 * and lateral right), overlays drawn over the images, keyboard first (keymap.ts), decisions in the
 * side panel — only on images that were displayed, and reversible.
 */
export class ViewerPage {
  readonly element: HTMLElement;
  private cells: Cell[];
  private grid = h('div', { class: 'grid layout-1x1', id: 'viewport-grid' });
  private side: HTMLElement;
  private studyInfo = h('div', { class: 'panel study-info', id: 'study-info' });
  private aiPanel = h('div', { class: 'panel ai-panel', id: 'ai-panel' });
  private strip = new SeriesStrip((index) => void this.showInCell(this.active, index));
  private decisions: DecisionPanel;
  private toast = h('div', { class: 'toast', role: 'status', id: 'toast' });
  private help: HTMLElement;
  private drawHint = h('div', { class: 'draw-hint', hidden: true }, 'Draw a box around each fracture the AI missed (drag). Enter or M saves, Esc cancels.');
  private opacity = h('input', { type: 'range', min: 0, max: 100, value: 45, id: 'overlay-opacity', 'aria-label': 'Heat-map opacity' });
  private overlayToggle = h('input', { type: 'checkbox', id: 'overlay-toggle', checked: true });
  private heatAllToggle = h('input', { type: 'checkbox', id: 'heat-all-toggle' });
  private syncToggle = h('input', { type: 'checkbox', id: 'sync-wl' });
  private layoutSelect = h('select', { id: 'layout', 'aria-label': 'Layout' }, ...LAYOUTS.map((l) => h('option', { value: l.id }, l.label)));
  private presetSelect = h('select', { id: 'preset', 'aria-label': 'Window preset' }, ...PRESETS.map((p) => h('option', { value: p.key }, `${p.key} ${p.name}`)));
  private toolButtons = new Map<ToolMode, HTMLButtonElement>();

  private detail: StudyDetail | undefined;
  private studyId: number | undefined;
  private layout: Layout = layoutById('1x1');
  /** Image index shown in each cell of the layout. */
  private shown: number[] = [];
  private active = 0;
  private tool: ToolMode = 'wwwc';
  private heat = new Map<number, HTMLCanvasElement | undefined>();
  private drawing = false;
  private busy = false;
  private openedAt = 0;
  private firstRender = false;
  private undoOffered = false;
  /** The studies in the order the worklist listed them when the viewer opened (P/N walk this). */
  private order: { id: number; reviewed: boolean }[] = [];
  private decidedHere = new Set<number>();
  private lastDecision: { studyId: number; label: string } | undefined;
  private live: LiveConnection | undefined;
  private onKey = (e: KeyboardEvent) => this.key(e);
  private visible = false;

  constructor(private readonly worklist: WorklistPage) {
    this.cells = ['viewport', 'viewport-2'].map((id, i) => this.makeCell(id, i));
    this.grid.append(...this.cells.map((c) => c.element));
    this.decisions = new DecisionPanel(currentUser()?.role === 'radiologist', (d) => this.command(d), () => void this.undo());

    const button = (label: string, title: string, action: () => void, id?: string) => {
      const b = h('button', { type: 'button', title, id }, label);
      b.addEventListener('click', () => { action(); this.focusActive(); });
      return b;
    };
    const toolButton = (mode: ToolMode, label: string, title: string) => {
      const b = button(label, title, () => this.setTool(mode), `tool-${mode}`);
      b.classList.add('tool');
      this.toolButtons.set(mode, b);
      return b;
    };
    this.presetSelect.addEventListener('change', () => { this.applyPreset(this.presetSelect.value); this.focusActive(); });
    this.layoutSelect.addEventListener('change', () => { void this.setLayout(layoutById(this.layoutSelect.value as Layout['id'])); this.focusActive(); });
    const toolbar = h('div', { class: 'toolbar' },
      button('← Worklist', 'Back to the worklist (Esc)', () => this.back(), 'back'),
      button('‹ Prev', 'Previous study (P)', () => this.command('prevStudy'), 'prev-study'),
      button('Next ›', 'Next study (N)', () => this.command('nextStudy'), 'next-study'),
      h('span', { class: 'sep' }),
      this.layoutSelect,
      h('label', { class: 'toggle', title: 'Synchronise window/level (S)' }, this.syncToggle, ' Sync W/L'),
      h('span', { class: 'sep' }),
      toolButton('wwwc', 'W/L', 'Window / level with the left button (W)'),
      toolButton('pan', 'Pan', 'Pan with the left button, for trackpads (G)'),
      toolButton('length', 'Length', 'Measure a length (T)'),
      toolButton('angle', 'Angle', 'Measure an angle (E)'),
      h('span', { class: 'sep' }),
      this.presetSelect,
      button('+', 'Zoom in (+)', () => this.command('zoomIn')), button('−', 'Zoom out (−)', () => this.command('zoomOut')),
      button('⟳', 'Rotate right (R)', () => this.command('rotateRight')), button('⟲', 'Rotate left (L)', () => this.command('rotateLeft')),
      button('⇋', 'Flip horizontal (H)', () => this.command('flipH')), button('⇵', 'Flip vertical (V)', () => this.command('flipV')),
      button('Invert', 'Invert (I)', () => this.command('invert')), button('Fit', 'Fit to window (F)', () => this.command('fit')), button('Reset', 'Reset (0)', () => this.command('reset')),
      h('span', { class: 'spacer' }),
      button('? Help', 'Keyboard shortcuts (?)', () => this.toggleHelp(), 'help-button'));

    this.help = h('div', { class: 'help', id: 'help', hidden: true, role: 'dialog', 'aria-label': 'Keyboard shortcuts' },
      h('h2', {}, 'Keyboard shortcuts'),
      h('dl', { class: 'keys' }, ...helpRows().map(([k, t]) => h('div', { class: 'key-row' }, h('dt', {}, k), h('dd', {}, t)))),
      h('p', { class: 'ai-label' }, `${AI_LABEL}. The heat map and boxes are drawn over the image; the image's pixels are never changed.`),
      h('p', {}, 'Decision keys do nothing while this panel is open. Esc or ? closes it.'));

    this.side = h('aside', { class: 'side' }, this.studyInfo, this.aiPanel, this.decisions.element);
    this.element = h('section', { class: 'viewer-page', id: 'viewer-page', hidden: true },
      this.side, h('div', { class: 'stage' }, toolbar, this.grid, this.strip.element), this.help, this.toast);

    this.overlayToggle.addEventListener('change', () => this.redrawAll());
    this.heatAllToggle.addEventListener('change', () => this.redrawAll());
    this.opacity.addEventListener('input', () => this.redrawAll());
    this.syncToggle.addEventListener('change', () => this.syncFrom(this.active));
    this.setTool('wwwc');
  }

  private makeCell(id: string, index: number): Cell {
    const viewport = new Viewport(id);
    const info = {
      tl: h('div', { class: 'info tl' }), tr: h('div', { class: 'info tr' }),
      bl: h('div', { class: 'info bl', id: index === 0 ? 'info-wl' : `info-wl-${index + 1}` }), br: h('div', { class: 'info br ai-label' }),
    };
    viewport.element.append(info.tl, info.tr, info.bl, info.br);
    if (index === 0) viewport.element.append(this.drawHint);
    const element = h('div', { class: 'cell', dataset: { cell: String(index) } }, viewport.element);
    const cell: Cell = { viewport, element, info };
    viewport.onRendered = (view) => this.rendered(index, view);
    viewport.onAnnotation = () => this.renderMeasurements();
    viewport.element.addEventListener('mousedown', () => this.activate(index), true);
    viewport.element.addEventListener('focus', () => this.activate(index));
    return cell;
  }

  private visibleCells() {
    return this.cells.slice(0, this.layout.columns);
  }

  private focusActive() {
    this.cells[this.active].viewport.element.focus();
  }

  private activate(index: number) {
    if (this.active === index) return;
    this.active = index;
    this.cells.forEach((c, i) => c.element.classList.toggle('active', i === index && this.layout.columns > 1));
    this.strip.mark(this.shown, this.active);
    if (this.detail) renderAiPanel(this.aiPanel, this.detail, this.imageIn(index), this.aiControls());
  }

  async open(studyId: number) {
    this.visible = true;
    this.element.hidden = false;
    document.addEventListener('keydown', this.onKey);
    this.live ??= subscribe((event) => this.onLiveEvent(event));
    for (const c of this.visibleCells()) c.viewport.enable();
    if (studyId === this.studyId && this.detail) return;
    if (!this.order.some((s) => s.id === studyId)) {
      this.order = this.worklist.items.map((i) => ({ id: i.id, reviewed: i.reviewState === 'reviewed' }));
      this.decidedHere.clear();
    }
    this.studyId = studyId;
    this.detail = undefined;
    this.openedAt = performance.now();
    this.firstRender = false;
    this.stopDrawing(false);
    this.decisions.comment.value = '';
    this.worklist.setSelected(studyId);
    this.updateGate();
    let detail: StudyDetail;
    try {
      [detail, this.undoOffered] = await Promise.all([api<StudyDetail>(`/api/studies/${studyId}`), serverOffersUndo()]);
    } catch (err) {
      this.showToast(err instanceof ApiError && err.status === 404 ? 'No such study (or not one of your sites).' : `Could not open the study: ${(err as Error).message}`, { error: true });
      return;
    }
    if (this.studyId !== studyId) return;
    this.detail = detail;
    this.heat.clear();
    this.worklist.setBaseTitle(`fracture-triage — ${detail.study.accession ?? 'study'}`);
    renderStudyInfo(this.studyInfo, detail.study);
    this.decisions.renderHistory(detail.reviews, this.undoOffered);
    if (!detail.images.length) {
      this.showToast('This study has no images.', { error: true });
      return;
    }
    this.strip.render(detail.images, (image, canvas) => {
      // Thumbnails after the first image is up, so they never delay it.
      void this.firstPixels.then(() => this.cells[0].viewport.thumbnail(imageIdOf(image.url), canvas));
    });
    this.active = 0;
    await this.setLayout(defaultLayout(detail.images), true);
    this.focusActive();
  }

  private firstPixels: Promise<void> = Promise.resolve();

  close() {
    if (!this.visible) return;
    this.visible = false;
    this.element.hidden = true;
    this.help.hidden = true;
    document.removeEventListener('keydown', this.onKey);
    this.live?.close();
    this.live = undefined;
    this.studyId = undefined;
    this.detail = undefined;
    this.order = [];
    for (const c of this.cells) c.viewport.clear();
    this.worklist.setBaseTitle(undefined);
  }

  // --- layout and images ---

  private async setLayout(layout: Layout, rehang = false) {
    const changed = layout.id !== this.layout.id;
    this.layout = layout;
    this.layoutSelect.value = layout.id;
    this.grid.className = `grid layout-${layout.id}`;
    if (this.active >= layout.columns) this.active = 0;
    this.cells.forEach((c, i) => {
      c.element.hidden = i >= layout.columns;
      c.element.classList.toggle('active', i === this.active && layout.columns > 1);
    });
    const images = this.detail?.images ?? [];
    if (rehang || changed) this.shown = hang(images, layout);
    for (const [i, c] of this.cells.entries()) if (i >= this.shown.length || i >= layout.columns) c.viewport.clear();
    for (const c of this.visibleCells()) c.viewport.enable();
    const shown = Promise.all(this.shown.map((index, cell) => this.showInCell(cell, index)));
    this.firstPixels = shown.then(() => undefined);
    await shown;
    // Prefetch the study's other images so the next one is one key away.
    for (const [i, image] of images.entries()) if (!this.shown.includes(i)) this.cells[0].viewport.prefetch(imageIdOf(image.url));
  }

  private imageIn(cell: number): StudyImage | undefined {
    const index = this.shown[cell];
    return index === undefined ? undefined : this.detail?.images[index];
  }

  private async showInCell(cell: number, index: number) {
    const detail = this.detail;
    if (!detail?.images.length || cell >= this.layout.columns) return;
    const count = detail.images.length;
    index = ((index % count) + count) % count;
    this.shown[cell] = index;
    const image = detail.images[index];
    this.strip.mark(this.shown, this.active);
    if (cell === this.active) renderAiPanel(this.aiPanel, detail, image, this.aiControls());
    const viewport = this.cells[cell].viewport;
    const shown = viewport.show(imageIdOf(image.url));
    this.updateGate();
    const outcome = await shown;
    if (outcome === 'stale' || this.detail !== detail) return;
    this.updateGate();
    this.renderMeasurements();
    if (outcome === 'failed') {
      this.renderInfo(cell);
      this.showToast(UNDISPLAYABLE, { error: true });
      return;
    }
    if (cell === 0) this.presetSelect.value = '1';
    if (image.ai?.heatmapUrl && !this.heat.has(image.id)) {
      const heat = await loadHeatmap(image.ai.heatmapUrl);
      this.heat.set(image.id, heat);
      this.redrawAll();
    }
  }

  private rendered(cell: number, view: ViewState) {
    const image = this.imageIn(cell);
    if (!image) return;
    if (cell === 0 && !this.firstRender) {
      this.firstRender = true;
      this.cells[0].viewport.element.dataset.firstRenderMs = String(Math.round(performance.now() - this.openedAt));
    }
    this.renderInfo(cell, view);
    this.redraw(cell);
    this.updateGate();
    if (this.syncToggle.checked) this.syncFrom(cell);
  }

  /** With sync on, the other viewports take this one's window/level (only when different: no loop). */
  private syncFrom(cell: number) {
    if (!this.syncToggle.checked) return;
    const voi = this.cells[cell].viewport.view()?.voi;
    if (!voi) return;
    for (const [i, c] of this.visibleCells().entries()) {
      const other = c.viewport.view()?.voi;
      if (i !== cell && other && (Math.round(other.windowWidth) !== Math.round(voi.windowWidth) || Math.round(other.windowCenter) !== Math.round(voi.windowCenter))) c.viewport.setVoi(voi);
    }
  }

  private aiControls(): Node[] {
    return [
      h('label', { class: 'toggle' }, this.overlayToggle, ' AI overlay (O)'),
      h('label', { class: 'toggle', title: 'The heat map is drawn on flagged images only unless this is on' }, this.heatAllToggle, ' Heat map on every image'),
      h('label', { class: 'opacity' }, 'Heat-map opacity', this.opacity),
    ];
  }

  private redrawAll() {
    for (let i = 0; i < this.layout.columns; i++) this.redraw(i);
  }

  private redraw(cell: number) {
    const { viewport } = this.cells[cell];
    const image = this.imageIn(cell);
    const geometry = viewport.geometry();
    const current = this.detail?.reviews.find((r) => !r.supersededAt && !r.undoneAt);
    drawOverlays(viewport.overlay, image && geometry ? {
      image, geometry,
      aiOn: this.overlayToggle.checked,
      heatOnAll: this.heatAllToggle.checked,
      opacity: Number(this.opacity.value) / 100,
      heat: this.heat.get(image.id),
      savedBoxes: (current?.boxes ?? []).filter((b) => b.instanceId === image.id),
      savedMeasurements: (current?.measurements ?? []).filter((m) => m.imageId === image.id),
      patientOrientation: viewport.attribute('x00200020'),
    } : undefined);
    viewport.element.dataset.overlay = this.overlayToggle.checked ? 'on' : 'off';
  }

  private renderInfo(cell: number, view = this.cells[cell].viewport.view()) {
    const d = this.detail;
    const image = this.imageIn(cell);
    const { info } = this.cells[cell];
    if (!d || !image) return;
    const s = d.study;
    const set = (el: HTMLElement, lines: string[]) => { clear(el); for (const l of lines) el.append(h('div', {}, l)); };
    set(info.tl, cell === 0 ? [personName(s.patient.name), `${s.patient.id ?? ''}  ${[s.patient.age, s.patient.sex].filter(Boolean).join(' ')}`, `Acc ${s.accession ?? '—'}  ${dicomDate(s.studyDate)}`] : []);
    set(info.tr, [`Series ${image.seriesNumber ?? '—'}${image.seriesDescription ? ` · ${image.seriesDescription}` : ''}`,
      [image.bodyPart, image.viewPosition, image.laterality].filter(Boolean).join(' ') || (image.modality ?? ''), `Image ${this.shown[cell] + 1}/${d.images.length}`]);
    if (view) {
      const transform = [view.rotation ? `rot ${view.rotation}°` : '', view.hflip ? 'flip H' : '', view.vflip ? 'flip V' : '', view.invert ? 'inverted' : ''].filter(Boolean).join(' · ');
      set(info.bl, [`W ${Math.round(view.voi.windowWidth)}  L ${Math.round(view.voi.windowCenter)}`, `Zoom ${Math.round(view.scale * 100)}%`, transform]);
    } else set(info.bl, []);
    set(info.br, [AI_LABEL, `AI: ${imageAiText(image)} · overlay ${this.overlayToggle.checked ? 'on' : 'off'} (O)`,
      image.ai?.model.version ? `${image.ai.model.name ?? 'model'} ${image.ai.model.version}` : ''].filter(Boolean));
  }

  private renderMeasurements() {
    const items = this.visibleCells().flatMap((c, i) => {
      const image = this.imageIn(i);
      return image ? Viewport.measurementsOn(imageIdOf(image.url)).map((m) => ({ ...m, label: `image ${this.shown[i] + 1}` })) : [];
    });
    this.decisions.renderMeasurements(items);
  }

  private onLiveEvent(event: LiveEvent) {
    if (event.type === 'review') {
      // A decision recorded or undone (here, in another tab, by a colleague): P/N and "next to read" follow it.
      const entry = this.order.find((s) => s.id === event.studyId);
      if (entry) entry.reviewed = event.decision !== null;
      if (event.decision === null) this.decidedHere.delete(event.studyId);
      if (event.studyId === this.studyId) void this.refreshReviews();
      return;
    }
    if (event.studyId === this.studyId) void this.refreshAi();
  }

  /** The open study's decision history again (after a decision or an undo elsewhere): panel and saved boxes. */
  private async refreshReviews() {
    const id = this.studyId;
    if (!id) return;
    try {
      const { reviews } = await api<ReviewList>(`/api/studies/${id}/reviews`);
      if (this.studyId !== id || !this.detail) return;
      this.detail.reviews = reviews;
      this.decisions.renderHistory(reviews, this.undoOffered);
      this.redrawAll();
    } catch { /* the next event retries */ }
  }

  private async refreshAi() {
    const id = this.studyId;
    if (!id) return;
    try {
      const fresh = await api<StudyAi>(`/api/studies/${id}/ai`);
      if (this.studyId !== id || !this.detail) return;
      this.detail.study = { ...this.detail.study, ai: fresh.study.ai, reviewState: fresh.study.reviewState };
      this.detail.model = fresh.model;
      for (const img of this.detail.images) img.ai = fresh.images.find((f) => f.id === img.id)?.ai ?? img.ai;
      for (const img of this.detail.images) if (img.ai?.heatmapUrl && !this.heat.get(img.id)) this.heat.set(img.id, await loadHeatmap(img.ai.heatmapUrl));
      renderAiPanel(this.aiPanel, this.detail, this.imageIn(this.active), this.aiControls());
      for (let i = 0; i < this.layout.columns; i++) this.renderInfo(i);
      this.redrawAll();
    } catch { /* the next event retries */ }
  }

  // --- tools ---

  private setTool(mode: ToolMode) {
    this.tool = mode;
    for (const c of this.cells) c.viewport.setTool(mode);
    for (const [m, b] of this.toolButtons) b.classList.toggle('on', m === mode);
  }

  private applyPreset(key: string) {
    const preset = PRESETS.find((p) => p.key === key);
    const viewport = this.cells[this.active].viewport;
    const stats = viewport.rangeStats();
    if (!preset || !stats) return;
    this.presetSelect.value = key;
    const result = preset.compute(stats);
    viewport.setVoi(result);
  }

  // --- decisions ---

  /** Whether a decision may be recorded now: the study open, every shown image displayed, no help over it. */
  private gate(): DecisionGate {
    if (!this.detail) return { open: false, reason: 'The study is still opening…' };
    if (!this.help.hidden) return { open: false, reason: 'Close the help (Esc) to record a decision.' };
    const cells = this.visibleCells().slice(0, Math.max(1, this.shown.length));
    if (cells.some((c) => c.viewport.state === 'failed')) return { open: false, reason: `${UNDISPLAYABLE} No decision can be recorded here.` };
    if (cells.some((c) => c.viewport.state !== 'rendered')) return { open: false, reason: 'Waiting for the image to display…' };
    return { open: true };
  }

  private updateGate() {
    this.decisions.setGate(this.gate());
  }

  private startOrFinishMissed() {
    if (this.drawing) void this.decide('missed');
    else this.startDrawing();
  }

  private startDrawing() {
    this.drawing = true;
    this.drawHint.hidden = false;
    for (const c of this.cells) c.viewport.element.classList.add('drawing');
    for (const c of this.cells) c.viewport.setTool('box');
    this.showToast('Draw the missed fracture(s), then Enter or M to save.');
  }

  private stopDrawing(clearDrawings: boolean) {
    this.drawing = false;
    this.drawHint.hidden = true;
    for (const c of this.cells) c.viewport.element.classList.remove('drawing');
    this.setTool(this.tool);
    if (clearDrawings) {
      Viewport.clearDrawings();
      for (const c of this.visibleCells()) c.viewport.redraw();
      this.renderMeasurements();
    }
  }

  private async decide(decision: Decision) {
    const studyId = this.studyId;
    const detail = this.detail;
    if (!studyId || !detail || this.busy) return;
    const gate = this.gate();
    if (!gate.open) {
      this.showToast(gate.reason, { error: true });
      return;
    }
    if (currentUser()?.role !== 'radiologist') {
      this.showToast('Only radiologists record decisions.', { error: true });
      return;
    }
    this.busy = true;
    try {
      // Only what was rendered in the layout is named as seen; drawings must be on those images.
      const shown = this.visibleCells().flatMap((c, i) => (c.viewport.state === 'rendered' ? [this.imageIn(i)!] : []));
      const offScreen = detail.images.find((image) => !shown.includes(image) && (Viewport.boxesOn(imageIdOf(image.url)).length || Viewport.measurementsOn(imageIdOf(image.url)).length));
      if (offScreen) {
        this.showToast(`Image ${detail.images.indexOf(offScreen) + 1} has boxes or measurements but is not on screen: show it, or clear them there (Delete).`, { error: true });
        return;
      }
      const body: DecisionRequest = { decision, comment: this.decisions.comment.value.trim() || null, shownInstanceIds: shown.map((image) => image.id) };
      if (decision === 'missed') body.boxes = shown.flatMap((image) => Viewport.boxesOn(imageIdOf(image.url)).map((b) => ({ ...b, instanceId: image.id })));
      const measurements: Measurement[] = shown.flatMap((image) => Viewport.measurementsOn(imageIdOf(image.url)).map((m) => ({ ...m, imageId: image.id })));
      if (measurements.length) body.measurements = measurements;
      await api(`/api/studies/${studyId}/review`, { method: 'POST', body });
      const label = studyLabel(detail.study);
      this.lastDecision = { studyId, label };
      this.decidedHere.add(studyId);
      this.stopDrawing(true);
      this.showToast(`Saved for ${label}: ${DECISION_TEXT[decision]}`, { action: this.undoOffered ? { label: 'Undo (Z)', run: () => void this.undo() } : undefined, long: true });
      void this.worklist.load({ keepScroll: true });
      const next = this.nextToRead(studyId);
      if (next !== undefined) location.hash = `#/study/${next}`;
      else {
        this.showToast(`Saved for ${label}. No more unreviewed studies in this list.`, { long: true });
        this.back();
      }
    } catch (err) {
      this.showToast(`Not saved: ${(err as Error).message}`, { error: true });
    } finally {
      this.busy = false;
    }
  }

  /** The next study of the opening order that is still to be read. */
  private nextToRead(after: number): number | undefined {
    const at = this.order.findIndex((s) => s.id === after);
    return this.order.slice(at + 1).find((s) => !s.reviewed && !this.decidedHere.has(s.id))?.id;
  }

  /** Withdraws the last decision (the server keeps it in the history and the audit) and goes back to that study. */
  private async undo() {
    const last = this.lastDecision ?? (this.detail && this.decisions.element.dataset.decision ? { studyId: this.studyId!, label: studyLabel(this.detail.study) } : undefined);
    if (!this.undoOffered) {
      this.showToast('Undo is not available on this server; another decision key changes the decision.', { error: true });
      return;
    }
    if (!last) {
      this.showToast('No decision to undo.');
      return;
    }
    try {
      await api(`/api/studies/${last.studyId}/review`, { method: 'DELETE' });
      this.lastDecision = undefined;
      this.decidedHere.delete(last.studyId);
      this.showToast(`Undone for ${last.label}.`);
      void this.worklist.load({ keepScroll: true });
      if (last.studyId === this.studyId) this.studyId = undefined; // reload its history
      if (location.hash === `#/study/${last.studyId}`) await this.open(last.studyId);
      else location.hash = `#/study/${last.studyId}`;
    } catch (err) {
      if (err instanceof ApiError && err.status === 404 && /^Route DELETE/.test(err.message)) {
        this.undoOffered = false;
        undoOffered = Promise.resolve(false);
        if (this.detail) this.decisions.renderHistory(this.detail.reviews, false);
        this.showToast('Undo is not available on this server; another decision key changes the decision.', { error: true });
        return;
      }
      this.showToast(`Not undone: ${(err as Error).message}`, { error: true });
    }
  }

  private moveStudy(direction: 1 | -1) {
    // From the study the address names: after N it changes at once, but the page follows only when
    // its hashchange runs, and a key can come first (Chromium handles input before other tasks).
    // Moving on from the study still shown would then skip to the wrong one.
    const current = Number(/^#\/study\/(\d+)/.exec(location.hash)?.[1] ?? this.studyId);
    if (!current) return;
    const at = this.order.findIndex((s) => s.id === current);
    const next = at >= 0 ? this.order[at + direction] : undefined;
    if (next) location.hash = `#/study/${next.id}`;
    else this.showToast(direction > 0 ? 'This is the last study of the list.' : 'This is the first study of the list.');
  }

  private back() {
    location.hash = '#/';
  }

  private toggleHelp(force?: boolean) {
    this.help.hidden = force === undefined ? !this.help.hidden : !force;
    this.updateGate();
  }

  private toastTimer: number | undefined;
  private showToast(message: string, opts: { error?: boolean; long?: boolean; action?: { label: string; run: () => void } } = {}) {
    clear(this.toast);
    this.toast.append(h('span', {}, message));
    if (opts.action) {
      const { run } = opts.action;
      const b = h('button', { type: 'button', class: 'toast-action', id: 'toast-undo' }, opts.action.label);
      b.addEventListener('click', () => { run(); this.focusActive(); });
      this.toast.append(b);
    }
    this.toast.classList.toggle('error', !!opts.error);
    this.toast.classList.toggle('actionable', !!opts.action);
    this.toast.classList.add('show');
    clearTimeout(this.toastTimer);
    this.toastTimer = window.setTimeout(() => this.toast.classList.remove('show'), opts.long || opts.action ? 6000 : 2500);
  }

  // --- keys ---

  private command(command: Command, key?: string) {
    const viewport = this.cells[this.active].viewport;
    if (DECISION_COMMANDS.has(command)) {
      const gate = this.gate();
      if (!gate.open) {
        this.showToast(gate.reason, { error: true });
        return;
      }
    }
    const tool = TOOL_OF[command];
    if (tool) {
      this.setTool(tool);
      return;
    }
    switch (command) {
      case 'nextStudy': return this.moveStudy(1);
      case 'prevStudy': return this.moveStudy(-1);
      case 'nextImage': return void this.showInCell(this.active, (this.shown[this.active] ?? 0) + 1);
      case 'prevImage': return void this.showInCell(this.active, (this.shown[this.active] ?? 0) - 1);
      case 'toggleLayout': return void this.setLayout(layoutById(this.layout.id === '1x1' ? '1x2' : '1x1'));
      case 'toggleSync':
        this.syncToggle.checked = !this.syncToggle.checked;
        this.syncFrom(this.active);
        return this.showToast(`Window/level sync ${this.syncToggle.checked ? 'on' : 'off'}`);
      case 'toggleOverlay':
        this.overlayToggle.checked = !this.overlayToggle.checked;
        this.redrawAll();
        for (let i = 0; i < this.layout.columns; i++) this.renderInfo(i);
        return;
      case 'agree': case 'disagree': case 'uncertain': return void this.decide(command);
      case 'missed': return this.startOrFinishMissed();
      case 'saveMissed': if (this.drawing) void this.decide('missed'); return;
      case 'undo': return void this.undo();
      case 'comment': return this.decisions.comment.focus();
      case 'clearDrawings': {
        const image = this.imageIn(this.active);
        if (image) Viewport.clearDrawings(imageIdOf(image.url));
        viewport.redraw();
        return this.renderMeasurements();
      }
      case 'preset': return this.applyPreset(key ?? '1');
      case 'zoomIn': return viewport.zoomBy(1.25);
      case 'zoomOut': return viewport.zoomBy(0.8);
      case 'rotateRight': return viewport.rotate(90);
      case 'rotateLeft': return viewport.rotate(-90);
      case 'flipH': return viewport.flip('hflip');
      case 'flipV': return viewport.flip('vflip');
      case 'invert': return viewport.invert();
      case 'fit': return viewport.fit();
      case 'reset': return viewport.reset();
      case 'help': return this.toggleHelp();
      case 'escape':
        if (!this.help.hidden) return this.toggleHelp(false);
        if (this.drawing) return this.stopDrawing(true);
        return this.back();
      default:
    }
  }

  private key(e: KeyboardEvent) {
    if (!this.visible || e.ctrlKey || e.metaKey || e.altKey) return;
    const target = e.target as HTMLElement;
    if (target === this.decisions.comment) {
      if (e.key === 'Escape') this.focusActive();
      return;
    }
    if (target.closest('input[type=text], input[type=search], input[type=range], textarea, select')) return;
    if (target.closest('button') && (e.key === 'Enter' || e.key === ' ')) return; // the button's own action
    const binding = bindingFor(e.key);
    if (!binding) return;
    e.preventDefault();
    // The help overlay covers the image: only closing it works while it is open.
    if (!this.help.hidden && binding.command !== 'help' && binding.command !== 'escape') return;
    if (binding.command === 'saveMissed' && !this.drawing) return;
    this.command(binding.command, e.key);
  }
}
