/** A token bucket for --bandwidth: callers await take(bytes) before sending. */
export class Throttle {
  private tokens: number;
  private last = performance.now();

  /** `bytesPerSecond` undefined or 0 means unlimited. */
  constructor(private readonly bytesPerSecond?: number) {
    // A quarter second of burst keeps the pipe busy without overshooting.
    this.tokens = bytesPerSecond ? bytesPerSecond / 4 : 0;
  }

  async take(bytes: number): Promise<void> {
    const rate = this.bytesPerSecond;
    if (!rate) return;
    for (;;) {
      const now = performance.now();
      this.tokens = Math.min(rate / 4 + bytes, this.tokens + ((now - this.last) / 1000) * rate);
      this.last = now;
      if (this.tokens >= bytes) {
        this.tokens -= bytes;
        return;
      }
      await new Promise((r) => setTimeout(r, Math.max(1, ((bytes - this.tokens) / rate) * 1000)));
    }
  }
}
