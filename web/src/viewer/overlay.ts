import { cornerstone } from './cornerstone.js';

export interface AiBox { x: number; y: number; width: number; height: number; score?: number; level?: string }

/** Heat-map PNGs, coloured once: greyscale heat → transparent…red…yellow…white (square-root scale). The image itself is never touched. */
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

/**
 * Draws the AI overlay on its own canvas above cornerstone's: the heat map stretched over the
 * whole image and the boxes (dotted = doubt, solid = definite), with cornerstone's current
 * transform (zoom, pan, rotation, flips), so it follows the image.
 */
export function drawOverlay(element: HTMLElement, overlay: HTMLCanvasElement, opts: {
  visible: boolean; opacity: number; heat: HTMLCanvasElement | undefined; boxes: AiBox[];
}) {
  const enabled = cornerstone.getEnabledElement(element);
  const source: HTMLCanvasElement = enabled.canvas;
  if (overlay.width !== source.width || overlay.height !== source.height) {
    overlay.width = source.width;
    overlay.height = source.height;
  }
  const ctx = overlay.getContext('2d')!;
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.clearRect(0, 0, overlay.width, overlay.height);
  if (!opts.visible || !enabled.image) return;
  const image = enabled.image;
  if (opts.heat) {
    const m = cornerstone.internal.getTransform(enabled).m as number[];
    ctx.save();
    ctx.setTransform(m[0], m[1], m[2], m[3], m[4], m[5]);
    ctx.globalAlpha = opts.opacity;
    ctx.imageSmoothingEnabled = true;
    ctx.drawImage(opts.heat, 0, 0, image.columns, image.rows);
    ctx.restore();
  }
  ctx.lineWidth = 2;
  ctx.font = '13px system-ui, sans-serif';
  for (const box of opts.boxes) {
    const corners = [
      { x: box.x, y: box.y }, { x: box.x + box.width, y: box.y },
      { x: box.x + box.width, y: box.y + box.height }, { x: box.x, y: box.y + box.height },
    ].map((p) => cornerstone.pixelToCanvas(element, p) as { x: number; y: number });
    const definite = box.level === 'definite';
    ctx.strokeStyle = definite ? '#ff3b30' : '#ffcc00';
    ctx.setLineDash(definite ? [] : [6, 5]);
    ctx.beginPath();
    corners.forEach((c, i) => (i ? ctx.lineTo(c.x, c.y) : ctx.moveTo(c.x, c.y)));
    ctx.closePath();
    ctx.stroke();
    const top = corners.reduce((a, b) => (b.y < a.y || (b.y === a.y && b.x < a.x) ? b : a));
    const label = `${definite ? 'definite' : 'doubt'}${typeof box.score === 'number' ? ` ${box.score.toFixed(2)}` : ''}`;
    ctx.setLineDash([]);
    ctx.fillStyle = 'rgba(0,0,0,0.6)';
    const w = ctx.measureText(label).width + 8;
    ctx.fillRect(top.x, top.y - 18, w, 16);
    ctx.fillStyle = definite ? '#ff8a80' : '#ffe066';
    ctx.fillText(label, top.x + 4, top.y - 6);
  }
}
