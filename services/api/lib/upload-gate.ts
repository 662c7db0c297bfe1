/**
 * Bounds the uploads handled at once. Past the bound a request is refused straight away with
 * 503 + Retry-After instead of queueing in memory: the sender retries, nothing is lost.
 */
export class UploadGate {
  private active = 0;
  constructor(private readonly max: number) {}

  tryEnter(): boolean {
    if (this.active >= this.max) return false;
    this.active++;
    return true;
  }

  leave(): void {
    this.active = Math.max(0, this.active - 1);
  }

  get inFlight(): number {
    return this.active;
  }
}
