/**
 * A Grayscale Softcopy Presentation State per classified image: the AI's boxes as graphic
 * annotations on the original, which a PACS viewer draws over the image it already has and the
 * radiologist can switch off (unlike the Secondary Capture, where they are burned in).
 * GSPS has no dotted line that every viewer draws, so the level is said in words and colour:
 * each box is a closed polyline labelled "AI: fracture? (doubt)" on a yellow layer, or
 * "AI: fracture (definite)" on a red one; a note names it decision support, not a diagnosis.
 */
import { rawString, readDicom } from '../dicom/index.js';
import { aiObjectHeader, dateTime, derivedUid, floats, type DicomItem } from './dicom-out.js';
import { rectangleAsPolyline } from './structured-report.js';
import { contentHash, type ReportBox, type ReportImage, type StudyReport } from './study-report.js';

export const GRAYSCALE_SOFTCOPY_PRESENTATION_STATE = '1.2.840.10008.5.1.4.1.1.11.1';
export const PR_SERIES_NUMBER = 9903;

/** Graphic layers: CIELab colours (PS3.3 C.10.7.1.1 encoding) yellow for doubt, red for definite; the note in white. */
const LAYERS = {
  AI_DEFINITE: { order: 1, description: 'AI: fracture (definite)', grey: 0xffff, lab: [34866, 53484, 50171] },
  AI_DOUBT: { order: 2, description: 'AI: possible fracture (doubt)', grey: 0xffff, lab: [63637, 27356, 57140] },
  AI_NOTE: { order: 3, description: 'AI decision support, not a diagnosis', grey: 0xffff, lab: [65535, 32896, 32896] },
} as const;

const percent = (p: number | null) => (p === null ? '-' : `${(p * 100).toFixed(0)}%`);

/** What the presentation state copies from the original so the image looks as its own attributes say. */
export interface SourceDisplay {
  photometric: string;
  windowCenter?: string;
  windowWidth?: string;
  rescaleIntercept?: string;
  rescaleSlope?: string;
  rescaleType?: string;
}

/** Photometric interpretation, first window and rescale of the source, as stored. */
export async function sourceDisplay(source: Uint8Array, maxInflatedBytes?: number): Promise<SourceDisplay> {
  const { dataSet } = await readDicom(source, { maxInflatedBytes });
  const first = (tag: string) => rawString(dataSet, tag)?.split('\\')[0]?.trim() || undefined;
  return {
    photometric: first('x00280004') ?? 'MONOCHROME2',
    windowCenter: first('x00281050'), windowWidth: first('x00281051'),
    rescaleIntercept: first('x00281052'), rescaleSlope: first('x00281053'), rescaleType: first('x00281054'),
  };
}

/** UIDs of an image's presentation state: from that image's own result, like its capture. */
export function prIdentity(report: StudyReport, image: ReportImage) {
  return {
    seriesUid: derivedUid('ft-pr-series', report.siteId, report.studyUid),
    sopInstanceUid: derivedUid('ft-pr', report.siteId, report.studyUid, image.sopInstanceUid, contentHash({ ...report, images: [image] })),
  };
}

/** A text box of about `chars` characters at (x, y), kept inside the image. */
function textObject(text: string, x: number, y: number, image: ReportImage): DicomItem {
  const height = Math.max(12, Math.round(image.rows / 40));
  const width = Math.min(image.columns - 1, Math.round(text.length * height * 0.6));
  const left = Math.max(0, Math.min(x, image.columns - 1 - width));
  const top = Math.max(0, Math.min(y, image.rows - 1 - height));
  return {
    '00700003': { vr: 'CS', value: 'PIXEL' },
    '00700006': { vr: 'ST', value: text },
    '00700010': { vr: 'FL', value: floats([left, top]) },
    '00700011': { vr: 'FL', value: floats([left + width, top + height]) },
    '00700012': { vr: 'CS', value: 'LEFT' },
  };
}

function boxAnnotation(box: ReportBox, image: ReportImage, reference: DicomItem): DicomItem {
  const label = box.level === 'definite' ? 'AI: fracture (definite)' : 'AI: fracture? (doubt)';
  const height = Math.max(12, Math.round(image.rows / 40));
  return {
    '00081140': { vr: 'SQ', value: [reference] },
    '00700002': { vr: 'CS', value: box.level === 'definite' ? 'AI_DEFINITE' : 'AI_DOUBT' },
    '00700008': { vr: 'SQ', value: [textObject(label, box.x, box.y - height - 2 >= 0 ? box.y - height - 2 : box.y + box.height + 2, image)] },
    '00700009': { vr: 'SQ', value: [{
      '00700005': { vr: 'CS', value: 'PIXEL' },
      '00700020': { vr: 'US', value: 2 },
      '00700021': { vr: 'US', value: 5 },
      '00700022': { vr: 'FL', value: floats(rectangleAsPolyline(box)) },
      '00700023': { vr: 'CS', value: 'POLYLINE' },
      '00700024': { vr: 'CS', value: 'N' },
    }] },
  };
}

