/**
 * The viewer's keys as data: each binding names a command; the viewer runs commands, and the help
 * panel (?) is generated from this list, so the two cannot disagree.
 */
export type Command =
  | 'nextStudy' | 'prevStudy' | 'nextImage' | 'prevImage' | 'toggleOverlay' | 'toggleLayout' | 'toggleSync'
  | 'agree' | 'disagree' | 'missed' | 'uncertain' | 'saveMissed' | 'undo' | 'comment'
  | 'toolWwwc' | 'toolPan' | 'toolLength' | 'toolAngle' | 'clearDrawings'
  | 'preset' | 'zoomIn' | 'zoomOut' | 'rotateRight' | 'rotateLeft' | 'flipH' | 'flipV' | 'invert' | 'fit' | 'reset'
  | 'help' | 'escape';

export interface Binding {
  keys: readonly string[];
  /** How the help shows the keys. */
  display: string;
  help: string;
  command: Command;
}

/** Commands that record a clinical decision: only on a rendered image, never behind the help. */
export const DECISION_COMMANDS: ReadonlySet<Command> = new Set(['agree', 'disagree', 'missed', 'uncertain', 'saveMissed']);

export const KEYMAP: readonly Binding[] = [
  { keys: ['n', 'N', 'PageDown'], display: 'N  /  Page Down', help: 'Next study (in the order listed when the viewer opened)', command: 'nextStudy' },
  { keys: ['p', 'P', 'PageUp'], display: 'P  /  Page Up', help: 'Previous study', command: 'prevStudy' },
  { keys: ['ArrowRight', ' '], display: '→  /  Space', help: 'Next image of the study (in the selected viewport)', command: 'nextImage' },
  { keys: ['ArrowLeft', 'Backspace'], display: '←  /  Backspace', help: 'Previous image', command: 'prevImage' },
  { keys: ['x', 'X'], display: 'X', help: 'Layout 1 × 1 / 1 × 2 (frontal left, lateral right)', command: 'toggleLayout' },
  { keys: ['s', 'S'], display: 'S', help: 'Synchronise window/level between the viewports', command: 'toggleSync' },
  { keys: ['o', 'O'], display: 'O', help: 'Toggle AI overlay (heat map and boxes)', command: 'toggleOverlay' },
  { keys: ['a', 'A'], display: 'A', help: 'Agree — fracture present', command: 'agree' },
  { keys: ['d', 'D'], display: 'D', help: 'Disagree — no fracture', command: 'disagree' },
  { keys: ['m', 'M'], display: 'M', help: 'AI missed a fracture: draw boxes, then Enter (or M) to save', command: 'missed' },
  { keys: ['Enter'], display: 'Enter', help: 'Save the drawn "missed" boxes', command: 'saveMissed' },
  { keys: ['u', 'U'], display: 'U', help: 'Uncertain', command: 'uncertain' },
  { keys: ['z', 'Z'], display: 'Z', help: 'Undo the last decision (another decision key changes it)', command: 'undo' },
  { keys: ['c', 'C'], display: 'C', help: 'Write a comment (sent with the next decision)', command: 'comment' },
  { keys: ['w', 'W'], display: 'W', help: 'Tool: window / level (left drag)', command: 'toolWwwc' },
  { keys: ['g', 'G'], display: 'G', help: 'Tool: pan (left drag; for trackpads)', command: 'toolPan' },
  { keys: ['t', 'T'], display: 'T', help: 'Tool: length (mm when the image has a pixel spacing)', command: 'toolLength' },
  { keys: ['e', 'E'], display: 'E', help: 'Tool: angle (three clicks)', command: 'toolAngle' },
  { keys: ['Delete'], display: 'Delete', help: 'Remove the measurements drawn on this image', command: 'clearDrawings' },
  { keys: ['1', '2', '3', '4', '5'], display: '1 … 5', help: 'Window presets: default, full range, bone, soft tissue, high contrast', command: 'preset' },
  { keys: ['+', '='], display: '+', help: 'Zoom in', command: 'zoomIn' },
  { keys: ['-', '_'], display: '−', help: 'Zoom out', command: 'zoomOut' },
  { keys: ['r', 'R'], display: 'R  /  L', help: 'Rotate 90° right / left', command: 'rotateRight' },
  { keys: ['l', 'L'], display: '', help: '', command: 'rotateLeft' },
  { keys: ['h', 'H'], display: 'H  /  V', help: 'Flip horizontal / vertical', command: 'flipH' },
  { keys: ['v', 'V'], display: '', help: '', command: 'flipV' },
  { keys: ['i', 'I'], display: 'I', help: 'Invert', command: 'invert' },
  { keys: ['f', 'F'], display: 'F', help: 'Fit to window', command: 'fit' },
  { keys: ['0'], display: '0', help: 'Reset the view', command: 'reset' },
  { keys: ['?'], display: '?', help: 'This help', command: 'help' },
  { keys: ['Escape'], display: 'Esc', help: 'Close help, cancel drawing, or back to the worklist', command: 'escape' },
];

/** Mouse gestures (not keys), listed in the help after the keys. */
export const MOUSE_HELP: readonly [string, string][] = [
  ['Drag (left)', 'The current tool (window / level unless changed)'],
  ['Shift + drag, or drag (middle)', 'Pan (window / level unchanged)'],
  ['Wheel', 'Zoom about the pointer'],
  ['Drag (right)', 'Zoom'],
];

const byKey = new Map<string, Binding>(KEYMAP.flatMap((b) => b.keys.map((k) => [k, b] as const)));

export function bindingFor(key: string): Binding | undefined {
  return byKey.get(key);
}

/** Rows of the help table: every binding that has a text, then the mouse gestures. */
export function helpRows(): [string, string][] {
  return [...KEYMAP.filter((b) => b.display).map((b) => [b.display, b.help] as [string, string]), ...MOUSE_HELP];
}
