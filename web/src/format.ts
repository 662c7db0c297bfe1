import type { AiState, Decision } from '../../services/contract/index.js';
import { priorityName, type PriorityName } from '../../services/contract/priority.js';

export const AI_LABEL = 'AI — decision support only';

export const AI_STATE_TEXT: Record<AiState, string> = {
  pending: 'AI pending',
  definite: 'Flagged: definite',
  doubt: 'Flagged: doubt',
  none: 'Not flagged',
  unreadable: 'Unreadable — needs a look',
  failed: 'AI failed',
  not_applicable: 'AI n.a.',
};

export const aiStateText = (state: string) => AI_STATE_TEXT[state as AiState] ?? state;

export const DECISION_TEXT: Record<Decision, string> = {
  agree: 'Agree — fracture present',
  disagree: 'Disagree — no fracture',
  missed: 'AI missed a fracture',
  uncertain: 'Uncertain',
};

/** DICOM person name: FAMILY^GIVEN → "FAMILY, Given". */
export function personName(pn: string | null | undefined): string {
  if (!pn) return '—';
  const [family, given] = pn.split('^');
  return given ? `${family}, ${given}` : family;
}

export function dicomDate(da: string | null | undefined): string {
  const m = /^(\d{4})(\d{2})(\d{2})$/.exec(da ?? '');
  return m ? `${m[1]}-${m[2]}-${m[3]}` : '—';
}

export function dicomTime(tm: string | null | undefined): string {
  const m = /^(\d{2})(\d{2})?/.exec(tm ?? '');
  return m ? `${m[1]}:${m[2] ?? '00'}` : '';
}

export function dateTime(ms: number | null | undefined): string {
  if (!ms) return '—';
  const d = new Date(ms);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

export function ago(ms: number): string {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

export function score(value: number | null | undefined): string {
  return value === null || value === undefined ? '—' : value.toFixed(2);
}

const PRIORITY_TEXT: Record<PriorityName, string> = { stat: 'STAT', high: 'High', routine: 'Routine', low: 'Low' };

/** The priority's name (the contract's scale) and its words. */
export function priority(p: number): { name: PriorityName; text: string } {
  const name = priorityName(p);
  return { name, text: PRIORITY_TEXT[name] };
}

/** "ACC123 (DOE, John)": how a toast names a study. */
export function studyLabel(study: { accession: string | null; patient: { name: string | null } }): string {
  return `${study.accession ?? 'study'} (${personName(study.patient.name)})`;
}
