/**
 * The study's AI result as a DICOM Comprehensive SR following TID 1500 (Measurement Report), the
 * template OHIF and highdicom read for AI results:
 *  - observer context: a device, with the algorithm's name and version (TID 1004 / TID 4019);
 *  - image library: every source image of the study;
 *  - imaging measurements: one measurement group (TID 1410) per box — finding "Fracture"
 *    (SNOMED CT 72704001), the box as an image-region SCOORD (closed 5-point POLYLINE in the
 *    source image's pixel coordinates) selected from the source image, the flag level and the
 *    calibrated probability;
 *  - qualitative evaluations: the study-level statement ("no fracture found", "not applicable",
 *    "unreadable") and "AI decision support, not a diagnosis".
 * Verification Flag is always UNVERIFIED: no person has signed this.
 */
import { aiObjectHeader, code, codeItem, derivedUid, floats, LOCAL_SCHEME, MANUFACTURER, type Code, type DicomItem } from './dicom-out.js';
import { noScoreStatement, type ReportImage, type StudyReport } from './study-report.js';

export const COMPREHENSIVE_SR = '1.2.840.10008.5.1.4.1.1.88.33';
export const SR_SERIES_NUMBER = 9901;
export const DISCLAIMER = 'AI decision support, not a diagnosis. To be confirmed or rejected by a radiologist.';

const C = {
  measurementReport: code('126000', 'DCM', 'Imaging Measurement Report'),
  language: code('121049', 'DCM', 'Language of Content Item and Descendants'),
  english: code('en-US', 'RFC5646', 'English (United States)'),
  observerType: code('121005', 'DCM', 'Observer Type'),
  device: code('121007', 'DCM', 'Device'),
  deviceUid: code('121012', 'DCM', 'Device Observer UID'),
  deviceName: code('121013', 'DCM', 'Device Observer Name'),
  deviceManufacturer: code('121014', 'DCM', 'Device Observer Manufacturer'),
  deviceModel: code('121015', 'DCM', 'Device Observer Model Name'),
  procedureReported: code('121058', 'DCM', 'Procedure reported'),
  radiography: code('363680008', 'SCT', 'Radiographic imaging procedure'),
  imageLibrary: code('111028', 'DCM', 'Image Library'),
  imageLibraryGroup: code('126200', 'DCM', 'Image Library Group'),
  measurements: code('126010', 'DCM', 'Imaging Measurements'),
  measurementGroup: code('125007', 'DCM', 'Measurement Group'),
  trackingId: code('112039', 'DCM', 'Tracking Identifier'),
  trackingUid: code('112040', 'DCM', 'Tracking Unique Identifier'),
  finding: code('121071', 'DCM', 'Finding'),
  fracture: code('72704001', 'SCT', 'Fracture'),
  algorithmName: code('111001', 'DCM', 'Algorithm Name'),
  algorithmVersion: code('111003', 'DCM', 'Algorithm Version'),
  imageRegion: code('111030', 'DCM', 'Image Region'),
  qualitative: code('C0034375', 'UMLS', 'Qualitative Evaluations'),
  comment: code('121106', 'DCM', 'Comment'),
  noUnits: code('1', 'UCUM', 'no units'),
  // Local concepts: no standard code says "this AI's flag level" or "its calibrated probability".
  flagLevel: code('FLAG', LOCAL_SCHEME, 'AI flag level'),
  probability: code('PROB', LOCAL_SCHEME, 'Calibrated probability of fracture'),
  flagNone: code('NONE', LOCAL_SCHEME, 'No fracture found'),
  flagDoubt: code('DOUBT', LOCAL_SCHEME, 'Doubt: possible fracture'),
  flagDefinite: code('DEFINITE', LOCAL_SCHEME, 'Definite: probable fracture'),
  notApplicable: code('NA', LOCAL_SCHEME, 'Not applicable'),
  unreadable: code('UNREADABLE', LOCAL_SCHEME, 'Unreadable: no AI result'),
} satisfies Record<string, Code>;

const FLAG_CODES: Record<string, Code> = {
  none: C.flagNone, doubt: C.flagDoubt, definite: C.flagDefinite, not_applicable: C.notApplicable, failed: C.unreadable,
};

type Relationship = 'CONTAINS' | 'HAS OBS CONTEXT' | 'HAS CONCEPT MOD' | 'SELECTED FROM' | 'HAS PROPERTIES';

