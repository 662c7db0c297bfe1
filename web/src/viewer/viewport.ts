import cornerstone from 'cornerstone-core';
import cornerstoneMath from 'cornerstone-math';
import cornerstoneTools from 'cornerstone-tools';
import Hammer from 'hammerjs';
import cornerstoneWADOImageLoader from 'cornerstone-wado-image-loader';
import dicomParser from 'dicom-parser';
import { h } from '../lib/dom.js';
import { rangeStats, type RangeStats } from './presets.js';

/**
 * One image viewport: the only module that calls cornerstone (core, tools, image loader). The rest
 * of the viewer works with what it exposes: show an image, view changes, tool modes, the image's
 * geometry for overlays, and what the radiologist drew (boxes, measurements) in pixel coordinates.
 */

export const LOADER_WORKER_URL = '/assets/index.worker.bundle.min.worker.js';
/** What a user reads when the browser cannot decode an image (never the decoder's own text). */
export const UNDISPLAYABLE = 'This image could not be displayed — open the original in your PACS.';

let ready = false;

/**
 * cornerstone-core + cornerstone-tools + cornerstone-wado-image-loader, wired once. Images load as
 * wadouri:/api/instances/<id>/file (the stored original, with the session cookie); decoding happens
 * in the loader's web worker, served from /assets with its WebAssembly codecs (nothing from a CDN).
 */
function initCornerstone() {
  if (ready) return;
  cornerstoneTools.external.cornerstone = cornerstone;
  cornerstoneTools.external.cornerstoneMath = cornerstoneMath;
  cornerstoneTools.external.Hammer = Hammer;
  cornerstoneTools.init({ showSVGCursors: false, mouseEnabled: true, touchEnabled: true, globalToolSyncEnabled: false });
  cornerstoneWADOImageLoader.external.cornerstone = cornerstone;
  cornerstoneWADOImageLoader.external.dicomParser = dicomParser;
  // The loader puts pako on window and dicom-parser inflates Deflated data sets with it, with no
  // limit (a 1 MB file can inflate to gigabytes in this tab). The server sends Deflated originals
  // already inflated (/api/instances/:id/file), so a Deflated file here is refused, never inflated.
  (window as unknown as { pako: unknown }).pako = {
    inflateRaw() { throw new Error('Deflated DICOM is not inflated in the browser'); },
  };
  cornerstoneWADOImageLoader.configure({ beforeSend: (xhr: XMLHttpRequest) => { xhr.withCredentials = true; } });
  // The loader starts its workers from a blob: URL; our CSP allows workers only from our own origin,
  // so they start from the same script served at /assets (copied there by web/vite.config.ts).
  const NativeWorker = window.Worker;
  window.Worker = class LoaderWorker extends NativeWorker {
    constructor(url: string | URL, options?: WorkerOptions) {
      const href = String(url);
      super(href.startsWith('blob:') || href.startsWith('data:') ? LOADER_WORKER_URL : url, options);
    }
  };
  try {
    cornerstoneWADOImageLoader.webWorkerManager.initialize({
      maxWebWorkers: Math.max(1, Math.min(3, (navigator.hardwareConcurrency || 2) - 1)),
      startWebWorkersOnDemand: false,
      taskConfiguration: { decodeTask: { initializeCodecsOnStartup: false, strict: false } },
    });
  } finally {
    window.Worker = NativeWorker;
  }
  ready = true;
}

export type ToolMode = 'wwwc' | 'pan' | 'length' | 'angle' | 'box';
export interface Point { x: number; y: number }
export interface Voi { windowWidth: number; windowCenter: number }
export interface ViewState { voi: Voi; scale: number; rotation: number; hflip: boolean; vflip: boolean; invert: boolean; translation: Point }
export type ViewportState = 'empty' | 'loading' | 'rendered' | 'failed';

/** What an overlay needs to draw over the image: pixel → canvas mapping and the full transform. */
export interface Geometry {
  toCanvas(p: Point): Point;
  /** 2-D canvas transform (a, b, c, d, e, f) from image pixels to canvas pixels. */
  transform: number[];
  rows: number;
  columns: number;
  width: number;
  height: number;
  view: ViewState;
}

