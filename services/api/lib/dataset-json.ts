import dcmjs from 'dcmjs';
import type { DicomJson } from './dicom-json.js';

/**
 * A stored DICOM file as the DICOM JSON model (PS3.18 Annex F), for WADO-RS /metadata. dcmjs
 * (npm) reads the data set; this file is its only user. Pixel Data is not read: it is given as a
 * BulkDataURI (the instance's frames), other binary values inline (base64).
 */
const BINARY_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'UN']);
const PIXEL_DATA = '7FE00010';

dcmjs.log.setLevel('error');

type RawElement = { vr: string; Value?: unknown[] };
type JsonElement = DicomJson[string] & { BulkDataURI?: string; InlineBinary?: string };

export function datasetJson(part10: Buffer, pixelDataUri: string): DicomJson {
  const arrayBuffer = part10.buffer.slice(part10.byteOffset, part10.byteOffset + part10.byteLength) as ArrayBuffer;
  const { dict } = dcmjs.data.DicomMessage.readFile(arrayBuffer, { untilTag: PIXEL_DATA, includeUntilTagValue: false, ignoreErrors: true });
  const json = convert(dict);
  if (dict[PIXEL_DATA] || dict[PIXEL_DATA.toLowerCase()]) json[PIXEL_DATA] = { vr: dict[PIXEL_DATA]?.vr ?? 'OW', BulkDataURI: pixelDataUri } as JsonElement;
  return json;
}

function convert(dict: Record<string, RawElement>): DicomJson {
  const out: DicomJson = {};
  for (const [tag, element] of Object.entries(dict)) {
    const key = tag.toUpperCase();
    if (key === PIXEL_DATA) continue;
    const vr = element.vr;
    const values = element.Value ?? [];
    let value: JsonElement;
    if (vr === 'SQ') {
      value = { vr, Value: values.map((item) => convert(item as Record<string, RawElement>)) };
    } else if (BINARY_VRS.has(vr)) {
      const bytes = Buffer.concat(values.filter((v): v is ArrayBuffer => v instanceof ArrayBuffer).map((v) => Buffer.from(v)));
      value = bytes.length ? { vr, InlineBinary: bytes.toString('base64') } : { vr };
    } else {
      const clean = values.filter((v) => v !== undefined && v !== null && v !== '');
      value = clean.length ? { vr, Value: clean } : { vr };
    }
    out[key] = value;
  }
  return out;
}
