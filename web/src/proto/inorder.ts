// Stream v2 (docs/stream-v2.md): the numbers both ends agree on and `InOrder`,
// the one rule by which a receiver applies each byte of an offset-carrying
// stream exactly once, whichever channel delivered it first. A mirror of
// crates/terminal-protocol/src/stream.rs (same verdicts, same tests in
// test/inorder.test.ts); the phone runs it on `output`. No I/O, no clock.

/** Label of the second DataChannel: unordered, `maxRetransmits: 0`, opened by the phone after `auth_ok` (§4). */
export const FAST_CHANNEL_LABEL = "terminal-fast";
/** Largest `data` a fast-channel copy carries (plaintext, never compressed). */
export const MAX_FAST_COPY = 1024;
/** Largest offset on the wire: 2^53 − 1, exact in a JavaScript number. */
export const MAX_STREAM_OFFSET = Number.MAX_SAFE_INTEGER;

/** The channel a message arrived on: the reliable `terminal` channel is authoritative, the fast one carries copies. */
export type Via = "reliable" | "fast";

/** What to do with a message of `len` bytes at `offset`. */
export type Verdict =
  /** Apply `data.subarray(skip)`; the first `skip` bytes were applied already (an overlapping copy), 0 normally. */
  | { kind: "apply"; skip: number }
  /** Every byte was applied already (the other channel's copy won). */
  | { kind: "duplicate" }
  /** A fast copy from beyond the next expected byte: dropped, its reliable copy arrives in order later. */
  | { kind: "ahead" }
  /** A reliable message beyond the next expected byte: apply it; `missing` bytes before it never come. */
  | { kind: "gap"; missing: number };

/**
 * The receiver's position in one offset-carrying stream. Reliable messages
 * arrive in order, so everything a fast copy delivered early comes again
 * reliably: comparing each message's byte range with the next expected
 * offset is all it takes to apply every byte once.
 */
export class InOrder {
  private constructor(private pos: number | undefined) {}

  /** A stream whose first offset is not known yet: the first reliable message sets it; fast copies wait for that. */
  static unknown(): InOrder {
    return new InOrder(undefined);
  }

  /** A stream that continues at `offset` (e.g. `attached.offset`). */
  static startingAt(offset: number): InOrder {
    return new InOrder(offset);
  }

  /** The next offset expected, if known. */
  get next(): number | undefined {
    return this.pos;
  }

  /** Moves to `offset` (a snapshot says the stream continues there); returns the bytes skipped forward (0 when not forward). */
  jumpTo(offset: number): number {
    const skipped = this.pos === undefined ? 0 : Math.max(0, offset - this.pos);
    this.pos = offset;
    return skipped;
  }

  /** Decides about `len` bytes starting at `offset` that arrived `via` a channel, and advances past whatever it says to apply. */
  accept(offset: number, len: number, via: Via): Verdict {
    const end = offset + len;
    const next = this.pos;
    if (next === undefined) {
      if (via === "fast") return { kind: "ahead" };
      this.pos = end;
      return { kind: "apply", skip: 0 };
    }
    if (offset === next) {
      this.pos = end;
      return { kind: "apply", skip: 0 };
    }
    if (offset < next) {
      if (end <= next) return { kind: "duplicate" };
      this.pos = end;
      return { kind: "apply", skip: next - offset };
    }
    if (via === "fast") return { kind: "ahead" };
    this.pos = end;
    return { kind: "gap", missing: offset - next };
  }
}