/** A length or angle drawn on an image, in original pixel coordinates, with its value. */
export interface DrawnMeasurement { kind: 'length' | 'angle'; points: Point[]; value: number; unit: 'mm' | 'px' | 'deg' }

const TOOL_NAMES: Record<ToolMode, string> = { wwwc: 'Wwwc', pan: 'Pan', length: 'Length', angle: 'Angle', box: 'RectangleRoi' };
const LEFT = 1;
const RIGHT = 2;
const MIDDLE = 4;

export const imageIdOf = (url: string) => `wadouri:${url}`;

/** Pixel spacing in mm (row spacing = between rows, i.e. along y) from Pixel Spacing, else Imager Pixel Spacing. */
function spacingOf(image: any): { row: number; column: number } | undefined {
  const ds = image?.data;
  for (const tag of ['x00280030', 'x00181164']) {
    const text: string | undefined = ds?.string?.(tag);
    const [row, column] = (text ?? '').split('\\').map(Number);
    if (row > 0 && column > 0) return { row, column };
  }
  return undefined;
}

function toolState(imageId: string, tool: string): any[] {
  const all = cornerstoneTools.globalImageIdSpecificToolStateManager.saveToolState() as Record<string, Record<string, { data: any[] }>>;
  return all[imageId]?.[tool]?.data ?? [];
}

/** Images shown so far (cornerstone caches them anyway), for the pixel spacing of their measurements. */
const loadedImages = new Map<string, any>();

export class Viewport {
  readonly element: HTMLDivElement;
  readonly overlay: HTMLCanvasElement;
  private readonly message = h('div', { class: 'viewport-message', role: 'alert', hidden: true });
  private imageId: string | undefined;
  private enabled = false;
  private mode: ToolMode = 'wwwc';
  private stats = new Map<string, RangeStats>();
  state: ViewportState = 'empty';
  /** Called after every render of the current image (W/L, zoom, pan, resize…). */
  onRendered: (view: ViewState) => void = () => undefined;
  /** Called when a measurement or box is added, moved or removed. */
  onAnnotation: () => void = () => undefined;

  constructor(readonly id: string) {
    initCornerstone();
    this.element = h('div', { class: 'viewport', id, tabIndex: 0, 'aria-label': 'Image' });
    this.overlay = h('canvas', { class: 'ai-overlay', id: id === 'viewport' ? 'ai-overlay' : `${id}-overlay` });
    this.element.append(this.overlay, this.message);
    this.element.dataset.state = 'empty';
    this.element.addEventListener('contextmenu', (e) => e.preventDefault());
  }

  /** cornerstone needs the element in the document with a size; called once it is. */
  enable() {
    if (this.enabled) {
      cornerstone.resize(this.element, true);
      return;
    }
    cornerstone.enable(this.element);
    const tools = cornerstoneTools;
    for (const T of [tools.WwwcTool, tools.PanTool, tools.ZoomTool, tools.LengthTool, tools.AngleTool, tools.RectangleRoiTool]) tools.addToolForElement(this.element, T);
    tools.setToolActiveForElement(this.element, 'Zoom', { mouseButtonMask: [RIGHT] });
    this.enabled = true;
    this.setTool(this.mode);
    // Shift + left drag pans whatever the tool (for trackpads without a middle button); W/L stays.
    this.element.addEventListener('mousedown', (e) => {
      if (e.button !== 0 || !e.shiftKey || this.mode === 'pan') return;
      tools.setToolActiveForElement(this.element, 'Pan', { mouseButtonMask: [LEFT] });
      const restore = () => {
        document.removeEventListener('mouseup', restore, true);
        // After cornerstone-tools has finished its own mouseup.
        setTimeout(() => this.setTool(this.mode));
      };
      document.addEventListener('mouseup', restore, true);
    }, true);
    this.element.addEventListener('wheel', (e) => {
      e.preventDefault();
      const rect = this.element.getBoundingClientRect();
      this.zoomBy(e.deltaY < 0 ? 1.15 : 1 / 1.15, { x: e.clientX - rect.left, y: e.clientY - rect.top });
    }, { passive: false });
    this.element.addEventListener(cornerstone.EVENTS.IMAGE_RENDERED, () => this.rendered());
    // The canvas follows the element's size, whatever changed it (window, layout, side panel).
    new ResizeObserver(() => this.resize()).observe(this.element);
    for (const event of [tools.EVENTS.MEASUREMENT_COMPLETED, tools.EVENTS.MEASUREMENT_MODIFIED, tools.EVENTS.MEASUREMENT_REMOVED]) {
      this.element.addEventListener(event, () => this.onAnnotation());
    }
  }

