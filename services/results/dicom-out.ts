/**
 * The one door through which results/ reads and writes DICOM: data sets are built as plain items
 * and encoded by the project's Part 10 writer (services/dicom). Also: coded concepts,
 * deterministic UIDs and the source attributes we copy byte for byte.
 */
import { createHash } from 'node:crypto';
import { rawString, readDicom, writePart10, type DicomItem } from '../dicom/index.js';

export type { DicomItem };

/** Our private coding scheme (PS3.16 8.2: designators starting "99" are local). */
export const LOCAL_SCHEME = '99FRACTRIAGE';

export interface Code { value: string; scheme: string; meaning: string }
export const code = (value: string, scheme: string, meaning: string): Code => ({ value, scheme, meaning });

/** A Code Sequence item (Basic Code Sequence macro). */
export function codeItem(c: Code): DicomItem {
  return {
    '00080100': { vr: 'SH', value: c.value },
    '00080102': { vr: 'SH', value: c.scheme },
    '00080104': { vr: 'LO', value: c.meaning },
  };
}

/** FL values as little-endian bytes (the writer passes byte arrays through unchanged). */
export function floats(values: number[]): Uint8Array {
  const bytes = new Uint8Array(values.length * 4);
  const view = new DataView(bytes.buffer);
  values.forEach((v, i) => view.setFloat32(i * 4, v, true));
  return bytes;
}

/**
 * A UID under 2.25 (ISO/IEC 9834-8: a 128-bit number as decimal) derived from its inputs, so the
 * same study content always yields the same UID: a retry or resend never makes a second object.
 */
export function derivedUid(...parts: (string | number)[]): string {
  const digest = createHash('sha256').update(parts.join('\u0000')).digest();
  digest[0] &= 0x7f; // stays well below 2^128 and never starts with 0 once printed
  return `2.25.${BigInt(`0x${digest.subarray(0, 16).toString('hex')}`).toString(10)}`;
}

/** DICOM DA and TM for a moment (UTC; Timezone Offset From UTC says so). */
export function dateTime(at: number): { date: string; time: string } {
  const iso = new Date(at).toISOString();
  return { date: iso.slice(0, 10).replace(/-/g, ''), time: iso.slice(11, 19).replace(/:/g, '') };
}

/**
 * Patient and study attributes copied from a source instance as raw bytes (names stay in the
 * source's character set, which is copied too), so our objects land in the same patient and study.
 */
const COPIED_FROM_SOURCE: Record<string, string> = {
  x00080005: 'CS', // Specific Character Set
  x00080020: 'DA', // Study Date
  x00080030: 'TM', // Study Time
  x00080050: 'SH', // Accession Number
  x00080090: 'PN', // Referring Physician's Name
  x00081030: 'LO', // Study Description
  x00100010: 'PN', // Patient's Name
  x00100020: 'LO', // Patient ID
  x00100021: 'LO', // Issuer of Patient ID
  x00100030: 'DA', // Patient's Birth Date
  x00100040: 'CS', // Patient's Sex
  x0020000d: 'UI', // Study Instance UID
  x00200010: 'SH', // Study ID
};

/** Type 2 attributes of the Patient and General Study modules: present, possibly empty. */
const REQUIRED_EMPTY = ['00080020', '00080030', '00080050', '00080090', '00100010', '00100020', '00100030', '00100040', '00200010'];

export async function studyAttributesFrom(source: Uint8Array, maxInflatedBytes?: number): Promise<DicomItem> {
  const { dataSet } = await readDicom(source, { maxInflatedBytes });
  const item: DicomItem = {};
  for (const key of REQUIRED_EMPTY) item[key] = { vr: COPIED_FROM_SOURCE[`x${key}`], value: '' };
  for (const [tag, vr] of Object.entries(COPIED_FROM_SOURCE)) {
    const element = dataSet.elements[tag];
    if (!element || element.length === 0) continue;
    // byteArray, not source: a Deflated data set is parsed from its inflated copy.
    let bytes = dataSet.byteArray.slice(element.dataOffset, element.dataOffset + element.length);
    if (vr === 'UI') bytes = new TextEncoder().encode(rawString(dataSet, tag) ?? '');
    item[tag.slice(1)] = { vr, value: bytes };
  }
  return item;
}

/** Manufacturer (0008,0070) of every object we write. */
export const MANUFACTURER = 'fracture-triage (open source)';

/** What every object we write (SR, Secondary Capture, presentation state) says about itself. */
export interface AiObjectHeader {
  sopClassUid: string;
  sopInstanceUid: string;
  studyUid: string;
  seriesUid: string;
  seriesNumber: number;
  instanceNumber: number;
  modality: string;
  seriesDescription: string;
  algorithm: { name: string; version: string };
  createdAt: number;
  /** Patient and study elements copied from a source image (studyAttributesFrom). */
  studyAttributes: DicomItem;
  /** Content Date/Time: required by SR and SC, not part of a presentation state. */
  contentDateTime: boolean;
}

/**
 * SOP Common, General Series and General Equipment as one block, so the three writers cannot drift
 * apart: the algorithm is the Manufacturer's Model Name and Software Versions, the copied patient
 * and study elements come first and our UIDs override theirs.
 */
export function aiObjectHeader(h: AiObjectHeader): DicomItem {
  const { date, time } = dateTime(h.createdAt);
  return {
    ...h.studyAttributes,
    '00080016': { vr: 'UI', value: h.sopClassUid },
    '00080018': { vr: 'UI', value: h.sopInstanceUid },
    '00080012': { vr: 'DA', value: date },
    '00080013': { vr: 'TM', value: time },
    ...(h.contentDateTime ? { '00080023': { vr: 'DA', value: date }, '00080033': { vr: 'TM', value: time } } : {}),
    '00080060': { vr: 'CS', value: h.modality },
    '00080070': { vr: 'LO', value: MANUFACTURER },
    '00081090': { vr: 'LO', value: h.algorithm.name },
    '00181020': { vr: 'LO', value: h.algorithm.version },
    '0008103e': { vr: 'LO', value: h.seriesDescription },
    '0020000d': { vr: 'UI', value: h.studyUid },
    '0020000e': { vr: 'UI', value: h.seriesUid },
    '00200011': { vr: 'IS', value: String(h.seriesNumber) },
    '00200013': { vr: 'IS', value: String(h.instanceNumber) },
  };
}

/** Part 10 bytes, Explicit VR Little Endian. */
export function toPart10(item: DicomItem): Buffer {
  return writePart10(item);
}
