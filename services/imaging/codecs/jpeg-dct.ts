/**
 * Sequential DCT JPEG decoder (ITU T.81 processes 1, 2 and 4: Huffman, 8- or 12-bit precision),
 * greyscale. Used for JPEG Extended 12-bit, which the 8-bit libjpeg-turbo WASM build cannot decode.
 * The inverse DCT is the IJG "islow" integer algorithm (jidctint.c), the one libijg12 in dcmtk uses,
 * so the output matches dcmdjpeg pixel for pixel.
 */
import { PixelDataError } from '../errors.js';

const ZIGZAG = new Int32Array([
  0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28, 35,
  42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
]);

const LOOK = 9;

interface Huffman {
  maxcode: Int32Array; // per length 1..16, -1 if none
  valptr: Int32Array;
  mincode: Int32Array;
  values: Uint8Array;
  /** For codes of at most LOOK bits: (length << 8) | value, indexed by the next LOOK bits; 0 = longer code. */
  lookup: Uint16Array;
}

function bad(msg: string): never {
  throw new PixelDataError('corrupt-pixel-data', `JPEG: ${msg}`);
}

function buildHuffman(counts: Uint8Array, values: Uint8Array): Huffman {
  const maxcode = new Int32Array(18).fill(-1);
  const valptr = new Int32Array(17);
  const mincode = new Int32Array(17);
  let code = 0;
  let k = 0;
  for (let len = 1; len <= 16; len++) {
    valptr[len] = k;
    mincode[len] = code;
    code += counts[len - 1];
    k += counts[len - 1];
    maxcode[len] = counts[len - 1] ? code - 1 : -1;
    code <<= 1;
  }
  maxcode[17] = 0x7fffffff;
  const lookup = new Uint16Array(1 << LOOK);
  for (let len = 1, k = 0, c = 0; len <= LOOK; len++, c <<= 1) {
    for (let i = 0; i < counts[len - 1]; i++, k++, c++) {
      const shift = LOOK - len;
      if (k < values.length) lookup.fill((len << 8) | values[k], c << shift, (c + 1) << shift);
    }
  }
  return { maxcode, valptr, mincode, values, lookup };
}

export interface DctResult {
  width: number;
  height: number;
  precision: number;
  samples: Uint16Array;
  /** What IJG would warn about (the decode went on with invented data); the caller treats these as errors. */
  warnings: string[];
}

