/**
 * Clinical priority of a study (from the DICOM Requested Procedure / Study priority), as stored:
 * a number, lower = sooner (the same scale the classify queue uses). One table for the server and
 * the viewer, so a study is never "high" on one side and "urgent" on the other.
 */
export const PRIORITY = { stat: 1, high: 2, routine: 10, low: 20 } as const;
export type PriorityName = keyof typeof PRIORITY;

export function priorityName(value: number): PriorityName {
  return value <= PRIORITY.stat ? 'stat' : value <= PRIORITY.high ? 'high' : value >= PRIORITY.low ? 'low' : 'routine';
}
