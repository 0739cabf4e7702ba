// The reliable channel's send queue under stream v2's copy lead
// (docs/stream-v2.md §4): a fast copy and its original must not leave in the
// same datagram (SCTP bundles every channel's queued chunks into its next
// packet, so they would be lost together). After a fast copy, reliable
// messages wait until FAST_COPY_LEAD_MS has passed since the last copy, in a
// later task, and keep their order: one sent meanwhile queues behind them.

/** How long an original waits after the last fast copy (`rtc_transport::FAST_COPY_LEAD`). */
export const FAST_COPY_LEAD_MS = 3;

export class LeadQueue {
  private held: Uint8Array[] = [];
  private lastCopy = Number.NEGATIVE_INFINITY;
  private timer: ReturnType<typeof setTimeout> | undefined;

  /** `send` puts one message on the reliable channel; `now` is a millisecond clock. */
  constructor(
    private readonly send: (b: Uint8Array) => void,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** A fast copy just went out. */
  copied(): void {
    this.lastCopy = this.now();
  }

  /** A reliable message: sent now, unless a copy went out less than the lead ago or earlier ones wait. */
  push(b: Uint8Array): void {
    if (this.held.length === 0 && this.now() >= this.lastCopy + FAST_COPY_LEAD_MS) {
      this.send(b);
      return;
    }
    this.held.push(b);
    this.arm();
  }

  /** Messages waiting for the lead to pass. */
  get waiting(): number {
    return this.held.length;
  }

  /** Drops whatever waits (the channel closed). */
  clear(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.held = [];
  }

  private arm(): void {
    if (this.timer !== undefined) return;
    const left = this.lastCopy + FAST_COPY_LEAD_MS - this.now();
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.flush();
    }, Math.max(1, Math.ceil(left)));
  }

  private flush(): void {
    // A copy sent since the timer was armed moves the lead on.
    if (this.now() < this.lastCopy + FAST_COPY_LEAD_MS) {
      this.arm();
      return;
    }
    const out = this.held;
    this.held = [];
    for (const b of out) this.send(b);
  }
}