export function decodeJpegDct(data: Uint8Array): DctResult {
  let pos = 0;
  const u16 = () => {
    if (pos + 2 > data.length) bad('unexpected end of data');
    const v = (data[pos] << 8) | data[pos + 1];
    pos += 2;
    return v;
  };
  if (u16() !== 0xffd8) bad('no SOI marker');
  const qt: Int32Array[] = [];
  const dcTables: Huffman[] = [];
  const acTables: Huffman[] = [];
  let restartInterval = 0;
  let width = 0;
  let height = 0;
  let precision = 8;
  let component: { id: number; tq: number } | undefined;
  let out: Uint16Array | undefined;
  const warnings: string[] = [];

  for (;;) {
    let marker = u16();
    while (marker === 0xffff) {
      pos--;
      marker = u16();
    }
    if (marker >> 8 !== 0xff) bad(`expected a marker at byte ${pos - 2}`);
    if (marker === 0xffd9) break; // EOI
    const len = u16();
    const end = pos - 2 + len;
    if (len < 2 || end > data.length) bad(`segment ${marker.toString(16)} runs past the end`);
    switch (marker) {
      case 0xffdb: // DQT
        while (pos < end) {
          const pq = data[pos] >> 4;
          const tq = data[pos] & 15;
          pos++;
          const t = new Int32Array(64);
          for (let i = 0; i < 64; i++) {
            t[ZIGZAG[i]] = pq ? (data[pos] << 8) | data[pos + 1] : data[pos];
            pos += pq ? 2 : 1;
          }
          qt[tq] = t;
        }
        break;
      case 0xffc4: // DHT
        while (pos < end) {
          const tc = data[pos] >> 4;
          const th = data[pos] & 15;
          const counts = data.subarray(pos + 1, pos + 17);
          let total = 0;
          for (let i = 0; i < 16; i++) total += counts[i];
          const values = data.subarray(pos + 17, pos + 17 + total);
          if (pos + 17 + total > end) bad('Huffman table runs past its segment');
          (tc === 0 ? dcTables : acTables)[th] = buildHuffman(counts, values);
          pos += 17 + total;
        }
        break;
      case 0xffdd:
        restartInterval = (data[pos] << 8) | data[pos + 1];
        break;
      case 0xffc0:
      case 0xffc1: {
        precision = data[pos];
        height = (data[pos + 1] << 8) | data[pos + 2];
        width = (data[pos + 3] << 8) | data[pos + 4];
        const nc = data[pos + 5];
        if (precision !== 8 && precision !== 12) bad(`sample precision ${precision} (8 or 12 expected)`);
        if (nc !== 1) bad(`${nc} components in a greyscale frame`);
        if (!width || !height) bad('zero image size');
        component = { id: data[pos + 6], tq: data[pos + 8] };
        break;
      }
      case 0xffc2:
      case 0xffc3:
      case 0xffc5:
      case 0xffc6:
      case 0xffc7:
      case 0xffc9:
      case 0xffca:
      case 0xffcb:
      case 0xffcd:
      case 0xffce:
      case 0xffcf:
        bad(`unsupported JPEG process (SOF${(marker & 15).toString()}): only sequential Huffman DCT is decoded here`);
        break;
      case 0xffda: {
        if (!component) bad('scan before frame header');
        const ns = data[pos];
        if (ns !== 1) bad('scan with more than one component');
        const td = data[pos + 2] >> 4;
        const ta = data[pos + 2] & 15;
        pos = end;
        const q = qt[component.tq];
        const dc = dcTables[td];
        const ac = acTables[ta];
        if (!q || !dc || !ac) bad('scan refers to a missing table');
        out = new Uint16Array(width * height);
        pos = decodeScan(data, pos, width, height, precision, q, dc, ac, restartInterval, out, warnings);
        continue;
      }
      default:
        break; // APPn, COM, etc.
    }
    pos = end;
  }
  if (!out) bad('no scan data');
  return { width, height, precision, samples: out, warnings };
}