  get currentImageId() { return this.imageId; }

  /** Loads and shows an image; on failure says so in words over the viewport. */
  async show(imageId: string): Promise<'rendered' | 'failed' | 'stale'> {
    this.imageId = imageId;
    this.setState('loading');
    this.message.hidden = true;
    this.element.dataset.imageId = imageId;
    this.element.dataset.rendered = '';
    try {
      const image = await cornerstone.loadAndCacheImage(imageId);
      loadedImages.set(imageId, image);
      if (this.imageId !== imageId) return 'stale';
      if (!this.stats.has(imageId)) this.stats.set(imageId, rangeStats(image.getPixelData(), image.invert === true || image.photometricInterpretation === 'MONOCHROME1'));
      // Each image starts from its own defaults (its VOI, MONOCHROME1 inversion), never the last image's.
      cornerstone.displayImage(this.element, image, cornerstone.getDefaultViewportForImage(this.element, image));
      cornerstone.fitToWindow(this.element);
      return 'rendered';
    } catch (err) {
      if (this.imageId !== imageId) return 'stale';
      // The decoder's own text (e.g. "IOException (decode)") is for the console, not the radiologist.
      console.warn('image could not be displayed', imageId, err);
      this.fail();
      return 'failed';
    }
  }

  private fail() {
    this.setState('failed');
    this.message.textContent = UNDISPLAYABLE;
    this.message.hidden = false;
    // Nothing of a previous image may stay on the canvas.
    const canvas = this.enabled ? (cornerstone.getEnabledElement(this.element).canvas as HTMLCanvasElement) : undefined;
    canvas?.getContext('2d')?.clearRect(0, 0, canvas.width, canvas.height);
    const ctx = this.overlay.getContext('2d');
    ctx?.clearRect(0, 0, this.overlay.width, this.overlay.height);
  }

  clear() {
    this.imageId = undefined;
    this.message.hidden = true;
    this.setState('empty');
    this.element.dataset.imageId = '';
    this.element.dataset.rendered = '';
  }

  private setState(state: ViewportState) {
    this.state = state;
    this.element.dataset.state = state;
  }

  prefetch(imageId: string) {
    cornerstone.loadAndCacheImage(imageId).catch(() => undefined);
  }

  /** Draws a small copy of an image (series strip); false when it cannot be decoded. */
  async thumbnail(imageId: string, canvas: HTMLCanvasElement): Promise<boolean> {
    try {
      const image = await cornerstone.loadAndCacheImage(imageId);
      const scale = Math.min(canvas.width / image.columns, canvas.height / image.rows);
      const full = document.createElement('canvas');
      full.width = image.columns;
      full.height = image.rows;
      cornerstone.renderToCanvas(full, image);
      const ctx = canvas.getContext('2d')!;
      ctx.fillStyle = '#000';
      ctx.fillRect(0, 0, canvas.width, canvas.height);
      const w = image.columns * scale;
      const hgt = image.rows * scale;
      ctx.drawImage(full, (canvas.width - w) / 2, (canvas.height - hgt) / 2, w, hgt);
      return true;
    } catch {
      return false;
    }
  }

  private rendered() {
    const enabled = cornerstone.getEnabledElement(this.element);
    const drawn: string | undefined = enabled.image?.imageId;
    // A late render of a previous image (resize, W/L) must not count as this one.
    if (!drawn || drawn !== this.imageId || this.state === 'failed') return;
    const view = this.view()!;
    this.setState('rendered');
    this.element.dataset.rendered = drawn;
    this.element.dataset.ww = String(Math.round(view.voi.windowWidth));
    this.element.dataset.wc = String(Math.round(view.voi.windowCenter));
    this.element.dataset.pan = `${view.translation.x.toFixed(1)},${view.translation.y.toFixed(1)}`;
    this.element.dataset.scale = view.scale.toFixed(4);
    this.onRendered(view);
  }

