/**
 * A marked-up copy of a classified image as a Secondary Capture (RGB, 8 bits): what any PACS
 * viewer shows without plug-ins. Heat map and boxes (dotted = doubt, solid = definite) burned in,
 * with "AI — decision support only"; Burned In Annotation YES; same study, its own series,
 * Source Image Sequence pointing at the original.
 */
import type { DecodedImage, GreyImage } from '../imaging/index.js';
import { blendHeatmap, COLOURS, drawText, strokeRect, TEXT_HEIGHT, toRgb, type RgbImage } from './burn-in.js';
import { aiObjectHeader, derivedUid, type DicomItem } from './dicom-out.js';
import { contentHash, type ReportImage, type StudyReport } from './study-report.js';

export const SECONDARY_CAPTURE = '1.2.840.10008.5.1.4.1.1.7';
export const SC_SERIES_NUMBER = 9902;
/** Longer side of the marked-up image: enough to read, small enough to send quickly. */
export const SC_MAX_SIDE = 1024;
export const SC_BANNER = 'AI — decision support only';

const percent = (p: number | null) => (p === null ? '-' : `${(p * 100).toFixed(0)}%`);

/** Draws the result onto the decoded image; box coordinates are the source image's pixels. */
export function renderMarkedUp(image: GreyImage, result: ReportImage, heatmap: GreyImage | null): RgbImage {
  const { rgb, scale } = toRgb(image, SC_MAX_SIDE);
  if (heatmap) blendHeatmap(rgb, heatmap);
  const thickness = Math.max(2, Math.round(Math.max(rgb.width, rgb.height) / 400));
  const textScale = Math.max(2, Math.round(Math.max(rgb.width, rgb.height) / 350));
  for (const box of result.boxes) {
    const scaled = { x: box.x * scale, y: box.y * scale, width: box.width * scale, height: box.height * scale };
    const colour = COLOURS[box.level];
    strokeRect(rgb, scaled, colour, thickness, box.level === 'doubt');
    const labelY = scaled.y - (TEXT_HEIGHT + 3) * textScale >= 0 ? scaled.y - (TEXT_HEIGHT + 3) * textScale : scaled.y + scaled.height + 2 * textScale;
    drawText(rgb, box.level, Math.round(scaled.x) + textScale, Math.round(labelY) + textScale, textScale, colour);
  }
  const lines = [SC_BANNER, 'not a diagnosis', `AI flag: ${result.flag ?? '-'} (p = ${percent(result.probability)})`];
  // The banner shrinks to fit narrow images (6 font columns per character, a margin each side).
  const longest = Math.max(...lines.map((l) => l.length));
  const bannerScale = Math.max(1, Math.min(textScale, Math.floor(rgb.width / (6 * longest + 4))));
  lines.forEach((l, i) => drawText(rgb, l, 2 * bannerScale, 2 * bannerScale + i * (TEXT_HEIGHT + 4) * bannerScale, bannerScale));
  return rgb;
}

/**
 * UIDs of an image's Secondary Capture: derived from that image's own result, so a new study
 * version (a later image) re-sends unchanged images' captures under the same UIDs (stored once).
 */
export function scIdentity(report: StudyReport, image: ReportImage) {
  return {
    seriesUid: derivedUid('ft-sc-series', report.siteId, report.studyUid),
    sopInstanceUid: derivedUid('ft-sc', report.siteId, report.studyUid, image.sopInstanceUid, contentHash({ ...report, images: [image] })),
  };
}

export function buildSecondaryCapture(opts: {
  report: StudyReport; image: ReportImage; pixels: RgbImage; decoded: Pick<DecodedImage, 'width' | 'height'>;
  sopInstanceUid: string; seriesUid: string; instanceNumber: number; createdAt: number; studyAttributes: DicomItem;
}): DicomItem {
  const { report, image, pixels } = opts;
  return {
    ...aiObjectHeader({
      sopClassUid: SECONDARY_CAPTURE, sopInstanceUid: opts.sopInstanceUid, studyUid: report.studyUid, seriesUid: opts.seriesUid,
      seriesNumber: SC_SERIES_NUMBER, instanceNumber: opts.instanceNumber, modality: 'OT',
      seriesDescription: 'AI marked-up images (decision support only)', algorithm: report.algorithm,
      createdAt: opts.createdAt, studyAttributes: opts.studyAttributes, contentDateTime: true,
    }),
    '00080008': { vr: 'CS', value: 'DERIVED\\SECONDARY' },
    '00080064': { vr: 'CS', value: 'WSD' },
    '00082111': { vr: 'ST', value: `AI result burned in: heat map and boxes from ${report.algorithm.name} ${report.algorithm.version}; resized to ${pixels.width}x${pixels.height} from ${opts.decoded.width}x${opts.decoded.height}` },
    '00082112': { vr: 'SQ', value: [{ '00081150': { vr: 'UI', value: image.sopClassUid }, '00081155': { vr: 'UI', value: image.sopInstanceUid } }] },
    '00200020': { vr: 'CS', value: '' },
    '00200060': { vr: 'CS', value: '' },
    '00204000': { vr: 'LT', value: 'AI decision support, not a diagnosis.' },
    '00280002': { vr: 'US', value: 3 },
    '00280004': { vr: 'CS', value: 'RGB' },
    '00280006': { vr: 'US', value: 0 },
    '00280010': { vr: 'US', value: pixels.height },
    '00280011': { vr: 'US', value: pixels.width },
    '00280100': { vr: 'US', value: 8 },
    '00280101': { vr: 'US', value: 8 },
    '00280102': { vr: 'US', value: 7 },
    '00280103': { vr: 'US', value: 0 },
    '00280301': { vr: 'CS', value: 'YES' },
    '7fe00010': { vr: 'OB', value: pixels.data },
  };
}
