/**
 * Draws the AI result into an RGB copy of the image, for PACS viewers that show no overlays:
 * the heat map blended in, boxes (dotted = doubt, solid = definite) and a text banner.
 * Text uses a built-in 5×7 bitmap font (upper case, digits, a little punctuation).
 */
import { resize, type GreyImage } from '../imaging/index.js';

export interface RgbImage { width: number; height: number; data: Uint8Array }

const FONT: Record<string, number[]> = {
  A: [14, 17, 17, 31, 17, 17, 17], B: [30, 17, 17, 30, 17, 17, 30], C: [14, 17, 16, 16, 16, 17, 14], D: [30, 17, 17, 17, 17, 17, 30],
  E: [31, 16, 16, 30, 16, 16, 31], F: [31, 16, 16, 30, 16, 16, 16], G: [14, 17, 16, 23, 17, 17, 15], H: [17, 17, 17, 31, 17, 17, 17],
  I: [14, 4, 4, 4, 4, 4, 14], J: [7, 2, 2, 2, 2, 18, 12], K: [17, 18, 20, 24, 20, 18, 17], L: [16, 16, 16, 16, 16, 16, 31],
  M: [17, 27, 21, 21, 17, 17, 17], N: [17, 17, 25, 21, 19, 17, 17], O: [14, 17, 17, 17, 17, 17, 14], P: [30, 17, 17, 30, 16, 16, 16],
  Q: [14, 17, 17, 17, 21, 18, 13], R: [30, 17, 17, 30, 20, 18, 17], S: [15, 16, 16, 14, 1, 1, 30], T: [31, 4, 4, 4, 4, 4, 4],
  U: [17, 17, 17, 17, 17, 17, 14], V: [17, 17, 17, 17, 17, 10, 4], W: [17, 17, 17, 21, 21, 21, 10], X: [17, 17, 10, 4, 10, 17, 17],
  Y: [17, 17, 17, 10, 4, 4, 4], Z: [31, 1, 2, 4, 8, 16, 31],
  0: [14, 17, 19, 21, 25, 17, 14], 1: [4, 12, 4, 4, 4, 4, 14], 2: [14, 17, 1, 2, 4, 8, 31], 3: [31, 2, 4, 2, 1, 17, 14],
  4: [2, 6, 10, 18, 31, 2, 2], 5: [31, 16, 30, 1, 1, 17, 14], 6: [6, 8, 16, 30, 17, 17, 14], 7: [31, 1, 2, 4, 8, 8, 8],
  8: [14, 17, 17, 14, 17, 17, 14], 9: [14, 17, 17, 15, 1, 2, 12],
  ' ': [0, 0, 0, 0, 0, 0, 0], '-': [0, 0, 0, 14, 0, 0, 0], '—': [0, 0, 0, 31, 0, 0, 0], '.': [0, 0, 0, 0, 0, 12, 12],
  ':': [0, 12, 12, 0, 12, 12, 0], '%': [24, 25, 2, 4, 8, 19, 3], ',': [0, 0, 0, 0, 12, 4, 8], '(': [2, 4, 8, 8, 8, 4, 2],
  ')': [8, 4, 2, 2, 2, 4, 8], '/': [0, 1, 2, 4, 8, 16, 0], '=': [0, 0, 31, 0, 31, 0, 0],
};

export type Colour = [number, number, number];
export const COLOURS = { doubt: [255, 200, 0] as Colour, definite: [255, 40, 40] as Colour, text: [255, 255, 255] as Colour };

/** Greyscale display intensities [0, 1] → RGB, at most maxSide on the longer side. Returns the scale used. */
export function toRgb(image: GreyImage, maxSide: number): { rgb: RgbImage; scale: number } {
  const scale = Math.min(1, maxSide / Math.max(image.width, image.height));
  const width = Math.max(1, Math.round(image.width * scale));
  const height = Math.max(1, Math.round(image.height * scale));
  const grey = width === image.width && height === image.height ? image.data : resize(image, width, height);
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < grey.length; i++) {
    const v = grey[i] <= 0 ? 0 : grey[i] >= 1 ? 255 : Math.round(grey[i] * 255);
    data[3 * i] = data[3 * i + 1] = data[3 * i + 2] = v;
  }
  return { rgb: { width, height, data }, scale: width / image.width };
}

