// The phone's receiving side of stream v2 on one connection
// (docs/stream-v2.md §3–§5): turns reliable `output` (inflated in order,
// every one of them, so the inflater stays in step with the host's
// compressor) and fast-channel copies into the plaintext to show, each byte
// once, and remembers where the stream stands for a resume after a reconnect.
// No I/O: net/connection.ts feeds it decoded events.
import { StreamInflater } from "./inflate";
import { InOrder, MAX_FAST_COPY } from "./inorder";
import type { Event } from "./msgpack";

type Output = Extract<Event, { type: "output" }>;
type Attached = Extract<Event, { type: "attached" }>;

/** Where a pane's stream stood for this phone: `attach{resumeFrom: offset}` continues there (§5). */
export interface ResumePoint {
  paneId: string;
  offset: number;
}

export class PaneStream {
  private inflater: StreamInflater | undefined;
  /** The current attachment, when the host gave it offsets. */
  private current: { paneId: string; order: InOrder } | undefined;
  /** The resume point an `attach` in flight asked for: still true until its `attached` arrives. */
  private pending: ResumePoint | undefined;
  /**
   * Fast copies are dropped unread from an `attached` without `resumed` and
   * from every snapshot part until the next reliable stream output is
   * applied (§3): a copy at the snapshot's offset can overtake the snapshot
   * (or its later parts) and would be drawn before the screen it follows.
   */
  private fastHeld = false;
  /** Bytes the host left out (a snapshot jumping forward, a gap) on this connection. */
  skipped = 0;
  /** Fast copies shown because they came before their reliable copy. */
  fastApplied = 0;

  /** An `attach` (asking `resume`, if any) or a `detach` goes out: no current attachment until the next `attached`. */
  leaving(resume?: ResumePoint): void {
    this.current = undefined;
    this.pending = resume;
  }

  /** `attached`: a new stream (and a new inflater, §7 of the terminal protocol) for this attachment. */
  attached(ev: Attached): void {
    this.inflater = ev.compression === "deflate" ? new StreamInflater() : undefined;
    this.pending = undefined;
    this.current = ev.offset === undefined ? undefined : { paneId: ev.paneId, order: InOrder.startingAt(ev.offset) };
    this.fastHeld = ev.resumed !== true;
  }

  /** The attachment ended (`detached`, its pane closed, the attach failed): nothing to resume. */
  ended(): void {
    this.current = undefined;
    this.pending = undefined;
  }

  /**
   * Whether input may be copied onto the fast channel (§4): only while the
   * attachment asked for is confirmed by `attached`, with offsets, and no
   * `attach` or `detach` went out since; a copy could overtake such a
   * request on the reliable channel and reach the previous pane.
   */
  get copiesInput(): boolean {
    return this.current !== undefined;
  }

  /** The pane of the current attachment with offsets. */
  get paneId(): string | undefined {
    return this.current?.paneId;
  }

  /**
   * A reliable `output`: inflated whatever the verdict, then the bytes to
   * show (none for a duplicate). Throws InflateError on bad deflate data.
   */
  reliable(ev: Output): Uint8Array | undefined {
    const data = this.inflater ? this.inflater.push(ev.data) : ev.data;
    const cur = this.current;
    if (!cur || ev.offset === undefined) return data;
    if (ev.snapshot) {
      this.skipped += cur.order.jumpTo(ev.offset);
      this.fastHeld = true;
      return data;
    }
    const v = cur.order.accept(ev.offset, data.length, "reliable");
    switch (v.kind) {
      case "apply":
        this.fastHeld = false;
        return v.skip ? data.subarray(v.skip) : data;
      case "gap":
        this.fastHeld = false;
        this.skipped += v.missing;
        return data;
      default:
        return undefined;
    }
  }

  /**
   * A decoded message from the fast channel: the bytes to show, or nothing.
   * Only a stream `output` copy of the current attachment's pane counts,
   * and none while a snapshot may still be on its way; everything else on
   * that channel is ignored.
   */
  fast(ev: Event): Uint8Array | undefined {
    if (ev.type !== "output" || ev.snapshot || ev.offset === undefined || ev.data.length > MAX_FAST_COPY) return undefined;
    const cur = this.current;
    if (!cur || ev.paneId !== cur.paneId || this.fastHeld) return undefined;
    const v = cur.order.accept(ev.offset, ev.data.length, "fast");
    if (v.kind !== "apply") return undefined;
    this.fastApplied++;
    return v.skip ? ev.data.subarray(v.skip) : ev.data;
  }

  /** Where to resume after this connection: the attached pane and the next offset, if the host gave offsets. */
  resumePoint(): ResumePoint | undefined {
    const cur = this.current;
    const next = cur?.order.next;
    if (cur && next !== undefined) return { paneId: cur.paneId, offset: next };
    return this.pending;
  }
}
