/**
 * The one place that decides how an image becomes a square model input, and how a point on the
 * model input maps back to the original pixel grid. Training (training/dataset.py) mirrors it:
 * longer side scaled to `size`, aspect kept, centred, padded with 0 (black), box filter when
 * shrinking (like PIL's Image.BOX), bilinear when enlarging.
 */

/** Greyscale image, row-major, display intensity in [0, 1] (0 = black, 1 = white / bone). */
export interface GreyImage {
  width: number;
  height: number;
  data: Float32Array;
}

export interface Letterbox {
  size: number;
  data: Float32Array;
  /** model pixel = original pixel * scale + offset */
  scale: number;
  offsetX: number;
  offsetY: number;
  /** Size of the image content inside the square. */
  contentWidth: number;
  contentHeight: number;
}

export function letterboxGeometry(width: number, height: number, size: number) {
  const scale = size / Math.max(width, height);
  const contentWidth = Math.max(1, Math.min(size, Math.round(width * scale)));
  const contentHeight = Math.max(1, Math.min(size, Math.round(height * scale)));
  const offsetX = Math.floor((size - contentWidth) / 2);
  const offsetY = Math.floor((size - contentHeight) / 2);
  return { scale, contentWidth, contentHeight, offsetX, offsetY };
}

export function letterbox(image: GreyImage, size: number): Letterbox {
  const g = letterboxGeometry(image.width, image.height, size);
  const content = resize(image, g.contentWidth, g.contentHeight);
  const data = new Float32Array(size * size);
  for (let y = 0; y < g.contentHeight; y++) {
    data.set(content.subarray(y * g.contentWidth, (y + 1) * g.contentWidth), (y + g.offsetY) * size + g.offsetX);
  }
  return { size, data, ...g };
}

/**
 * The same letterbox with `scale` counted in original pixels, for an image decoded at reduced
 * resolution (`reduction` original pixels per decoded pixel, see DecodedImage): decoded x is
 * original x·reduction exactly, so points map back to the original grid without rounding.
 */
export function inOriginalPixels<T extends Pick<Letterbox, 'scale'>>(lb: T, reduction: number): T {
  return reduction === 1 ? lb : { ...lb, scale: lb.scale / reduction };
}

/** Maps a point on the model input back to original pixel coordinates. */
export function toOriginal(lb: Pick<Letterbox, 'scale' | 'offsetX' | 'offsetY'>, x: number, y: number) {
  return { x: (x - lb.offsetX) / lb.scale, y: (y - lb.offsetY) / lb.scale };
}

export function resize(image: GreyImage, outW: number, outH: number): Float32Array {
  return outW <= image.width && outH <= image.height
    ? boxResize(image, outW, outH)
    : bilinearResize(image, outW, outH);
}

/** Exact area average: each output pixel is the coverage-weighted mean of the input pixels under it. */
function boxResize({ width, height, data }: GreyImage, outW: number, outH: number): Float32Array {
  const sx = width / outW;
  const sy = height / outH;
  const xw = spans(width, outW, sx);
  const out = new Float32Array(outW * outH);
  const row = new Float64Array(outW);
  for (let oy = 0; oy < outH; oy++) {
    const y0 = oy * sy;
    const y1 = y0 + sy;
    row.fill(0);
    for (let iy = Math.floor(y0); iy < Math.min(height, Math.ceil(y1)); iy++) {
      const wy = Math.min(y1, iy + 1) - Math.max(y0, iy);
      if (wy <= 0) continue;
      const base = iy * width;
      for (let ox = 0; ox < outW; ox++) {
        const { start, weights } = xw[ox];
        let acc = 0;
        for (let k = 0; k < weights.length; k++) acc += data[base + start + k] * weights[k];
        row[ox] += acc * wy;
      }
    }
    const norm = 1 / (sx * sy);
    for (let ox = 0; ox < outW; ox++) out[oy * outW + ox] = row[ox] * norm;
  }
  return out;
}

function spans(inSize: number, outSize: number, s: number) {
  const result: { start: number; weights: Float64Array }[] = [];
  for (let o = 0; o < outSize; o++) {
    const a = o * s;
    const b = a + s;
    const start = Math.floor(a);
    const end = Math.min(inSize, Math.ceil(b));
    const weights = new Float64Array(end - start);
    for (let i = start; i < end; i++) weights[i - start] = Math.max(0, Math.min(b, i + 1) - Math.max(a, i));
    result.push({ start, weights });
  }
  return result;
}

/** Bilinear with pixel centres aligned (align_corners = false), edges clamped. */
function bilinearResize({ width, height, data }: GreyImage, outW: number, outH: number): Float32Array {
  const out = new Float32Array(outW * outH);
  const sx = width / outW;
  const sy = height / outH;
  for (let oy = 0; oy < outH; oy++) {
    const fy = Math.min(height - 1, Math.max(0, (oy + 0.5) * sy - 0.5));
    const y0 = Math.floor(fy);
    const y1 = Math.min(height - 1, y0 + 1);
    const wy = fy - y0;
    for (let ox = 0; ox < outW; ox++) {
      const fx = Math.min(width - 1, Math.max(0, (ox + 0.5) * sx - 0.5));
      const x0 = Math.floor(fx);
      const x1 = Math.min(width - 1, x0 + 1);
      const wx = fx - x0;
      const top = data[y0 * width + x0] * (1 - wx) + data[y0 * width + x1] * wx;
      const bottom = data[y1 * width + x0] * (1 - wx) + data[y1 * width + x1] * wx;
      out[oy * outW + ox] = top * (1 - wy) + bottom * wy;
    }
  }
  return out;
}