function decodeScan(
  data: Uint8Array,
  start: number,
  width: number,
  height: number,
  precision: number,
  q: Int32Array,
  dcT: Huffman,
  acT: Huffman,
  restartInterval: number,
  out: Uint16Array,
  warnings: string[],
): number {
  let pos = start;
  // Bit reservoir: `cnt` valid bits in the low bits of `acc` (at most 24).
  let acc = 0;
  let cnt = 0;
  let hitMarker = false;
  // Zero bits fed after a marker; if any were consumed, the data ended early (IJG's JWRN_HIT_MARKER).
  let invented = 0;
  const checkEnded = () => {
    if (invented > cnt && !warnings.length) warnings.push('Corrupt JPEG data: premature end of data segment');
  };
  const n = data.length;
  const fill = () => {
    while (cnt <= 16) {
      let byte = 0;
      if (!hitMarker && pos < n) {
        byte = data[pos];
        if (byte === 0xff) {
          if (data[pos + 1] === 0) pos += 2;
          else {
            hitMarker = true; // a marker: feed zeros, as IJG does
            byte = 0;
            invented += 8;
          }
        } else pos++;
      } else invented += 8;
      acc = ((acc << 8) | byte) & 0xffffff;
      cnt += 8;
    }
  };
  const receive = (k: number): number => {
    if (k === 0) return 0;
    fill();
    cnt -= k;
    return (acc >> cnt) & ((1 << k) - 1);
  };
  const extend = (v: number, k: number) => (k === 0 ? 0 : v < 1 << (k - 1) ? v - (1 << k) + 1 : v);
  const decodeHuff = (h: Huffman): number => {
    fill();
    const e = h.lookup[(acc >> (cnt - LOOK)) & ((1 << LOOK) - 1)];
    if (e) {
      cnt -= e >> 8;
      return e & 0xff;
    }
    for (let len = LOOK + 1; len <= 16; len++) {
      const code = (acc >> (cnt - len)) & ((1 << len) - 1);
      if (h.maxcode[len] >= 0 && code <= h.maxcode[len]) {
        cnt -= len;
        const idx = h.valptr[len] + code - h.mincode[len];
        if (idx >= h.values.length) bad('bad Huffman code');
        return h.values[idx];
      }
    }
    bad('bad Huffman code');
  };

  const bw = Math.ceil(width / 8);
  const bh = Math.ceil(height / 8);
  const coef = new Int32Array(64);
  const block = new Int32Array(64);
  const ws = new Float64Array(64);
  const center = 1 << (precision - 1);
  const maxv = (1 << precision) - 1;
  const pass1 = precision === 8 ? 2 : 1;
  let pred = 0;
  let mcu = 0;
  const totalBlocks = bw * bh;
  for (let b = 0; b < totalBlocks; b++) {
    if (restartInterval && mcu === restartInterval) {
      // Expect RSTn: drop the reservoir, byte-align and skip the marker.
      checkEnded();
      invented = 0;
      acc = 0;
      cnt = 0;
      hitMarker = false;
      while (pos + 1 < data.length && !(data[pos] === 0xff && data[pos + 1] >= 0xd0 && data[pos + 1] <= 0xd7)) pos++;
      if (pos + 1 >= data.length) bad('restart marker missing');
      pos += 2;
      pred = 0;
      mcu = 0;
    }
    mcu++;
    coef.fill(0);
    const t = decodeHuff(dcT);
    if (t > 16) bad('DC difference category out of range');
    pred += extend(receive(t), t);
    coef[0] = pred * q[0];
    for (let k = 1; k < 64; ) {
      const rs = decodeHuff(acT);
      const r = rs >> 4;
      const s = rs & 15;
      if (s === 0) {
        if (r === 15) {
          k += 16;
          continue;
        }
        break;
      }
      k += r;
      if (k > 63) bad('AC coefficient index out of range');
      const z = ZIGZAG[k];
      coef[z] = extend(receive(s), s) * q[z];
      k++;
    }
    idctIslow(coef, block, ws, pass1, center, maxv);
    const bx = (b % bw) * 8;
    const by = Math.floor(b / bw) * 8;
    for (let y = 0; y < 8; y++) {
      const oy = by + y;
      if (oy >= height) break;
      for (let x = 0; x < 8; x++) {
        const ox = bx + x;
        if (ox >= width) break;
        out[oy * width + ox] = block[y * 8 + x];
      }
    }
  }
  checkEnded();
  // Skip to the next marker after the scan.
  while (pos + 1 < data.length && !(data[pos] === 0xff && data[pos + 1] !== 0 && !(data[pos + 1] >= 0xd0 && data[pos + 1] <= 0xd7))) pos++;
  return pos;
}

const CONST_BITS = 13;
const F0298 = 2446, F0390 = 3196, F0541 = 4433, F0765 = 6270, F0899 = 7373, F1175 = 9633;
const F1501 = 12299, F1847 = 15137, F1961 = 16069, F2053 = 16819, F2562 = 20995, F3072 = 25172;

function descale(x: number, n: number): number {
  return Math.floor((x + 2 ** (n - 1)) * 2 ** -n); // exact: power-of-two scaling of an integer-valued double
}

