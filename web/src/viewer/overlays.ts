import type { Measurement, ReviewBox, StudyImage } from '../../../services/contract/index.js';
import type { Geometry, Point, ViewState } from './viewport.js';

/**
 * What is drawn over an image, as a list: each overlay draws itself on the overlay canvas (above
 * cornerstone's; the image's pixels are never changed) from the image's geometry. A new overlay is
 * one more entry in OVERLAYS.
 */
export interface OverlayInput {
  image: StudyImage;
  geometry: Geometry;
  /** The AI overlays (heat map, boxes) are on (O). */
  aiOn: boolean;
  /** Heat map also on images the AI did not flag. */
  heatOnAll: boolean;
  opacity: number;
  heat: HTMLCanvasElement | undefined;
  /** The current decision's "AI missed a fracture" boxes and measurements for this image. */
  savedBoxes: ReviewBox[];
  savedMeasurements: Measurement[];
  /** Patient Orientation (0020,0020) of the image, e.g. "L\F". */
  patientOrientation: string | undefined;
}

export interface Overlay {
  id: string;
  label: string;
  draw(ctx: CanvasRenderingContext2D, input: OverlayInput): void;
}

const FLAGGED = new Set(['doubt', 'definite']);

const heatmap: Overlay = {
  id: 'heatmap',
  label: 'AI heat map',
  draw(ctx, { image, geometry, aiOn, heatOnAll, opacity, heat }) {
    // Only on flagged images unless asked for: a heat map on a "not flagged" image reads as a finding.
    if (!aiOn || !heat || image.ai?.status !== 'done' || (!heatOnAll && !FLAGGED.has(image.ai.flag ?? ''))) return;
    const m = geometry.transform;
    ctx.save();
    ctx.setTransform(m[0], m[1], m[2], m[3], m[4], m[5]);
    ctx.globalAlpha = opacity;
    ctx.imageSmoothingEnabled = true;
    ctx.drawImage(heat, 0, 0, geometry.columns, geometry.rows);
    ctx.restore();
  },
};

function polygon(ctx: CanvasRenderingContext2D, geometry: Geometry, box: { x: number; y: number; width: number; height: number }) {
  const corners = [
    { x: box.x, y: box.y }, { x: box.x + box.width, y: box.y },
    { x: box.x + box.width, y: box.y + box.height }, { x: box.x, y: box.y + box.height },
  ].map(geometry.toCanvas);
  ctx.beginPath();
  corners.forEach((c, i) => (i ? ctx.lineTo(c.x, c.y) : ctx.moveTo(c.x, c.y)));
  ctx.closePath();
  ctx.stroke();
  return corners.reduce((a, b) => (b.y < a.y || (b.y === a.y && b.x < a.x) ? b : a));
}

function label(ctx: CanvasRenderingContext2D, at: Point, text: string, colour: string) {
  ctx.setLineDash([]);
  ctx.font = '13px system-ui, sans-serif';
  const w = ctx.measureText(text).width + 8;
  ctx.fillStyle = 'rgba(0,0,0,0.6)';
  ctx.fillRect(at.x, at.y - 18, w, 16);
  ctx.fillStyle = colour;
  ctx.fillText(text, at.x + 4, at.y - 6);
}

/** AI boxes: solid = definite, dotted = doubt. No numbers on boxes (the one score is the image's, in the panel). */
const aiBoxes: Overlay = {
  id: 'ai-boxes',
  label: 'AI boxes',
  draw(ctx, { image, geometry, aiOn }) {
    if (!aiOn || image.ai?.status !== 'done') return;
    ctx.lineWidth = 2;
    for (const box of image.ai.boxes) {
      const definite = box.level === 'definite';
      ctx.strokeStyle = definite ? '#ff3b30' : '#ffcc00';
      ctx.setLineDash(definite ? [] : [6, 5]);
      label(ctx, polygon(ctx, geometry, box), definite ? 'definite' : 'doubt', definite ? '#ff8a80' : '#ffe066');
    }
  },
};

/** Boxes the radiologist saved with "AI missed a fracture", drawn again when the study is reopened. */
const savedBoxes: Overlay = {
  id: 'saved-boxes',
  label: 'Your saved boxes',
  draw(ctx, { geometry, savedBoxes: boxes }) {
    ctx.lineWidth = 2;
    for (const box of boxes) {
      ctx.strokeStyle = '#ff8a00';
      ctx.setLineDash([2, 3]);
      label(ctx, polygon(ctx, geometry, box), 'missed (saved)', '#ffb366');
    }
  },
};

/** Measurements saved with the current decision (new ones are drawn by the tools themselves). */
const savedMeasurements: Overlay = {
  id: 'saved-measurements',
  label: 'Saved measurements',
  draw(ctx, { geometry, savedMeasurements: measurements }) {
    ctx.lineWidth = 1.5;
    ctx.strokeStyle = '#7fd4ff';
    ctx.setLineDash([]);
    for (const m of measurements) {
      const points = m.points.map(geometry.toCanvas);
      ctx.beginPath();
      points.forEach((p, i) => (i ? ctx.lineTo(p.x, p.y) : ctx.moveTo(p.x, p.y)));
      ctx.stroke();
      label(ctx, points[m.kind === 'angle' ? 1 : points.length - 1], `${m.value.toFixed(1)} ${m.unit === 'deg' ? '°' : m.unit}`, '#7fd4ff');
    }
  },
};