function item(relationship: Relationship | null, valueType: string, concept: Code, rest: DicomItem = {}): DicomItem {
  return {
    ...(relationship ? { '0040a010': { vr: 'CS', value: relationship } } : {}),
    '0040a040': { vr: 'CS', value: valueType },
    '0040a043': { vr: 'SQ', value: [codeItem(concept)] },
    ...rest,
  };
}
const text = (rel: Relationship, concept: Code, value: string) => item(rel, 'TEXT', concept, { '0040a160': { vr: 'UT', value } });
const coded = (rel: Relationship, concept: Code, value: Code) => item(rel, 'CODE', concept, { '0040a168': { vr: 'SQ', value: [codeItem(value)] } });
const uidRef = (rel: Relationship, concept: Code, value: string) => item(rel, 'UIDREF', concept, { '0040a124': { vr: 'UI', value } });
const container = (rel: Relationship | null, concept: Code, children: DicomItem[], extra: DicomItem = {}) =>
  item(rel, 'CONTAINER', concept, { '0040a050': { vr: 'CS', value: 'SEPARATE' }, ...extra, '0040a730': { vr: 'SQ', value: children } });
const number = (rel: Relationship, concept: Code, value: number, units: Code) => item(rel, 'NUM', concept, {
  '0040a300': { vr: 'SQ', value: [{ '004008ea': { vr: 'SQ', value: [codeItem(units)] }, '0040a30a': { vr: 'DS', value: decimalString(value) } }] },
});
function imageReference(rel: Relationship, concept: Code | null, image: ReportImage): DicomItem {
  const reference = { '00081199': { vr: 'SQ', value: [{ '00081150': { vr: 'UI', value: image.sopClassUid }, '00081155': { vr: 'UI', value: image.sopInstanceUid } }] } } as DicomItem;
  return concept ? item(rel, 'IMAGE', concept, reference) : { '0040a010': { vr: 'CS', value: rel }, '0040a040': { vr: 'CS', value: 'IMAGE' }, ...reference };
}

/** DS holds at most 16 characters. */
function decimalString(value: number): string {
  return Number(value.toFixed(6)).toString();
}

/** A box as a closed polyline (5 points, column\row pairs, pixel coordinates of the source image). */
export function rectangleAsPolyline(b: { x: number; y: number; width: number; height: number }): number[] {
  const x0 = b.x, y0 = b.y, x1 = b.x + b.width, y1 = b.y + b.height;
  return [x0, y0, x1, y0, x1, y1, x0, y1, x0, y0];
}

export interface SrIdentity {
  sopInstanceUid: string;
  seriesUid: string;
  /** 1 for the first report of a study, then 2, 3… as later images change the content. */
  version: number;
  createdAt: number;
  /** The report this one replaces (same study, earlier content). */
  predecessor?: { sopInstanceUid: string; seriesUid: string };
}

/** Deterministic UIDs: same study content → same SR; new content → new SR in the same AI series. */
export function srIdentity(report: StudyReport, contentHash: string): Pick<SrIdentity, 'sopInstanceUid' | 'seriesUid'> {
  return {
    seriesUid: derivedUid('ft-sr-series', report.siteId, report.studyUid),
    sopInstanceUid: derivedUid('ft-sr', report.siteId, report.studyUid, contentHash),
  };
}

function studyStatement(report: StudyReport): DicomItem[] {
  const scored = report.images.filter((i) => i.status === 'done');
  const items: DicomItem[] = [];
  const overall = scored.length ? (report.images.some((i) => i.flag === 'definite') ? 'definite' : report.images.some((i) => i.flag === 'doubt') ? 'doubt' : 'none')
    : report.images.some((i) => i.status === 'failed' || i.status === 'unreadable') ? 'failed' : 'not_applicable';
  items.push(coded('CONTAINS', C.flagLevel, FLAG_CODES[overall]));
  if (overall === 'none') {
    items.push(text('CONTAINS', C.finding, `No fracture found by the AI on ${scored.length} of ${report.images.length} image(s). This does not rule out a fracture.`));
  }
  for (const image of report.images.filter((i) => i.status !== 'done')) {
    items.push(text('CONTAINS', C.comment, `${noScoreStatement(image)} (SOP Instance UID ${image.sopInstanceUid})`));
  }
  if (report.studyScore !== null) items.push(number('CONTAINS', C.probability, report.studyScore, C.noUnits));
  items.push(text('CONTAINS', C.comment, DISCLAIMER));
  return items;
}

