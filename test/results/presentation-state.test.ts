import { describe, expect, it } from 'vitest';
import { parseInstance } from '../../services/dicom/index.js';
import { studyAttributesFrom, toPart10 } from '../../services/results/dicom-out.js';
import { buildPresentationState, GRAYSCALE_SOFTCOPY_PRESENTATION_STATE, prIdentity, sourceDisplay } from '../../services/results/presentation-state.js';
import type { ReportImage, StudyReport } from '../../services/results/study-report.js';
import { makeDx } from '../helpers/dicom.js';
import { check, errorLines } from './helpers.js';

describe('Grayscale Softcopy Presentation State with the AI boxes as annotations', () => {
  it('passes dciodvfy and dcmdump, references the original, and draws each box as a closed polyline labelled with its level', async () => {
    const dx = makeDx({ rows: 256, columns: 200 });
    const meta = await parseInstance(dx.bytes);
    const image: ReportImage = {
      sopClassUid: meta.sopClassUid, sopInstanceUid: meta.sopInstanceUid, seriesUid: meta.seriesInstanceUid, rows: 256, columns: 200,
      status: 'done', flag: 'definite', probability: 0.72, reason: null, heatmapKey: null, storageKey: 'x',
      boxes: [{ x: 10, y: 40, width: 50, height: 30, level: 'definite' }, { x: 120, y: 2, width: 40, height: 20, level: 'doubt' }],
    };
    const report: StudyReport = {
      siteId: 'site-a', studyId: 1, studyUid: meta.studyInstanceUid, accessionNumber: null, algorithm: { name: 'test-model', version: '9.9' },
      images: [image], studyFlag: 'definite', studyScore: 0.72,
    };
    const bytes = toPart10(buildPresentationState({
      report, image, display: await sourceDisplay(dx.bytes), ...prIdentity(report, image), instanceNumber: 1, createdAt: Date.now(),
      studyAttributes: await studyAttributesFrom(dx.bytes),
    }));
    const iod = await check('dciodvfy', bytes);
    expect(iod.output).toMatch(/GrayscaleSoftcopyPresentationState/i);
    expect(errorLines(iod.output), iod.output).toEqual([]);
    const dump = await check('dcmdump', bytes);
    expect(dump.code, dump.output).toBe(0);
    expect(dump.output).toContain(`(0008,0016) UI =GrayscaleSoftcopyPresentationStateStorage`);
    expect(dump.output).toContain(`(0008,1155) UI [${meta.sopInstanceUid}]`);
    expect(dump.output).toContain('(0070,0006) ST [AI: fracture (definite)]');
    expect(dump.output).toContain('(0070,0006) ST [AI: fracture? (doubt)]');
    expect(dump.output).toMatch(/\(0070,0006\) ST \[AI decision support, not a diagnosis/);
    expect(dump.output.match(/\(0070,0023\) CS \[POLYLINE\]/g)).toHaveLength(2);
    expect(dump.output).toContain('(0070,0022) FL 10\\40\\60\\40\\60\\70\\10\\70\\10\\40');
    expect((await parseInstance(bytes)).sopClassUid).toBe(GRAYSCALE_SOFTCOPY_PRESENTATION_STATE);
  });
});
