// Per-attach raw-DEFLATE decoder (terminal-protocol.md §7): one stream whose
// LZ77 window persists across `output` messages, each ending in a sync flush.
import { Inflate } from "fflate";

/** Largest plaintext one `output` message may inflate to (§7 "Bound"). */
export const MAX_PLAINTEXT = 1_048_576;
/** Input is fed in slices this big so a hostile frame is stopped early. */
const SLICE = 1024;

/** Why an `output` frame could not be inflated. */
export class InflateError extends Error {}

/** One raw inflater; create a new one on every `attached`. */
export class StreamInflater {
  private readonly inf = new Inflate();
  private parts: Uint8Array[] = [];
  private total = 0;
  private failed = false;

  constructor() {
    this.inf.ondata = (chunk) => {
      this.total += chunk.length;
      if (this.total <= MAX_PLAINTEXT) this.parts.push(chunk.slice());
    };
  }

  /** Inflates one message's `data`; everything it encodes is returned now. */
  push(data: Uint8Array): Uint8Array {
    if (this.failed) throw new InflateError("inflater already failed");
    this.parts = [];
    this.total = 0;
    try {
      for (let i = 0; i < data.length; i += SLICE) {
        this.inf.push(data.subarray(i, Math.min(data.length, i + SLICE)), false);
        if (this.total > MAX_PLAINTEXT) throw new InflateError("output frame inflates past 1048576 bytes");
      }
    } catch (e) {
      this.failed = true;
      if (e instanceof InflateError) throw e;
      throw new InflateError(`bad deflate data: ${(e as Error).message}`);
    }
    const out = new Uint8Array(this.total);
    let p = 0;
    for (const part of this.parts) {
      out.set(part, p);
      p += part.length;
    }
    this.parts = [];
    return out;
  }
}