function measurementGroups(report: StudyReport): DicomItem[] {
  const groups: DicomItem[] = [];
  for (const image of report.images) {
    if (image.status !== 'done') continue;
    image.boxes.forEach((box, index) => {
      const trackingId = `fracture ${index + 1} on ${image.sopInstanceUid}`.slice(0, 64);
      groups.push(container('CONTAINS', C.measurementGroup, [
        text('HAS OBS CONTEXT', C.trackingId, trackingId),
        uidRef('HAS OBS CONTEXT', C.trackingUid, derivedUid('ft-tracking', report.studyUid, image.sopInstanceUid, index)),
        coded('CONTAINS', C.finding, C.fracture),
        text('HAS CONCEPT MOD', C.algorithmName, report.algorithm.name),
        text('HAS CONCEPT MOD', C.algorithmVersion, report.algorithm.version),
        item('CONTAINS', 'SCOORD', C.imageRegion, {
          '00700022': { vr: 'FL', value: floats(rectangleAsPolyline(box)) },
          '00700023': { vr: 'CS', value: 'POLYLINE' },
          '0040a730': { vr: 'SQ', value: [imageReference('SELECTED FROM', null, image)] },
        }),
        coded('CONTAINS', C.flagLevel, FLAG_CODES[box.level]),
        number('CONTAINS', C.probability, image.probability ?? 0, C.noUnits),
      ]));
    });
  }
  return groups;
}

/** The evidence: every instance the content tree refers to, by series (Hierarchical SOP Instance Reference macro). */
function evidence(studyUid: string, refs: { seriesUid: string; sopClassUid: string; sopInstanceUid: string }[]): DicomItem[] {
  const bySeries = new Map<string, DicomItem[]>();
  for (const r of refs) {
    const list = bySeries.get(r.seriesUid) ?? [];
    list.push({ '00081150': { vr: 'UI', value: r.sopClassUid }, '00081155': { vr: 'UI', value: r.sopInstanceUid } });
    bySeries.set(r.seriesUid, list);
  }
  return [{
    '0020000d': { vr: 'UI', value: studyUid },
    '00081115': { vr: 'SQ', value: [...bySeries].map(([seriesUid, sops]) => ({ '0020000e': { vr: 'UI', value: seriesUid }, '00081199': { vr: 'SQ', value: sops } })) },
  }];
}

/** The SR data set. `studyAttributes` are the patient/study elements copied from a source image. */
export function buildStructuredReport(report: StudyReport, id: SrIdentity, studyAttributes: DicomItem): DicomItem {
  const groups = measurementGroups(report);
  const root = container(null, C.measurementReport, [
    coded('HAS CONCEPT MOD', C.language, C.english),
    coded('HAS OBS CONTEXT', C.observerType, C.device),
    uidRef('HAS OBS CONTEXT', C.deviceUid, derivedUid('ft-device', report.algorithm.name, report.algorithm.version)),
    text('HAS OBS CONTEXT', C.deviceName, report.algorithm.name),
    text('HAS OBS CONTEXT', C.deviceManufacturer, MANUFACTURER),
    text('HAS OBS CONTEXT', C.deviceModel, `${report.algorithm.name} ${report.algorithm.version}`),
    coded('HAS CONCEPT MOD', C.procedureReported, C.radiography),
    container('CONTAINS', C.imageLibrary, [
      container('CONTAINS', C.imageLibraryGroup, report.images.map((image) => imageReference('CONTAINS', null, image))),
    ]),
    // Without boxes there are no measurement groups, and an empty container is not allowed.
    ...(groups.length ? [container('CONTAINS', C.measurements, groups)] : []),
    container('CONTAINS', C.qualitative, studyStatement(report)),
  ], {
    '0040a504': { vr: 'SQ', value: [{ '00080105': { vr: 'CS', value: 'DCMR' }, '0040db00': { vr: 'CS', value: '1500' } }] },
  });

  return {
    ...aiObjectHeader({
      sopClassUid: COMPREHENSIVE_SR, sopInstanceUid: id.sopInstanceUid, studyUid: report.studyUid, seriesUid: id.seriesUid,
      seriesNumber: SR_SERIES_NUMBER, instanceNumber: id.version, modality: 'SR',
      seriesDescription: 'AI fracture findings (decision support, not a diagnosis)', algorithm: report.algorithm,
      createdAt: id.createdAt, studyAttributes, contentDateTime: true,
    }),
    '00080110': { vr: 'SQ', value: [{
      '00080102': { vr: 'SH', value: LOCAL_SCHEME },
      '00080115': { vr: 'ST', value: 'fracture-triage local codes' },
      '00080116': { vr: 'ST', value: 'fracture-triage project' },
    }] },
    '00081111': { vr: 'SQ', value: [] },
    '0040a491': { vr: 'CS', value: 'COMPLETE' },
    '0040a493': { vr: 'CS', value: 'UNVERIFIED' },
    '0040a372': { vr: 'SQ', value: [] },
    '0040a375': { vr: 'SQ', value: evidence(report.studyUid, report.images) },
    ...(id.predecessor ? { '0040a360': { vr: 'SQ', value: evidence(report.studyUid, [{ ...id.predecessor, sopClassUid: COMPREHENSIVE_SR }]) } } : {}),
    ...root,
  };
}
