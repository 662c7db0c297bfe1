import { stage } from '../stage-timing.js';
import { writeTransaction, type Db } from './database.js';

interface Pending {
  work: (trx: Db) => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

/**
 * Group commit: pieces of write work that arrive while the database is busy, or within the same
 * event-loop turn, run in one transaction — one COMMIT, so one WAL fsync with synchronous=FULL —
 * instead of one each. Every caller's promise settles only after the commit that holds its own
 * work, so "committed" still means durable for each. If the shared transaction fails, each piece
 * is re-run alone, so one bad piece fails only its own caller.
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
      else {
        let results: unknown[] | undefined;
        try {
          results = await stage(`txn-${batch.length}`, writeTransaction(this.db, async (trx) => {
            const out: unknown[] = [];
            for (const item of batch) out.push(await item.work(trx));
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

  private alone(item: Pending): Promise<void> {
    return writeTransaction(this.db, item.work).then(item.resolve, item.reject);
  }
}
