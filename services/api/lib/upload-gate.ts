/** Why an upload was not let in: the sender retries after `retryAfterSec`, nothing is lost. */
export interface GateRefusal {
  status: 429 | 503;
  retryAfterSec: number;
  message: string;
}

const RETRY_AFTER_SEC = 5;

/**
 * Bounds the uploads handled at once, in all and per API key, so one site's senders cannot take
 * every slot; and, through `countRate` (Redis, shared by API processes), how many one key may
 * start per minute. Past a bound a request is refused straight away (503 when the server is
 * busy, 429 when this key is over its share) instead of queueing in memory.
 */
export class UploadGate {
  private active = 0;
  private readonly perKey = new Map<string, number>();

  constructor(
    private readonly max: number,
    private readonly maxPerKey = max,
    /** Seconds until `key` may start another upload, 0 when it may now. */
    private readonly countRate: (key: string) => Promise<number> = async () => 0,
  ) {}

  async enter(key: string): Promise<GateRefusal | undefined> {
    if (this.active >= this.max) return { status: 503, retryAfterSec: RETRY_AFTER_SEC, message: `too many uploads in progress; retry after ${RETRY_AFTER_SEC} s` };
    if ((this.perKey.get(key) ?? 0) >= this.maxPerKey) {
      return { status: 429, retryAfterSec: RETRY_AFTER_SEC, message: `at most ${this.maxPerKey} uploads at once per API key; retry after ${RETRY_AFTER_SEC} s` };
    }
    // Without Redis the rate is not known; uploads still go on (they are stored and queued later).
    const wait = await this.countRate(key).catch(() => 0);
    if (wait > 0) return { status: 429, retryAfterSec: wait, message: `upload rate limit of this API key reached; retry after ${wait} s` };
    this.active++;
    this.perKey.set(key, (this.perKey.get(key) ?? 0) + 1);
    return undefined;
  }

  leave(key: string): void {
    this.active = Math.max(0, this.active - 1);
    const left = (this.perKey.get(key) ?? 1) - 1;
    if (left > 0) this.perKey.set(key, left);
    else this.perKey.delete(key);
  }

  get inFlight(): number {
    return this.active;
  }
}
