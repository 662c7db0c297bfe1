import { parseMediaType } from '../lib/media-type.js';
import type { TransferSyntax } from '../../dicom/index.js';

/**
 * What DICOMweb clients ask for: QIDO query keys (by keyword or tag), and Accept headers with
 * transfer-syntax parameters (PS3.18 §8.7). Pure functions, used by dicomweb-read.ts.
 */

const EXPLICIT_LITTLE = '1.2.840.10008.1.2.1';

/** QIDO keys we match on, by keyword, with their tags (a client may send either). */
const KEY_TAGS = {
  StudyInstanceUID: '0020000D',
  PatientID: '00100020',
  PatientName: '00100010',
  AccessionNumber: '00080050',
  StudyDate: '00080020',
  ModalitiesInStudy: '00080061',
  Modality: '00080060',
  SeriesInstanceUID: '0020000E',
  SOPInstanceUID: '00080018',
  SOPClassUID: '00080016',
} as const;
export type QidoKey = keyof typeof KEY_TAGS;

const KEYS_BY_LEVEL: Record<'study' | 'series' | 'instance', QidoKey[]> = {
  study: ['StudyInstanceUID', 'PatientID', 'PatientName', 'AccessionNumber', 'StudyDate', 'ModalitiesInStudy'],
  // The study is in the path; a client repeating its UID is matching, not asking something new.
  series: ['StudyInstanceUID', 'Modality', 'SeriesInstanceUID'],
  instance: ['StudyInstanceUID', 'SeriesInstanceUID', 'SOPInstanceUID', 'SOPClassUID', 'Modality'],
};
const BY_TAG = new Map<string, QidoKey>(Object.entries(KEY_TAGS).map(([keyword, tag]) => [tag, keyword as QidoKey]));

export interface QidoQuery {
  keys: Partial<Record<QidoKey, string>>;
  /** Query keys (and parameters) we did not act on: named in a Warning header. */
  ignored: string[];
  limit: number;
  offset: number;
}

const first = (value: unknown): string => (Array.isArray(value) ? value.map(String).join(',') : String(value ?? ''));

export function qidoQuery(query: Record<string, unknown>, level: keyof typeof KEYS_BY_LEVEL): QidoQuery {
  const keys: QidoQuery['keys'] = {};
  const ignored: string[] = [];
  let limit = 100;
  let offset = 0;
  for (const [name, raw] of Object.entries(query)) {
    const value = first(raw);
    if (name === 'limit') { limit = Math.min(1000, Math.max(1, Number(value) || 100)); continue; }
    if (name === 'offset') { offset = Math.max(0, Number(value) || 0); continue; }
    // We always return the attributes we have; includefield cannot add any we do not keep.
    if (name === 'includefield') continue;
    if (name === 'fuzzymatching') { if (value === 'true') ignored.push('fuzzymatching'); continue; }
    const keyword = (BY_TAG.get(name.toUpperCase()) ?? name) as QidoKey;
    if (!KEYS_BY_LEVEL[level].includes(keyword)) { ignored.push(name); continue; }
    if (value !== '' && value !== '*') keys[keyword] = value;
  }
  return { keys, ignored, limit, offset };
}

/** PS3.18 §8.3.3.2 / RFC 7234: a 299 warning naming what the search did not use. */
export function warningHeader(ignored: string[]): string {
  const names = ignored.map((n) => n.replace(/[^\w.-]/g, '')).join(', ');
  return `299 fracture-triage "These query keys are not supported and were ignored: ${names}"`;
}

interface MediaRange { essence: string; type?: string; transferSyntax?: string }

/** The Accept header's media ranges, in order (q-values are not used). No header means anything. */
function mediaRanges(accept: string | undefined): MediaRange[] {
  if (!accept) return [{ essence: '*/*' }];
  const ranges: MediaRange[] = [];
  for (const piece of accept.split(/,(?=(?:[^"]*"[^"]*")*[^"]*$)/)) {
    const text = piece.trim();
    if (/^\*\/\*/.test(text)) { ranges.push({ essence: '*/*' }); continue; }
    const parsed = parseMediaType(text);
    if (!parsed) continue;
    ranges.push({ essence: parsed.essence, type: parsed.params.type?.toLowerCase(), transferSyntax: parsed.params['transfer-syntax'] });
  }
  return ranges;
}

/** WADO-RS instances: may the stored syntax be sent? (We never transcode.) */
export function acceptableInstanceSyntax(accept: string | undefined, stored: string): boolean {
  return mediaRanges(accept).some((range) => {
    const inner = range.essence === 'multipart/related' ? range.type ?? 'application/dicom' : range.essence;
    if (!['*/*', 'application/dicom', 'application/*', 'multipart/related'].includes(inner) && inner !== '*') return false;
    return !range.transferSyntax || range.transferSyntax === '*' || range.transferSyntax === stored;
  });
}

/** The media type a compressed frame of this syntax travels as (PS3.18 Table 8.7.3-2). */
function pixelMediaType(syntax: TransferSyntax): string {
  switch (syntax.codec) {
    case 'jpeg-dct': case 'jpeg-lossless': return 'image/jpeg';
    case 'jpeg-ls': return 'image/jls';
    case 'j2k': return 'image/jp2';
    case 'rle': return 'image/x-dicom-rle';
    default: return 'application/octet-stream';
  }
}

/**
 * WADO-RS frames: what we send for the first media range of Accept we can honour, or undefined
 * (→ 406). Uncompressed originals go as application/octet-stream, Explicit VR Little Endian;
 * compressed ones only in their stored syntax (as their image type, or octet-stream with transfer-syntax).
 */
export function acceptableFrameSyntax(accept: string | undefined, syntax: TransferSyntax): { mediaType: string; transferSyntaxUid: string } | undefined {
  const native = syntax.codec === 'native' || syntax.codec === 'deflate';
  const media = pixelMediaType(syntax);
  for (const range of mediaRanges(accept)) {
    const inner = range.essence === 'multipart/related' ? range.type ?? 'application/octet-stream' : range.essence;
    const ts = range.transferSyntax;
    if (inner === '*/*' || inner === '*') {
      return native ? { mediaType: 'application/octet-stream', transferSyntaxUid: EXPLICIT_LITTLE } : { mediaType: media, transferSyntaxUid: syntax.uid };
    }
    if (inner === 'application/octet-stream') {
      if (native && (!ts || ts === '*' || ts === EXPLICIT_LITTLE)) return { mediaType: inner, transferSyntaxUid: EXPLICIT_LITTLE };
      if (!native && (ts === '*' || ts === syntax.uid)) return { mediaType: inner, transferSyntaxUid: syntax.uid };
      continue;
    }
    if (!native && inner === media && (!ts || ts === '*' || ts === syntax.uid)) return { mediaType: media, transferSyntaxUid: syntax.uid };
  }
  return undefined;
}
