import type { Decision, ReviewEntry, StudyDetail, StudyImage, WorklistItem } from '../../../services/contract/index.js';
import { clear, h } from '../lib/dom.js';
import { AI_LABEL, DECISION_TEXT, aiStateText, dateTime, dicomDate, dicomTime, personName, priority, score } from '../format.js';
import { viewKind } from './layout.js';
import type { DrawnMeasurement } from './viewport.js';

/** The viewer's side panels: study info, AI, series strip, decision. Each renders from data it is given. */

export function renderStudyInfo(panel: HTMLElement, s: WorklistItem) {
  clear(panel);
  const p = priority(s.priority);
  panel.append(
    h('h2', { class: 'patient-name' }, personName(s.patient.name)),
    h('dl', {},
      h('dt', {}, 'Patient ID'), h('dd', {}, s.patient.id ?? '—'),
      h('dt', {}, 'Age / sex'), h('dd', {}, [s.patient.age, s.patient.sex].filter(Boolean).join(' / ') || '—'),
      h('dt', {}, 'Accession'), h('dd', {}, s.accession ?? '—'),
      h('dt', {}, 'Study'), h('dd', {}, `${dicomDate(s.studyDate)} ${dicomTime(s.studyTime)}`),
      h('dt', {}, 'Received'), h('dd', {}, dateTime(s.receivedAt)),
      h('dt', {}, 'Body part'), h('dd', {}, s.bodyPart ?? '—'),
      h('dt', {}, 'Priority'), h('dd', { class: `prio prio-${p.name}` }, p.text),
      s.description ? h('dt', {}, 'Description') : null, s.description ? h('dd', {}, s.description) : null));
}

/** What the AI says about one image, in words; one number scale (the calibrated probability). */
export function imageAiText(image: StudyImage | undefined): string {
  const ai = image?.ai;
  if (!ai) return 'pending';
  if (ai.status === 'done') return `${score(ai.probability)} (${ai.flag === 'none' || !ai.flag ? 'not flagged' : ai.flag})`;
  if (ai.status === 'unreadable' || ai.flag === 'unreadable') return `unreadable — needs a look${ai.unreadableReason ?? ai.reason ? ` (${ai.unreadableReason ?? ai.reason})` : ''}`;
  return ai.status.replace('_', ' ');
}

export function renderAiPanel(panel: HTMLElement, detail: StudyDetail, image: StudyImage | undefined, controls: Node[]) {
  clear(panel);
  const state = detail.study.ai.state;
  const model = detail.model ? `${detail.model.name ?? 'model'} ${detail.model.version ?? ''}`.trim() : '—';
  const reason = image?.ai?.unreadableReason ?? image?.ai?.reason ?? detail.study.ai.unreadableReason ?? detail.study.ai.reason;
  panel.append(
    h('div', { class: 'ai-label strong', id: 'ai-label' }, AI_LABEL),
    h('div', { class: `flag big flag-${state}`, id: 'ai-state' }, aiStateText(state)),
    h('dl', {},
      h('dt', {}, 'Study score'), h('dd', { id: 'ai-score', title: 'Calibrated probability of the most suspicious image' }, score(detail.study.ai.score)),
      h('dt', {}, 'This image'), h('dd', { id: 'ai-image' }, imageAiText(image)),
      h('dt', {}, 'Model'), h('dd', { id: 'ai-model' }, model)),
    ...controls,
    h('p', { class: 'legend' }, h('span', { class: 'box-solid' }, '▭ solid'), ' definite · ', h('span', { class: 'box-dotted' }, '┄ dotted'), ' doubt · ',
      h('span', { class: 'box-saved' }, '┄ orange'), ' your saved boxes'),
    reason ? h('p', { class: `muted${state === 'unreadable' ? ' needs-look' : ''}`, id: 'ai-reason' }, `No score: ${reason}`) : '');
}

/**
 * The series strip: one button per image, with a thumbnail, series number and description, and
 * which viewport shows it. Clicking puts the image in the selected viewport.
 */
export class SeriesStrip {
  readonly element = h('div', { class: 'panel series-strip', id: 'series-strip' });
  private buttons: HTMLButtonElement[] = [];

  constructor(private readonly onPick: (index: number) => void) {}

  render(images: readonly StudyImage[], thumbnail: (image: StudyImage, canvas: HTMLCanvasElement) => void) {
    clear(this.element);
    this.element.append(h('h3', {}, `Series · images (${images.length})`));
    const list = h('div', { class: 'strip' });
    this.buttons = images.map((img, i) => {
      const canvas = h('canvas', { width: 72, height: 72, class: 'thumb' });
      const kind = viewKind(img);
      const flag = img.ai?.flag && img.ai.flag !== 'none' ? img.ai.flag : null;
      const b = h('button', { type: 'button', class: 'series-item', title: img.sopInstanceUid, dataset: { index: String(i) } },
        canvas,
        h('span', { class: 'series-text' },
          h('strong', { class: 'series-number' }, `Series ${img.seriesNumber ?? '—'}`),
          h('span', { class: 'series-description' }, img.seriesDescription ?? ([img.bodyPart, img.viewPosition].filter(Boolean).join(' ') || img.modality || 'image')),
          h('small', {}, [img.viewPosition ?? (kind === 'other' ? null : kind), img.laterality, img.instanceNumber !== null ? `#${img.instanceNumber}` : null].filter(Boolean).join(' · ')),
          flag ? h('span', { class: `flag flag-${flag}` }, flag) : null));
      b.addEventListener('click', () => this.onPick(i));
      list.append(b);
      thumbnail(img, canvas);
      return b;
    });
    this.element.append(list);
  }