/** Blends a heat map (any size, stretched over the image) in warm colours where it is high. */
export function blendHeatmap(rgb: RgbImage, heat: GreyImage): void {
  const h = heat.width === rgb.width && heat.height === rgb.height ? heat.data : resize(heat, rgb.width, rgb.height);
  for (let i = 0; i < h.length; i++) {
    const v = Math.max(0, Math.min(1, h[i]));
    const alpha = v < 0.15 ? 0 : 0.45 * ((v - 0.15) / 0.85);
    if (alpha === 0) continue;
    const colour: Colour = [255, Math.round(255 * (1 - v)), 0];
    for (let c = 0; c < 3; c++) rgb.data[3 * i + c] = Math.round(rgb.data[3 * i + c] * (1 - alpha) + colour[c] * alpha);
  }
}

function setPixel(rgb: RgbImage, x: number, y: number, colour: Colour) {
  if (x < 0 || y < 0 || x >= rgb.width || y >= rgb.height) return;
  const i = 3 * (y * rgb.width + x);
  rgb.data[i] = colour[0];
  rgb.data[i + 1] = colour[1];
  rgb.data[i + 2] = colour[2];
}

export function fillRect(rgb: RgbImage, x: number, y: number, w: number, h: number, colour: Colour) {
  for (let yy = Math.max(0, y); yy < Math.min(rgb.height, y + h); yy++) {
    for (let xx = Math.max(0, x); xx < Math.min(rgb.width, x + w); xx++) setPixel(rgb, xx, yy, colour);
  }
}

/** A rectangle outline `thickness` wide; dotted draws dashes of 3×thickness with equal gaps. */
export function strokeRect(rgb: RgbImage, box: { x: number; y: number; width: number; height: number }, colour: Colour, thickness: number, dotted: boolean) {
  const x0 = Math.round(box.x), y0 = Math.round(box.y), x1 = Math.round(box.x + box.width), y1 = Math.round(box.y + box.height);
  const dash = 3 * thickness;
  const on = (i: number) => !dotted || Math.floor(i / dash) % 2 === 0;
  for (let x = x0; x <= x1; x++) {
    if (!on(x - x0)) continue;
    fillRect(rgb, x, y0, 1, thickness, colour);
    fillRect(rgb, x, y1 - thickness + 1, 1, thickness, colour);
  }
  for (let y = y0; y <= y1; y++) {
    if (!on(y - y0)) continue;
    fillRect(rgb, x0, y, thickness, 1, colour);
    fillRect(rgb, x1 - thickness + 1, y, thickness, 1, colour);
  }
}

/** Width in pixels of a line of text at a scale (6 columns per character). */
export const textWidth = (line: string, scale: number) => line.length * 6 * scale;
export const TEXT_HEIGHT = 7;

/** Draws upper-case text with its top-left at (x, y), on a black band so it reads on any image. */
export function drawText(rgb: RgbImage, line: string, x: number, y: number, scale: number, colour: Colour = COLOURS.text) {
  const text = line.toUpperCase();
  fillRect(rgb, x - scale, y - scale, textWidth(text, scale) + scale, (TEXT_HEIGHT + 2) * scale, [0, 0, 0]);
  [...text].forEach((ch, index) => {
    const glyph = FONT[ch] ?? FONT[' '];
    for (let row = 0; row < TEXT_HEIGHT; row++) {
      for (let col = 0; col < 5; col++) {
        if (glyph[row] & (1 << (4 - col))) fillRect(rgb, x + (index * 6 + col) * scale, y + row * scale, scale, scale, colour);
      }
    }
  });
}
