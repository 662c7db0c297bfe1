/**
 * A seeded, structure-aware mutator for DICOM files. Same seed → same cases, so a failure found in
 * a 10,000-case run can be replayed from its case number alone (and is also saved as a fixture).
 *
 * Mutations: bit flips, interesting bytes, truncation, element lengths made huge / "negative"
 * (≥ 2³¹) / undefined / odd, undefined-length sequences nested deep (terminated or not), bogus
 * transfer syntaxes (meta header rewritten, group length fixed or stale), Basic Offset Table and
 * fragment lengths pointing anywhere, pixel data shorter than declared, absurd Rows / Columns /
 * Bits Allocated / Number of Frames, chunk splices between seed files. One to three per case.
 */
import fs from 'node:fs';
import path from 'node:path';
import { LONG_LENGTH_VRS, VRS, parseInstance } from '../../../services/dicom/index.js';
import { makeDx } from '../../helpers/dicom.js';

export type Rng = () => number;

/** mulberry32: tiny, fast, good enough for fuzzing. */
export function rng(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const int = (r: Rng, n: number) => Math.floor(r() * n);
const pick = <T>(r: Rng, xs: readonly T[]): T => xs[int(r, xs.length)];

export interface Seed {
  name: string;
  bytes: Buffer;
  /** Replaced per case (same length) so accepted mutants are new instances, not resends. */
  sopInstanceUid?: string;
}

const root = path.resolve(import.meta.dirname, '../../..');

/**
 * Valid inputs to start from: small generated DX images (explicit and implicit VR, with and without
 * preamble) and the committed samples in compressed syntaxes (JPEG Lossless, JPEG-LS, RLE, Deflated,
 * JPEG 2000). The 420 KB uncompressed samples are left out: generated images cover native pixels.
 */
export async function loadSeeds(): Promise<Seed[]> {
  // Fixed UIDs: the same run seed gives the same bytes on every machine.
  const ids = (n: number) => ({ studyUid: `1.2.826.0.1.3680043.10.1431.77.${n}.1`, seriesUid: `1.2.826.0.1.3680043.10.1431.77.${n}.2`, sopInstanceUid: `1.2.826.0.1.3680043.10.1431.77.${n}.3000000000` });
  const seeds: Seed[] = [
    { name: 'dx-32-explicit', bytes: makeDx(ids(1)).bytes },
    { name: 'dx-64-implicit', bytes: makeDx({ ...ids(2), rows: 64, columns: 48, write: { transferSyntaxUid: '1.2.840.10008.1.2' } }).bytes },
    { name: 'dx-16-bare', bytes: makeDx({ ...ids(3), rows: 16, columns: 16, write: { bare: true } }).bytes },
    { name: 'dx-128-explicit', bytes: makeDx({ ...ids(4), rows: 128, columns: 128, bodyPart: 'WRIST', priority: 'STAT' }).bytes },
  ];
  for (const dir of ['samples/fracatlas', 'samples/real-cr']) {
    const full = path.join(root, dir);
    if (!fs.existsSync(full)) continue;
    for (const file of fs.readdirSync(full).sort()) {
      const bytes = fs.readFileSync(path.join(full, file));
      if (bytes.length > 300_000) continue;
      seeds.push({ name: file, bytes });
    }
  }
  for (const seed of seeds) seed.sopInstanceUid = (await parseInstance(seed.bytes)).sopInstanceUid;
  return seeds;
}


interface ElementAt {
  offset: number;
  group: number;
  element: number;
  vr?: string;
  lengthAt: number;
  lengthSize: 2 | 4;
}

/** Element headers found by pattern (explicit VR little endian), plus implicit-VR known tags. */
function elements(buf: Buffer): ElementAt[] {
  const found: ElementAt[] = [];
  for (let i = 0; i + 8 <= buf.length; i++) {
    const vr = String.fromCharCode(buf[i + 4], buf[i + 5]);
    if (!VRS.has(vr)) continue;
    const group = buf.readUInt16LE(i);
    if (group !== 0x0002 && group !== 0x0008 && group !== 0x0010 && group !== 0x0018 && group !== 0x0020 && group !== 0x0028 && group !== 0x7fe0 && group !== 0x0040) continue;
    const long = LONG_LENGTH_VRS.has(vr);
    found.push({ offset: i, group, element: buf.readUInt16LE(i + 2), vr, lengthAt: long ? i + 8 : i + 6, lengthSize: long ? 4 : 2 });
  }
  if (found.length < 5) {
    // Implicit VR: known tags followed by a 4-byte length.
    const tags = [[0x0008, 0x0016], [0x0008, 0x0018], [0x0020, 0x000d], [0x0020, 0x000e], [0x0028, 0x0010], [0x0028, 0x0011], [0x0028, 0x0100], [0x0028, 0x0004], [0x7fe0, 0x0010]];
    for (const [g, e] of tags) {
      const pattern = Buffer.alloc(4);
      pattern.writeUInt16LE(g, 0);
      pattern.writeUInt16LE(e, 2);
      for (let at = buf.indexOf(pattern); at >= 0 && at + 8 <= buf.length; at = buf.indexOf(pattern, at + 1)) {
        found.push({ offset: at, group: g, element: e, lengthAt: at + 4, lengthSize: 4 });
      }
    }
  }
  return found;
}

function find(els: ElementAt[], group: number, element: number): ElementAt | undefined {
  return els.filter((e) => e.group === group && e.element === element).pop();
}

function setLength(buf: Buffer, el: ElementAt, value: number) {
  if (el.lengthSize === 2) buf.writeUInt16LE(value & 0xffff, el.lengthAt);
  else buf.writeUInt32LE(value >>> 0, el.lengthAt);
}

function explicitVr(buf: Buffer): boolean {
  return elements(buf).some((e) => e.vr && e.group !== 0x0002);
}

const TS_CHOICES = [
  '1.2.840.10008.1.2', '1.2.840.10008.1.2.1', '1.2.840.10008.1.2.2', '1.2.840.10008.1.2.1.99', '1.2.840.10008.1.2.4.50',
  '1.2.840.10008.1.2.4.51', '1.2.840.10008.1.2.4.57', '1.2.840.10008.1.2.4.70', '1.2.840.10008.1.2.4.80', '1.2.840.10008.1.2.4.81',
  '1.2.840.10008.1.2.4.90', '1.2.840.10008.1.2.4.91', '1.2.840.10008.1.2.5', '1.2.840.10008.1.2.4.100', '1.2.840.10008.1.2.4.201',
  '9.9.9', '', '1.2.840.10008.1.2.1\0\0\0\0', 'ABCDEFGHIJ', '1.2.840.10008.1.2.4.50.1.2.840.10008.1.2.4.50.1.2.840.10008.1.2.4.50.99',
];

type Mutator = (buf: Buffer, r: Rng, seeds: Seed[]) => Buffer;

const mutators: Record<string, Mutator> = {
  bitflip(buf, r) {
    const out = Buffer.from(buf);
    for (let i = 0, n = 1 + int(r, 16); i < n; i++) out[int(r, out.length)] ^= 1 << int(r, 8);
    return out;
  },
  'interesting-bytes'(buf, r) {
    const out = Buffer.from(buf);
    const values = [0x00, 0xff, 0x7f, 0x80, 0xfe, 0x01];
    // Bias towards the header, where the structure is.
    const span = r() < 0.7 ? Math.min(out.length, 2048) : out.length;
    for (let i = 0, n = 1 + int(r, 8); i < n; i++) out[int(r, span)] = pick(r, values);
    return out;
  },
  truncate(buf, r) {
    const at = r() < 0.5 ? int(r, buf.length) : buf.length - 1 - int(r, Math.min(buf.length - 1, 4096));
    return buf.subarray(0, Math.max(0, at));
  },
  'length-huge'(buf, r) {
    const els = elements(buf);
    if (!els.length) return mutators.bitflip(buf, r, []);
    const el = pick(r, els);
    const out = Buffer.from(buf);
    setLength(out, el, pick(r, [0xfffffff0, 0x7fffffff, 0x10000000, buf.length * 2, 0xfffe, 0xffff]));
    return out;
  },
  'length-negative'(buf, r) {
    const els = elements(buf).filter((e) => e.lengthSize === 4);
    if (!els.length) return mutators.bitflip(buf, r, []);
    const el = pick(r, els);
    const out = Buffer.from(buf);
    setLength(out, el, pick(r, [0x80000000, 0xfffffffe, 0xffffffff, 0x80000001 + int(r, 0x7ffffff0)]));
    return out;
  },
  'length-off-by'(buf, r) {
    const els = elements(buf);
    if (!els.length) return mutators.bitflip(buf, r, []);
    const el = pick(r, els);
    const out = Buffer.from(buf);
    const current = el.lengthSize === 2 ? out.readUInt16LE(el.lengthAt) : out.readUInt32LE(el.lengthAt);
    setLength(out, el, Math.max(0, current + pick(r, [-3, -2, -1, 1, 2, 3, 7, 8, -8])));
    return out;
  },
  'deep-sequence'(buf, r) {
    const els = elements(buf);
    const pixel = find(els, 0x7fe0, 0x0010);
    const at = pixel ? pixel.offset : Math.floor(buf.length / 2);
    const explicit = explicitVr(buf);
    const depth = pick(r, [64, 1000, 10_000, 100_000, 300_000]);
    const terminated = r() < 0.5;
    const sq = explicit
      ? Buffer.from([0x09, 0x00, 0x00, 0x10, 0x53, 0x51, 0, 0, 0xff, 0xff, 0xff, 0xff])
      : Buffer.from([0x09, 0x00, 0x00, 0x10, 0xff, 0xff, 0xff, 0xff]);
    const item = Buffer.from([0xfe, 0xff, 0x00, 0xe0, 0xff, 0xff, 0xff, 0xff]);
    const itemEnd = Buffer.from([0xfe, 0xff, 0x0d, 0xe0, 0, 0, 0, 0]);
    const seqEnd = Buffer.from([0xfe, 0xff, 0xdd, 0xe0, 0, 0, 0, 0]);
    const open = Buffer.alloc(depth * (sq.length + item.length));
    for (let i = 0; i < depth; i++) {
      sq.copy(open, i * (sq.length + item.length));
      item.copy(open, i * (sq.length + item.length) + sq.length);
    }
    const closing = terminated ? Buffer.concat(Array.from({ length: depth }, () => Buffer.concat([itemEnd, seqEnd]))) : Buffer.alloc(0);
    return Buffer.concat([buf.subarray(0, at), open, closing, buf.subarray(at)]);
  },
  'bogus-transfer-syntax'(buf, r) {
    const ts = find(elements(buf), 0x0002, 0x0010);
    if (!ts || !ts.vr) return mutators['interesting-bytes'](buf, r, []);
    const oldLength = buf.readUInt16LE(ts.lengthAt);
    const raw = pick(r, TS_CHOICES);
    const value = Buffer.from(raw.length % 2 ? `${raw}\0` : raw, 'latin1');
    const head = Buffer.from(buf.subarray(0, ts.lengthAt));
    const len = Buffer.alloc(2);
    len.writeUInt16LE(value.length);
    const out = Buffer.concat([head, len, value, buf.subarray(ts.lengthAt + 2 + oldLength)]);
    // Fix (0002,0000) most of the time; sometimes leave it stale.
    const groupLength = find(elements(out), 0x0002, 0x0000);
    if (groupLength && groupLength.vr === 'UL' && r() < 0.8) out.writeUInt32LE((out.readUInt32LE(groupLength.lengthAt + 2) + value.length - oldLength) >>> 0, groupLength.lengthAt + 2);
    return out;
  },
  'fragment-table'(buf, r) {
    const pixel = find(elements(buf), 0x7fe0, 0x0010);
    if (!pixel || pixel.lengthSize !== 4 || buf.readUInt32LE(pixel.lengthAt) !== 0xffffffff) return mutators['length-huge'](buf, r, []);
    const botAt = pixel.lengthAt + 4; // FFFE,E000 item: the Basic Offset Table
    if (botAt + 8 > buf.length) return buf;
    const out = Buffer.from(buf);
    const botLength = out.readUInt32LE(botAt + 4);
    const choice = int(r, 4);
    if (choice === 0 && botLength >= 4) {
      // Offsets pointing anywhere.
      for (let o = 0; o < botLength; o += 4) out.writeUInt32LE(pick(r, [0xffffffff, 0x7fffffff, int(r, buf.length * 2), 3]), botAt + 8 + o);
      return out;
    }
    if (choice === 1) {
      // Insert a Basic Offset Table with many entries that point past the end or into the middle of a fragment.
      const n = pick(r, [1, 2, 17, 1000]);
      const table = Buffer.alloc(n * 4);
      for (let i = 0; i < n; i++) table.writeUInt32LE(pick(r, [int(r, buf.length), 0xfffffff0, i * 3]), i * 4);
      const header = Buffer.from([0xfe, 0xff, 0x00, 0xe0, 0, 0, 0, 0]);
      header.writeUInt32LE(table.length, 4);
      return Buffer.concat([out.subarray(0, botAt), header, table, out.subarray(botAt + 8 + botLength)]);
    }
    // A fragment item's length made wrong.
    let at = botAt + 8 + botLength;
    const items: number[] = [];
    while (at + 8 <= out.length && out.readUInt16LE(at) === 0xfffe && out.readUInt16LE(at + 2) === 0xe000) {
      items.push(at);
      at += 8 + out.readUInt32LE(at + 4);
    }
    if (!items.length) return out;
    const item = pick(r, items);
    out.writeUInt32LE(pick(r, [0, 1, 0xffffffff, 0x7ffffffe, out.readUInt32LE(item + 4) + 2, Math.max(0, out.readUInt32LE(item + 4) - 1)]), item + 4);
    return out;
  },
  'pixel-short'(buf, r) {
    const pixel = find(elements(buf), 0x7fe0, 0x0010);
    if (!pixel) return mutators.truncate(buf, r, []);
    const valueAt = pixel.lengthAt + pixel.lengthSize;
    const declared = pixel.lengthSize === 4 ? buf.readUInt32LE(pixel.lengthAt) : buf.readUInt16LE(pixel.lengthAt);
    if (declared === 0xffffffff) return buf.subarray(0, valueAt + int(r, buf.length - valueAt));
    const keep = int(r, Math.max(1, declared));
    const out = Buffer.from(buf.subarray(0, valueAt + keep));
    // Half the time fix the length so the data set itself is consistent but too short for Rows × Columns.
    if (r() < 0.5) setLength(out, pixel, keep & ~1);
    return out.subarray(0, valueAt + (keep & ~1));
  },
  'absurd-dimensions'(buf, r) {
    const els = elements(buf);
    const targets = [[0x0028, 0x0010], [0x0028, 0x0011], [0x0028, 0x0100], [0x0028, 0x0101], [0x0028, 0x0002], [0x0028, 0x0103]]
      .map(([g, e]) => find(els, g, e)).filter((e): e is ElementAt => !!e);
    if (!targets.length) return mutators.bitflip(buf, r, []);
    const out = Buffer.from(buf);
    for (let i = 0, n = 1 + int(r, 3); i < n; i++) {
      const el = pick(r, targets);
      const valueAt = el.lengthAt + el.lengthSize;
      if (valueAt + 2 <= out.length) out.writeUInt16LE(pick(r, [0, 1, 3, 7, 33, 65535, 32768, 8, 64]), valueAt);
    }
    if (r() < 0.3) {
      // Number of Frames (IS) in front of the pixel data.
      const pixel = find(els, 0x7fe0, 0x0010);
      if (pixel && pixel.vr) {
        const frames = Buffer.from([0x28, 0x00, 0x08, 0x00, 0x49, 0x53, 0x0a, 0x00, ...Buffer.from(pick(r, ['999999999 ', '-1        ', '0         ', '2147483648']), 'latin1')]);
        return Buffer.concat([out.subarray(0, pixel.offset), frames, out.subarray(pixel.offset)]);
      }
    }
    return out;
  },
  splice(buf, r, seeds) {
    const other = pick(r, seeds).bytes;
    const len = 1 + int(r, Math.min(4096, other.length));
    const from = int(r, other.length - len + 1);
    const at = int(r, buf.length);
    const replace = r() < 0.5 ? len : 0;
    return Buffer.concat([buf.subarray(0, at), other.subarray(from, from + len), buf.subarray(Math.min(buf.length, at + replace))]);
  },
  'delete-chunk'(buf, r) {
    const at = int(r, buf.length);
    const len = 1 + int(r, Math.min(512, buf.length - at));
    return Buffer.concat([buf.subarray(0, at), buf.subarray(at + len)]);
  },
};

export const MUTATION_NAMES = Object.keys(mutators);

export interface FuzzCase {
  index: number;
  seed: string;
  mutations: string[];
  bytes: Buffer;
}

/** Case `index` of the run seeded with `runSeed`: reproducible on its own. */
export function fuzzCase(runSeed: number, index: number, seeds: Seed[]): FuzzCase {
  const r = rng((runSeed * 1_000_003 + index) >>> 0);
  const seed = pick(r, seeds);
  const names: string[] = [];
  let bytes = uniquify(seed, index);
  for (let i = 0, n = 1 + (r() < 0.3 ? int(r, 3) : 0); i < n; i++) {
    const name = pick(r, MUTATION_NAMES);
    names.push(name);
    bytes = mutators[name](bytes, r, seeds);
  }
  return { index, seed: seed.name, mutations: names, bytes };
}

/** The seed with its SOP Instance UID (every uncompressed copy of it) changed to one unique to this case, same length. */
function uniquify(seed: Seed, index: number): Buffer {
  const uid = seed.sopInstanceUid;
  if (!uid || uid.length < 12) return seed.bytes;
  const suffix = `9${String(index).padStart(9, '0')}`;
  const fresh = Buffer.from(uid.slice(0, uid.length - suffix.length) + suffix, 'latin1');
  const needle = Buffer.from(uid, 'latin1');
  const out = Buffer.from(seed.bytes);
  for (let at = out.indexOf(needle); at >= 0; at = out.indexOf(needle, at + needle.length)) fresh.copy(out, at);
  return out;
}