  /** Marks the images shown (cell number) and the selected viewport's one. */
  mark(shown: readonly number[], active: number) {
    this.buttons.forEach((b, i) => {
      const cell = shown.indexOf(i);
      b.classList.toggle('current', cell === active);
      b.classList.toggle('shown', cell >= 0);
      b.dataset.cell = cell >= 0 ? String(cell + 1) : '';
    });
  }
}

export type DecisionGate = { open: true } | { open: false; reason: string };

/**
 * The decision panel: the four decisions (keys A D M U), a comment, the measurements drawn, the
 * current decision with "undo", and the history. Buttons are off until the shown images rendered.
 */
export class DecisionPanel {
  readonly element = h('div', { class: 'panel review', id: 'review-panel' });
  readonly comment = h('textarea', { id: 'comment', rows: 2, maxLength: 2000, placeholder: 'Optional comment (C)', 'aria-label': 'Comment' });
  private readonly gate = h('p', { class: 'gate', id: 'decision-gate', role: 'status' });
  private readonly current = h('div', { class: 'current-decision', id: 'current-decision' });
  private readonly measurements = h('ul', { class: 'measurements', id: 'measurements' });
  private readonly history = h('ol', { class: 'history', id: 'review-history' });
  private readonly buttons: HTMLButtonElement[] = [];
  readonly undoButton = h('button', { type: 'button', id: 'undo-decision', hidden: true, title: 'Undo the decision (Z)' }, h('kbd', {}, 'Z'), ' Undo');

  constructor(private readonly canDecide: boolean, onDecide: (decision: Decision) => void, onUndo: () => void) {
    const button = (decision: Decision, key: string) => {
      const b = h('button', { type: 'button', class: `decide decide-${decision}`, id: `decide-${decision}`, title: `${DECISION_TEXT[decision]} (${key})` },
        h('kbd', {}, key), ` ${DECISION_TEXT[decision]}`);
      b.addEventListener('click', () => onDecide(decision));
      if (!canDecide) b.title = 'Decisions are recorded by radiologists';
      this.buttons.push(b);
      return b;
    };
    this.undoButton.addEventListener('click', onUndo);
    this.element.append(
      h('h3', {}, 'Your decision'),
      this.gate,
      h('div', { class: 'decide-grid' }, button('agree', 'A'), button('disagree', 'D'), button('missed', 'M'), button('uncertain', 'U')),
      this.comment,
      this.current,
      h('h3', {}, 'Measurements'),
      this.measurements,
      h('h3', {}, 'History'),
      this.history);
    this.setGate({ open: false, reason: 'Waiting for the image to display…' });
  }

  setGate(gate: DecisionGate) {
    for (const b of this.buttons) b.disabled = !this.canDecide || !gate.open;
    this.gate.textContent = gate.open ? '' : gate.reason;
    this.gate.hidden = gate.open;
    this.element.dataset.gate = gate.open ? 'open' : 'closed';
  }

  renderMeasurements(items: (DrawnMeasurement & { label: string })[]) {
    clear(this.measurements);
    if (!items.length) this.measurements.append(h('li', { class: 'muted' }, 'None. T: length, E: angle.'));
    for (const m of items) {
      this.measurements.append(h('li', { class: `measurement measurement-${m.kind}`, dataset: { value: m.value.toFixed(3), unit: m.unit } },
        `${m.kind === 'length' ? 'Length' : 'Angle'} ${m.value.toFixed(1)} ${m.unit === 'deg' ? '°' : m.unit}`, h('small', {}, ` · ${m.label}`)));
    }
  }

  /** The current decision (undo offered when the server can), and every earlier one. */
  renderHistory(reviews: readonly ReviewEntry[], undoAvailable: boolean) {
    clear(this.history);
    clear(this.current);
    const live = reviews.find((r) => !r.supersededAt && !r.undoneAt);
    this.undoButton.hidden = !live || !undoAvailable;
    if (live) {
      this.current.append(h('span', {}, 'Current: ', h('strong', {}, DECISION_TEXT[live.decision] ?? live.decision), ` — ${live.user.displayName}. Another decision key changes it.`), this.undoButton);
    }
    this.element.dataset.decision = live?.decision ?? '';
    if (!reviews.length) this.history.append(h('li', { class: 'muted' }, 'No decision yet.'));
    for (const r of reviews) {
      const gone = r.supersededAt ? ' (changed)' : r.undoneAt ? ' (undone)' : '';
      this.history.append(h('li', { class: gone ? 'superseded' : 'current' },
        h('strong', {}, DECISION_TEXT[r.decision] ?? r.decision),
        ` — ${r.user.displayName}, ${dateTime(r.at)}`,
        r.boxes.length ? ` · ${r.boxes.length} box${r.boxes.length > 1 ? 'es' : ''}` : '',
        r.measurements?.length ? ` · ${r.measurements.length} measurement${r.measurements.length > 1 ? 's' : ''}` : '',
        gone,
        r.comment ? h('div', { class: 'comment' }, r.comment) : null));
    }
  }
}