export function buildPresentationState(opts: {
  report: StudyReport; image: ReportImage; display: SourceDisplay;
  sopInstanceUid: string; seriesUid: string; instanceNumber: number; createdAt: number; studyAttributes: DicomItem;
}): DicomItem {
  const { report, image, display } = opts;
  const { date, time } = dateTime(opts.createdAt);
  const reference: DicomItem = { '00081150': { vr: 'UI', value: image.sopClassUid }, '00081155': { vr: 'UI', value: image.sopInstanceUid } };
  const note = `AI decision support, not a diagnosis. AI flag: ${image.flag ?? '-'} (p = ${percent(image.probability)})`;
  const item: DicomItem = {
    ...aiObjectHeader({
      sopClassUid: GRAYSCALE_SOFTCOPY_PRESENTATION_STATE, sopInstanceUid: opts.sopInstanceUid, studyUid: report.studyUid,
      seriesUid: opts.seriesUid, seriesNumber: PR_SERIES_NUMBER, instanceNumber: opts.instanceNumber, modality: 'PR',
      seriesDescription: 'AI findings as annotations (decision support only)', algorithm: report.algorithm,
      createdAt: opts.createdAt, studyAttributes: opts.studyAttributes, contentDateTime: false,
    }),
    // Presentation State Relationship: the one original it applies to.
    '00081115': { vr: 'SQ', value: [{ '0020000e': { vr: 'UI', value: image.seriesUid }, '00081140': { vr: 'SQ', value: [reference] } }] },
    '00200060': { vr: 'CS', value: '' },
    // Presentation State Identification.
    '00700080': { vr: 'CS', value: 'AI_FRACTURE' },
    '00700081': { vr: 'LO', value: `AI fracture findings, ${report.algorithm.name} ${report.algorithm.version}` },
    '00700082': { vr: 'DA', value: date },
    '00700083': { vr: 'TM', value: time },
    '00700084': { vr: 'PN', value: '' },
    // Displayed Area: the whole image, scaled to fit.
    '0070005a': { vr: 'SQ', value: [{
      '00700052': { vr: 'SL', value: [1, 1] },
      '00700053': { vr: 'SL', value: [image.columns, image.rows] },
      '00700100': { vr: 'CS', value: 'SCALE TO FIT' },
      '00700102': { vr: 'IS', value: '1\\1' },
    }] },
    '00700001': { vr: 'SQ', value: [
      ...image.boxes.map((b) => boxAnnotation(b, image, reference)),
      { '00081140': { vr: 'SQ', value: [reference] }, '00700002': { vr: 'CS', value: 'AI_NOTE' }, '00700008': { vr: 'SQ', value: [textObject(note, 0, 0, image)] } },
    ] },
    '00700060': { vr: 'SQ', value: Object.entries(LAYERS).map(([name, layer]) => ({
      '00700002': { vr: 'CS', value: name },
      '00700062': { vr: 'IS', value: String(layer.order) },
      '00700066': { vr: 'US', value: layer.grey },
      '00700068': { vr: 'LO', value: layer.description },
      '00700401': { vr: 'US', value: [...layer.lab] },
    })) },
    // MONOCHROME1 is shown inverted, as the original asks.
    '20500020': { vr: 'CS', value: display.photometric === 'MONOCHROME1' ? 'INVERSE' : 'IDENTITY' },
  };
  if (display.rescaleIntercept !== undefined && display.rescaleSlope !== undefined) {
    item['00281052'] = { vr: 'DS', value: display.rescaleIntercept };
    item['00281053'] = { vr: 'DS', value: display.rescaleSlope };
    item['00281054'] = { vr: 'LO', value: display.rescaleType ?? 'US' };
  }
  if (display.windowCenter !== undefined && display.windowWidth !== undefined) {
    item['00283110'] = { vr: 'SQ', value: [{ '00281050': { vr: 'DS', value: display.windowCenter }, '00281051': { vr: 'DS', value: display.windowWidth } }] };
  }
  return item;
}