  resize() {
    if (!this.enabled || !this.element.clientWidth || !this.element.clientHeight) return;
    cornerstone.resize(this.element, false);
  }

  view(): ViewState | undefined {
    if (!this.enabled || this.state === 'failed') return undefined;
    const vp = cornerstone.getViewport(this.element);
    if (!vp) return undefined;
    return {
      voi: { windowWidth: vp.voi.windowWidth, windowCenter: vp.voi.windowCenter }, scale: vp.scale, rotation: vp.rotation ?? 0,
      hflip: !!vp.hflip, vflip: !!vp.vflip, invert: !!vp.invert, translation: { x: vp.translation.x, y: vp.translation.y },
    };
  }

  private update(change: (vp: any) => void) {
    if (!this.enabled || this.state !== 'rendered') return;
    const vp = cornerstone.getViewport(this.element);
    if (!vp) return;
    change(vp);
    cornerstone.setViewport(this.element, vp);
  }

  /**
   * Zooms by `factor`, keeping the image point under `about` (canvas pixels) where it is; without a
   * point, about the centre. The pan needed is found from how the transform maps a unit pan.
   */
  zoomBy(factor: number, about?: Point) {
    this.update((vp) => {
      const enabled = cornerstone.getEnabledElement(this.element);
      const before = about ? cornerstone.canvasToPixel(this.element, about) as Point : undefined;
      vp.scale = Math.min(40, Math.max(0.05, vp.scale * factor));
      if (!before || !about) return;
      const live = enabled.viewport;
      const saved = { scale: live.scale, x: live.translation.x, y: live.translation.y };
      live.scale = vp.scale;
      live.translation = { x: vp.translation.x, y: vp.translation.y };
      const at = () => cornerstone.pixelToCanvas(this.element, before) as Point;
      const p0 = at();
      live.translation = { x: vp.translation.x + 1, y: vp.translation.y };
      const px = at();
      live.translation = { x: vp.translation.x, y: vp.translation.y + 1 };
      const py = at();
      live.scale = saved.scale;
      live.translation = { x: saved.x, y: saved.y };
      // Solve [px-p0, py-p0] · d = about - p0 for the pan d.
      const a = px.x - p0.x; const b = py.x - p0.x; const c = px.y - p0.y; const d = py.y - p0.y;
      const det = a * d - b * c;
      if (Math.abs(det) < 1e-9) return;
      const ex = about.x - p0.x; const ey = about.y - p0.y;
      vp.translation = { x: vp.translation.x + (d * ex - b * ey) / det, y: vp.translation.y + (a * ey - c * ex) / det };
    });
  }

  rotate(degrees: number) { this.update((vp) => { vp.rotation = ((vp.rotation + degrees) % 360 + 360) % 360; }); }
  flip(which: 'hflip' | 'vflip') { this.update((vp) => { vp[which] = !vp[which]; }); }
  invert() { this.update((vp) => { vp.invert = !vp.invert; }); }
  fit() { if (this.state === 'rendered') cornerstone.fitToWindow(this.element); }
  reset() {
    if (this.state !== 'rendered') return;
    cornerstone.reset(this.element);
    cornerstone.fitToWindow(this.element);
  }

  /** Window/level: explicit, or the image's own default ('default'). */
  setVoi(voi: Voi | 'default') {
    if (voi === 'default') {
      const enabled = cornerstone.getEnabledElement(this.element);
      if (!enabled?.image) return;
      const def = cornerstone.getDefaultViewportForImage(this.element, enabled.image);
      this.update((vp) => { vp.voi = { ...def.voi }; });
    } else {
      this.update((vp) => { vp.voi = { windowWidth: voi.windowWidth, windowCenter: voi.windowCenter }; });
    }
  }

  /** 1st–99th percentile of the current image's values, for the window presets. */
  rangeStats(): RangeStats | undefined {
    return this.imageId ? this.stats.get(this.imageId) : undefined;
  }