/** IJG jpeg_idct_islow with 64-bit intermediates (doubles are exact here), output range-limited. */
function idctIslow(inp: Int32Array, out: Int32Array, ws: Float64Array, PASS1: number, center: number, maxv: number) {
  const C = 2 ** CONST_BITS;
  for (let c = 0; c < 8; c++) {
    if (!inp[8 + c] && !inp[16 + c] && !inp[24 + c] && !inp[32 + c] && !inp[40 + c] && !inp[48 + c] && !inp[56 + c]) {
      const dc = inp[c] * 2 ** PASS1;
      for (let r = 0; r < 8; r++) ws[r * 8 + c] = dc;
      continue;
    }
    let z2 = inp[16 + c];
    let z3 = inp[48 + c];
    let z1 = (z2 + z3) * F0541;
    let tmp2 = z1 + z3 * -F1847;
    let tmp3 = z1 + z2 * F0765;
    z2 = inp[c];
    z3 = inp[32 + c];
    let tmp0 = (z2 + z3) * C;
    let tmp1 = (z2 - z3) * C;
    const tmp10 = tmp0 + tmp3;
    const tmp13 = tmp0 - tmp3;
    const tmp11 = tmp1 + tmp2;
    const tmp12 = tmp1 - tmp2;
    tmp0 = inp[56 + c];
    tmp1 = inp[40 + c];
    tmp2 = inp[24 + c];
    tmp3 = inp[8 + c];
    z1 = tmp0 + tmp3;
    z2 = tmp1 + tmp2;
    z3 = tmp0 + tmp2;
    let z4 = tmp1 + tmp3;
    const z5 = (z3 + z4) * F1175;
    tmp0 *= F0298;
    tmp1 *= F2053;
    tmp2 *= F3072;
    tmp3 *= F1501;
    z1 *= -F0899;
    z2 *= -F2562;
    z3 = z3 * -F1961 + z5;
    z4 = z4 * -F0390 + z5;
    tmp0 += z1 + z3;
    tmp1 += z2 + z4;
    tmp2 += z2 + z3;
    tmp3 += z1 + z4;
    const n = CONST_BITS - PASS1;
    ws[c] = descale(tmp10 + tmp3, n);
    ws[56 + c] = descale(tmp10 - tmp3, n);
    ws[8 + c] = descale(tmp11 + tmp2, n);
    ws[48 + c] = descale(tmp11 - tmp2, n);
    ws[16 + c] = descale(tmp12 + tmp1, n);
    ws[40 + c] = descale(tmp12 - tmp1, n);
    ws[24 + c] = descale(tmp13 + tmp0, n);
    ws[32 + c] = descale(tmp13 - tmp0, n);
  }
  const n2 = CONST_BITS + PASS1 + 3;
  const lim = (v: number) => (v < 0 ? 0 : v > maxv ? maxv : v);
  for (let r = 0; r < 8; r++) {
    const w = r * 8;
    if (!ws[w + 1] && !ws[w + 2] && !ws[w + 3] && !ws[w + 4] && !ws[w + 5] && !ws[w + 6] && !ws[w + 7]) {
      const v = lim(descale(ws[w], PASS1 + 3) + center);
      for (let k = 0; k < 8; k++) out[w + k] = v;
      continue;
    }
    let z2 = ws[w + 2];
    let z3 = ws[w + 6];
    let z1 = (z2 + z3) * F0541;
    let tmp2 = z1 + z3 * -F1847;
    let tmp3 = z1 + z2 * F0765;
    let tmp0 = (ws[w] + ws[w + 4]) * C;
    let tmp1 = (ws[w] - ws[w + 4]) * C;
    const tmp10 = tmp0 + tmp3;
    const tmp13 = tmp0 - tmp3;
    const tmp11 = tmp1 + tmp2;
    const tmp12 = tmp1 - tmp2;
    tmp0 = ws[w + 7];
    tmp1 = ws[w + 5];
    tmp2 = ws[w + 3];
    tmp3 = ws[w + 1];
    z1 = tmp0 + tmp3;
    z2 = tmp1 + tmp2;
    z3 = tmp0 + tmp2;
    let z4 = tmp1 + tmp3;
    const z5 = (z3 + z4) * F1175;
    tmp0 *= F0298;
    tmp1 *= F2053;
    tmp2 *= F3072;
    tmp3 *= F1501;
    z1 *= -F0899;
    z2 *= -F2562;
    z3 = z3 * -F1961 + z5;
    z4 = z4 * -F0390 + z5;
    tmp0 += z1 + z3;
    tmp1 += z2 + z4;
    tmp2 += z2 + z3;
    tmp3 += z1 + z4;
    out[w] = lim(descale(tmp10 + tmp3, n2) + center);
    out[w + 7] = lim(descale(tmp10 - tmp3, n2) + center);
    out[w + 1] = lim(descale(tmp11 + tmp2, n2) + center);
    out[w + 6] = lim(descale(tmp11 - tmp2, n2) + center);
    out[w + 2] = lim(descale(tmp12 + tmp1, n2) + center);
    out[w + 5] = lim(descale(tmp12 - tmp1, n2) + center);
    out[w + 3] = lim(descale(tmp13 + tmp0, n2) + center);
    out[w + 4] = lim(descale(tmp13 - tmp0, n2) + center);
  }
}
