import { stage } from '../stage-timing.js';
import { runSteps, runTransaction, writeTransaction, type Db, type Step, type StepResult } from './database.js';

/**
 * A piece of write work given as statements (see `runSteps`) and what to make of their results.
 * `result` runs after the commit and may throw to fail its caller, but can no longer undo anything:
 * whatever must not be written in some case is kept from being written by a `when` on a select.
 */
export interface Script<T> {
  steps: Step[];
  result: (results: StepResult[]) => T;
}

type Pending =
  | { work: (trx: Db) => Promise<unknown>; resolve: (value: unknown) => void; reject: (error: unknown) => void }
  | { script: Script<unknown>; resolve: (value: unknown) => void; reject: (error: unknown) => void };

/**
 * Group commit: pieces of write work that arrive while the database is busy, or within the same
 * event-loop turn, run in one transaction — one COMMIT, so one WAL fsync with synchronous=FULL —
 * instead of one each. Every caller's promise settles only after the commit that holds its own
 * work, so "committed" still means durable for each. If the shared transaction fails, each piece
 * is re-run alone, so one bad piece fails only its own caller.
 *
 * A group of scripts only (`runScript`: every upload's record) goes to the database as one list,
 * begun and committed with it (`runTransaction`: on SQLite one message to its thread for the whole
 * group, where functions (`run`) cost a round trip each and one more for the commit).
 */
export class GroupCommit {
  private pending: Pending[] = [];
  private scheduled = false;
  private flushing = false;

  constructor(private readonly db: Db) {}

  run<T>(work: (trx: Db) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ work, resolve: resolve as (value: unknown) => void, reject });
      this.schedule();
    });
  }

  runScript<T>(script: Script<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ script, resolve: resolve as (value: unknown) => void, reject });
      this.schedule();
    });
  }

  private schedule() {
    if (this.scheduled || this.flushing) return;
    this.scheduled = true;
    // setImmediate runs after the I/O callbacks of this turn: work they submit joins this group.
    setImmediate(() => void this.flush());
  }

  private async flush() {
    this.scheduled = false;
    this.flushing = true;
    const batch = this.pending;
    this.pending = [];
    try {
      if (batch.length === 1) await stage('txn-1', this.alone(batch[0]));
      else if (batch.every((item) => 'script' in item)) await stage(`txn-${batch.length}`, this.scripts(batch as Extract<Pending, { script: unknown }>[]));
      else {
        let results: unknown[] | undefined;
        try {
          results = await stage(`txn-${batch.length}`, writeTransaction(this.db, async (trx) => {
            const out: unknown[] = [];
            for (const item of batch) out.push('script' in item ? item.script.result(await runSteps(trx, item.script.steps)) : await item.work(trx));
            return out;
          }));
        } catch {
          for (const item of batch) await this.alone(item);
        }
        if (results) batch.forEach((item, i) => item.resolve(results[i]));
      }
    } finally {
      this.flushing = false;
      if (this.pending.length) this.schedule();
    }
  }

  /** Every script's statements in one list (each `when` moved by where its script starts), one transaction. */
  private async scripts(batch: Extract<Pending, { script: unknown }>[]): Promise<void> {
    const starts: number[] = [];
    const steps: Step[] = [];
    for (const { script } of batch) {
      const offset = steps.length;
      starts.push(offset);
      for (const step of script.steps) steps.push(step.when === undefined ? step : { ...step, when: step.when + offset });
    }
    let results: StepResult[];
    try {
      results = await runTransaction(this.db, steps);
    } catch {
      for (const item of batch) await this.alone(item);
      return;
    }
    batch.forEach((item, i) => settle(item, () => item.script.result(results.slice(starts[i], starts[i] + item.script.steps.length))));
  }

  private async alone(item: Pending): Promise<void> {
    if ('work' in item) return writeTransaction(this.db, item.work).then(item.resolve, item.reject);
    let results: StepResult[];
    try {
      results = await runTransaction(this.db, item.script.steps);
    } catch (error) {
      item.reject(error);
      return;
    }
    settle(item, () => item.script.result(results));
  }
}

function settle(item: Pending, value: () => unknown): void {
  try {
    item.resolve(value());
  } catch (error) {
    item.reject(error);
  }
}
