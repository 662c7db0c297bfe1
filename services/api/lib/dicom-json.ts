/** Builders for the DICOM JSON model (PS3.18 Annex F). */
type Element = { vr: string; Value?: unknown[] };
export type DicomJson = Record<string, Element>;

export const ui = (value: string | null | undefined): Element => (value ? { vr: 'UI', Value: [value] } : { vr: 'UI' });
export const ur = (value: string): Element => ({ vr: 'UR', Value: [value] });
export const us = (value: number): Element => ({ vr: 'US', Value: [value] });
export const lo = (value: string | null | undefined): Element => (value ? { vr: 'LO', Value: [value] } : { vr: 'LO' });
export const sh = (value: string | null | undefined): Element => (value ? { vr: 'SH', Value: [value] } : { vr: 'SH' });
export const cs = (value: string | string[] | null | undefined): Element =>
  value && value.length ? { vr: 'CS', Value: Array.isArray(value) ? value : [value] } : { vr: 'CS' };
export const da = (value: string | null | undefined): Element => (value ? { vr: 'DA', Value: [value] } : { vr: 'DA' });
export const tm = (value: string | null | undefined): Element => (value ? { vr: 'TM', Value: [value] } : { vr: 'TM' });
export const is = (value: number | null | undefined): Element => (value === null || value === undefined ? { vr: 'IS' } : { vr: 'IS', Value: [value] });
export const pn = (value: string | null | undefined): Element => (value ? { vr: 'PN', Value: [{ Alphabetic: value }] } : { vr: 'PN' });
export const sq = (items: DicomJson[]): Element => ({ vr: 'SQ', Value: items });