const OPPOSITE: Record<string, string> = { L: 'R', R: 'L', A: 'P', P: 'A', H: 'F', F: 'H' };
const opposite = (direction: string) => [...direction].map((c) => OPPOSITE[c] ?? c).join('');

/**
 * Labels for the four edges of the displayed image from Patient Orientation (row direction = towards
 * the right edge, column direction = towards the bottom), after the view's flips and rotation.
 */
export function orientationLabels(patientOrientation: string | undefined, view: Pick<ViewState, 'rotation' | 'hflip' | 'vflip'>) {
  const [row, column] = (patientOrientation ?? '').split('\\').map((s) => s.trim().toUpperCase());
  if (!row || !column || !/^[LRAPHF]+$/.test(row + column)) return undefined;
  let edges = { top: opposite(column), right: row, bottom: column, left: opposite(row) };
  // cornerstone flips first, then rotates.
  if (view.hflip) edges = { ...edges, left: edges.right, right: edges.left };
  if (view.vflip) edges = { ...edges, top: edges.bottom, bottom: edges.top };
  for (let turns = Math.round((((view.rotation % 360) + 360) % 360) / 90); turns > 0; turns--) {
    edges = { top: edges.left, right: edges.top, bottom: edges.right, left: edges.bottom };
  }
  return edges;
}

const orientation: Overlay = {
  id: 'orientation',
  label: 'Orientation labels',
  draw(ctx, { geometry, patientOrientation }) {
    const edges = orientationLabels(patientOrientation, geometry.view);
    if (!edges) return;
    ctx.setLineDash([]);
    ctx.font = 'bold 15px system-ui, sans-serif';
    ctx.fillStyle = '#e8f0f8';
    ctx.shadowColor = '#000';
    ctx.shadowBlur = 3;
    const { width: w, height: hgt } = geometry;
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    ctx.fillText(edges.top, w / 2, 14);
    ctx.fillText(edges.bottom, w / 2, hgt - 14);
    ctx.fillText(edges.left, 14, hgt / 2);
    ctx.fillText(edges.right, w - 14, hgt / 2);
    ctx.shadowBlur = 0;
    ctx.textAlign = 'start';
    ctx.textBaseline = 'alphabetic';
  },
};

export const OVERLAYS: readonly Overlay[] = [heatmap, aiBoxes, savedBoxes, savedMeasurements, orientation];

/** Clears the overlay canvas (sized to the image canvas) and draws every overlay. */
export function drawOverlays(canvas: HTMLCanvasElement, input: OverlayInput | undefined) {
  const width = input?.geometry.width ?? canvas.width;
  const height = input?.geometry.height ?? canvas.height;
  if (canvas.width !== width || canvas.height !== height) {
    canvas.width = width;
    canvas.height = height;
  }
  const ctx = canvas.getContext('2d')!;
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (!input) return;
  for (const overlay of OVERLAYS) {
    ctx.save();
    overlay.draw(ctx, input);
    ctx.restore();
  }
}

/** Heat-map PNGs, coloured once: greyscale heat → transparent…red…yellow…white (square-root scale). */
const heatCache = new Map<string, Promise<HTMLCanvasElement | undefined>>();

export function loadHeatmap(url: string): Promise<HTMLCanvasElement | undefined> {
  let entry = heatCache.get(url);
  if (!entry) {
    entry = new Promise((resolve) => {
      const img = new Image();
      img.onload = () => {
        const canvas = document.createElement('canvas');
        canvas.width = img.naturalWidth;
        canvas.height = img.naturalHeight;
        const ctx = canvas.getContext('2d')!;
        ctx.drawImage(img, 0, 0);
        const data = ctx.getImageData(0, 0, canvas.width, canvas.height);
        const px = data.data;
        for (let i = 0; i < px.length; i += 4) {
          // Square root: faint heat stays visible; below ~2 % of full scale it is left out.
          const raw = px[i] / 255;
          const v = raw <= 0.02 ? 0 : Math.sqrt(raw);
          px[i] = Math.round(255 * Math.min(1, v * 2.5));
          px[i + 1] = Math.round(255 * Math.min(1, Math.max(0, v * 2.5 - 1)));
          px[i + 2] = Math.round(255 * Math.min(1, Math.max(0, v * 2.5 - 2)));
          px[i + 3] = v === 0 ? 0 : Math.round(255 * Math.min(1, v * 1.3));
        }
        ctx.putImageData(data, 0, 0);
        resolve(canvas);
      };
      img.onerror = () => resolve(undefined);
      img.src = url;
    });
    heatCache.set(url, entry);
  }
  return entry;
}