  setTool(mode: ToolMode) {
    this.mode = mode;
    this.element.dataset.tool = mode;
    if (!this.enabled) return;
    const tools = cornerstoneTools;
    // Middle button always pans; the left button does what the mode says (activating a tool on a
    // button takes that button from the tool that had it).
    tools.setToolActiveForElement(this.element, 'Pan', { mouseButtonMask: mode === 'pan' ? [LEFT, MIDDLE] : [MIDDLE] });
    if (mode !== 'pan') tools.setToolActiveForElement(this.element, TOOL_NAMES[mode], { mouseButtonMask: [LEFT] });
    for (const name of ['Length', 'Angle', 'RectangleRoi']) if (TOOL_NAMES[mode] !== name) tools.setToolPassiveForElement(this.element, name);
  }

  /** The current image's geometry for overlays, or undefined when nothing is shown. */
  geometry(): Geometry | undefined {
    if (!this.enabled || this.state !== 'rendered') return undefined;
    const enabled = cornerstone.getEnabledElement(this.element);
    if (!enabled.image) return undefined;
    const canvas: HTMLCanvasElement = enabled.canvas;
    return {
      toCanvas: (p) => cornerstone.pixelToCanvas(this.element, p) as Point,
      transform: cornerstone.internal.getTransform(enabled).m as number[],
      rows: enabled.image.rows, columns: enabled.image.columns,
      width: canvas.width, height: canvas.height,
      view: this.view()!,
    };
  }

  /** A text attribute of the shown image's data set (e.g. 'x00200020' Patient Orientation). */
  attribute(tag: string): string | undefined {
    if (!this.enabled || this.state !== 'rendered') return undefined;
    return cornerstone.getEnabledElement(this.element).image?.data?.string?.(tag) ?? undefined;
  }

  /** Boxes drawn with the box tool on an image (original pixel coordinates). */
  static boxesOn(imageId: string) {
    return toolState(imageId, 'RectangleRoi').map((item) => {
      const { start, end } = item.handles;
      return { x: Math.max(0, Math.min(start.x, end.x)), y: Math.max(0, Math.min(start.y, end.y)), width: Math.abs(end.x - start.x), height: Math.abs(end.y - start.y) };
    }).filter((b) => b.width >= 1 && b.height >= 1);
  }

  /** Lengths (mm with a pixel spacing, else px) and angles (degrees) drawn on an image. */
  static measurementsOn(imageId: string): DrawnMeasurement[] {
    const spacing = spacingOf(loadedImages.get(imageId));
    const sx = spacing?.column ?? 1;
    const sy = spacing?.row ?? 1;
    const out: DrawnMeasurement[] = [];
    for (const item of toolState(imageId, 'Length')) {
      const { start, end } = item.handles;
      const value = Math.hypot((end.x - start.x) * sx, (end.y - start.y) * sy);
      if (value > 0) out.push({ kind: 'length', points: [{ x: start.x, y: start.y }, { x: end.x, y: end.y }], value, unit: spacing ? 'mm' : 'px' });
    }
    for (const item of toolState(imageId, 'Angle')) {
      const { start, middle, end } = item.handles;
      if (!start || !middle || !end) continue;
      const a = { x: (start.x - middle.x) * sx, y: (start.y - middle.y) * sy };
      const b = { x: (end.x - middle.x) * sx, y: (end.y - middle.y) * sy };
      const norm = Math.hypot(a.x, a.y) * Math.hypot(b.x, b.y);
      if (!norm) continue;
      const value = (Math.acos(Math.max(-1, Math.min(1, (a.x * b.x + a.y * b.y) / norm))) * 180) / Math.PI;
      out.push({ kind: 'angle', points: [start, middle, end].map((p: Point) => ({ x: p.x, y: p.y })), value, unit: 'deg' });
    }
    return out;
  }

  /** Removes what was drawn on an image (all tools), or on every image. */
  static clearDrawings(imageId?: string) {
    const manager = cornerstoneTools.globalImageIdSpecificToolStateManager;
    if (imageId === undefined) manager.restoreToolState({});
    else {
      const all = manager.saveToolState() as Record<string, unknown>;
      delete all[imageId];
      manager.restoreToolState(all);
    }
  }

  redraw() {
    if (this.enabled && this.state === 'rendered') cornerstone.updateImage(this.element);
  }
}
