// PaneStream, the phone's receiving side of stream v2 (docs/stream-v2.md
// §3–§5), fed what a host sends: every reliable output deflated by one
// sync-flushed zlib stream (as the agent does), plaintext fast copies of the
// small ones. Whatever the fast channel loses, reorders or delivers first,
// the bytes shown are the pane's stream exactly once, and the inflater stays
// in step because duplicates are inflated too.
import { describe, expect, it } from "vitest";
import { createDeflateRaw, constants, type DeflateRaw } from "node:zlib";
import { PaneStream } from "../src/proto/stream";
import { MAX_FAST_COPY } from "../src/proto/inorder";
import { InflateError, StreamInflater } from "../src/proto/inflate";
import type { Event } from "../src/proto/msgpack";

type Output = Extract<Event, { type: "output" }>;
const enc = new TextEncoder();
const dec = new TextDecoder();

/** One attachment on the host side: offsets from `base`, deflate per §7, fast copies per §4. */
class Host {
  private readonly z: DeflateRaw = createDeflateRaw({ level: 6 });
  constructor(public offset: number, readonly paneId = "%3") {}

  private async deflate(b: Uint8Array): Promise<Uint8Array> {
    const parts: Buffer[] = [];
    const onData = (c: Buffer) => parts.push(c);
    this.z.on("data", onData);
    this.z.write(b);
    await new Promise<void>((r) => this.z.flush(constants.Z_SYNC_FLUSH, () => r()));
    this.z.off("data", onData);
    return new Uint8Array(Buffer.concat(parts));
  }

  /** A stream output: the reliable (compressed) message and, when small enough, its fast copy. */
  async out(text: string): Promise<{ reliable: Output; fast?: Output }> {
    const plain = enc.encode(text);
    const offset = this.offset;
    this.offset += plain.length;
    const reliable: Output = { type: "output", data: await this.deflate(plain), offset };
    if (plain.length > MAX_FAST_COPY) return { reliable };
    return { reliable, fast: { type: "output", data: plain, offset, paneId: this.paneId } };
  }

  /** A snapshot: the stream continues at `head` after it. */
  async snapshot(text: string, head: number): Promise<Output> {
    this.offset = head;
    return { type: "output", data: await this.deflate(enc.encode(text)), offset: head, snapshot: true };
  }
}

/** A deterministic generator (xorshift32), so a failing order can be replayed. */
function rng(seed: number): () => number {
  let x = seed || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

function shown(s: PaneStream, via: "reliable" | "fast", ev: Event, into: string[]): void {
  const b = via === "reliable" ? s.reliable(ev as Output) : s.fast(ev);
  if (b) into.push(dec.decode(b));
}

describe("PaneStream", () => {
  it("a fast copy first: its reliable copy is inflated but not shown, and the window stays in step", async () => {
    const host = new Host(1000);
    const s = new PaneStream();
    // Resumed: no snapshot follows, so fast copies count from the start.
    s.attached({ type: "attached", paneId: "%3", compression: "deflate", offset: 1000, resumed: true });
    const out: string[] = [];
    const a = await host.out("hello hello hello\r\n");
    const b = await host.out("hello hello hello\r\n"); // deflates to a back-reference into a's window
    shown(s, "fast", a.fast!, out);
    shown(s, "reliable", a.reliable, out);
    shown(s, "reliable", b.reliable, out);
    shown(s, "fast", b.fast!, out);
    expect(out).toEqual(["hello hello hello\r\n", "hello hello hello\r\n"]);
    expect(s.fastApplied).toBe(1);
    // b needs a's window: had a's reliable copy not been inflated, b could not be.
    expect(() => new StreamInflater().push(b.reliable.data)).toThrow(InflateError);
    expect(s.resumePoint()).toEqual({ paneId: "%3", offset: 1038 });
  });

  for (const seed of [1, 7, 42, 1234, 99991]) {
    it(`lost, late and reordered fast copies still show every byte once (seed ${seed})`, async () => {
      const r = rng(seed);
      const host = new Host(2 ** 32 - 50);
      const texts = Array.from({ length: 80 }, (_, i) =>
        i % 17 === 3 ? "x".repeat(1500 + i) : `${i}:${"ab".repeat(Math.floor(r() * 9))}\r\n`);
      const sent = [];
      for (const t of texts) sent.push(await host.out(t));
      // Reliable messages in order; each fast copy lost, or arriving up to
      // three messages before or after its reliable copy (ahead of it, first,
      // or a duplicate), and once far from it.
      const arrivals: { via: "reliable" | "fast"; ev: Event }[] = sent.map((m) => ({ via: "reliable" as const, ev: m.reliable }));
      for (const m of sent) {
        if (!m.fast || r() < 0.3) continue;
        const at = arrivals.findIndex((a) => a.ev === m.reliable) + Math.floor(r() * 7) - 3;
        arrivals.splice(Math.max(0, Math.min(arrivals.length, at)), 0, { via: "fast", ev: m.fast });
      }
      arrivals.push({ via: "fast", ev: sent[0].fast! });
      arrivals.unshift({ via: "fast", ev: sent[60].fast! });
      // Noise on the fast channel: another pane's copy, a non-output message, a snapshot flag.
      arrivals.splice(5, 0, { via: "fast", ev: { ...sent[3].fast!, paneId: "%9" } });
      arrivals.splice(9, 0, { via: "fast", ev: { type: "pong", latency: 1 } });
      arrivals.splice(11, 0, { via: "fast", ev: { ...sent[8].fast!, snapshot: true } });
      const s = new PaneStream();
      s.attached({ type: "attached", paneId: "%3", compression: "deflate", offset: 2 ** 32 - 50 });
      const out: string[] = [];
      for (const a of arrivals) shown(s, a.via, a.ev, out);
      expect(out.join("")).toBe(texts.join(""));
      expect(s.skipped).toBe(0);
      expect(s.fastApplied).toBeGreaterThan(0);
      expect(s.resumePoint()).toEqual({ paneId: "%3", offset: host.offset });
    });
  }

  it("a copy overlapping what was shown adds only its new tail", () => {
    const s = new PaneStream();
    s.attached({ type: "attached", paneId: "%3", offset: 10 });
    expect(dec.decode(s.reliable({ type: "output", data: enc.encode("abc"), offset: 10 }))).toBe("abc");
    expect(dec.decode(s.fast({ type: "output", data: enc.encode("bcde"), offset: 11, paneId: "%3" }))).toBe("de");
    expect(s.reliable({ type: "output", data: enc.encode("bcde"), offset: 11 })).toBeUndefined();
  });

  it("a snapshot jumps: skipped bytes are counted, older copies are not shown", async () => {
    const host = new Host(500);
    const s = new PaneStream();
    s.attached({ type: "attached", paneId: "%3", compression: "deflate", offset: 500 });
    const out: string[] = [];
    const first = await host.out("before ");
    shown(s, "reliable", first.reliable, out);
    const lost = await host.out("never sent"); // the host fell behind past the bound and discarded this
    const snap = await host.snapshot("\x1b[H\x1b[2J$ ", 2_000_000);
    shown(s, "reliable", snap, out);
    shown(s, "fast", lost.fast!, out);
    const after = await host.out("after");
    shown(s, "fast", after.fast!, out);
    shown(s, "reliable", after.reliable, out);
    expect(out).toEqual(["before ", "\x1b[H\x1b[2J$ ", "after"]);
    expect(s.skipped).toBe(2_000_000 - 507);
  });

  it("no fast copy is drawn before the snapshot it follows: held from attached and each part until a reliable output applies", () => {
    const s = new PaneStream();
    const copy = (t: string, offset: number): Event => ({ type: "output", data: enc.encode(t), offset, paneId: "%3" });
    const part = (t: string, offset: number) => s.reliable({ type: "output", data: enc.encode(t), offset, snapshot: true });
    const out: string[] = [];
    const show = (b: Uint8Array | undefined) => b && out.push(dec.decode(b));
    s.attached({ type: "attached", paneId: "%3", offset: 70 });
    show(s.fast(copy("a", 70))); // overtook the snapshot: dropped, not even counted
    show(part("[1/2]", 70));
    show(s.fast(copy("a", 70))); // overtook the second part: dropped
    show(part("[2/2]", 70));
    show(s.reliable({ type: "output", data: enc.encode("a"), offset: 70 }));
    show(s.fast(copy("b", 71))); // the stream is drawn again: copies count
    show(s.reliable({ type: "output", data: enc.encode("b"), offset: 71 }));
    // A lag snapshot later: held again until the stream after it applies.
    show(part("[lag]", 900));
    show(s.fast(copy("c", 900)));
    show(s.reliable({ type: "output", data: enc.encode("c"), offset: 900 }));
    expect(out).toEqual(["[1/2]", "[2/2]", "a", "b", "[lag]", "c"]);
    expect(s.fastApplied).toBe(1);
    expect(s.skipped).toBe(900 - 72);
  });

  it("a snapshot in several parts carries one offset and skips nothing after the first", () => {
    const s = new PaneStream();
    s.attached({ type: "attached", paneId: "%3", offset: 70 });
    const part = (t: string) => s.reliable({ type: "output", data: enc.encode(t), offset: 70, snapshot: true });
    expect(dec.decode(part("screen 1/2 "))).toBe("screen 1/2 ");
    expect(dec.decode(part("screen 2/2"))).toBe("screen 2/2");
    expect(s.skipped).toBe(0);
    expect(s.resumePoint()).toEqual({ paneId: "%3", offset: 70 });
  });

  it("a reliable gap is shown and counted", () => {
    const s = new PaneStream();
    s.attached({ type: "attached", paneId: "%3", offset: 0 });
    expect(dec.decode(s.reliable({ type: "output", data: enc.encode("z"), offset: 4 }))).toBe("z");
    expect(s.skipped).toBe(4);
  });

  it("fast copies count only for the current attachment's pane", () => {
    const s = new PaneStream();
    const copy = (paneId: string, offset: number): Event => ({ type: "output", data: enc.encode("q"), offset, paneId });
    expect(s.fast(copy("%3", 0))).toBeUndefined(); // not attached
    s.attached({ type: "attached", paneId: "%3", offset: 0, resumed: true });
    expect(s.fast(copy("%4", 0))).toBeUndefined();
    expect(s.fast({ type: "output", data: enc.encode("q"), offset: 0 })).toBeUndefined(); // no paneId
    expect(s.fast({ type: "output", data: new Uint8Array(MAX_FAST_COPY + 1), offset: 0, paneId: "%3" })).toBeUndefined();
    expect(dec.decode(s.fast(copy("%3", 0)))).toBe("q");
    // An attach to another pane goes out: late copies of %3 no longer land.
    s.leaving();
    expect(s.fast(copy("%3", 1))).toBeUndefined();
    // Reliable output before the next `attached` is shown as before stream v2.
    expect(dec.decode(s.reliable({ type: "output", data: enc.encode("r"), offset: 1 }))).toBe("r");
  });

  it("a host without offsets: every reliable output is shown, the fast channel is ignored", () => {
    const s = new PaneStream();
    s.attached({ type: "attached", paneId: "%3" });
    expect(dec.decode(s.reliable({ type: "output", data: enc.encode("a") }))).toBe("a");
    expect(dec.decode(s.reliable({ type: "output", data: enc.encode("a") }))).toBe("a");
    expect(s.fast({ type: "output", data: enc.encode("a"), offset: 0, paneId: "%3" })).toBeUndefined();
    expect(s.resumePoint()).toBeUndefined();
  });

  it("input is copied to the fast channel only while the attachment is confirmed", () => {
    const s = new PaneStream();
    expect(s.copiesInput).toBe(false);
    s.leaving();
    expect(s.copiesInput).toBe(false); // attach sent, not confirmed
    s.attached({ type: "attached", paneId: "%3", offset: 0 });
    expect(s.copiesInput).toBe(true);
    s.leaving({ paneId: "%3", offset: 0 }); // another attach (or a detach) went out: a copy could overtake it
    expect(s.copiesInput).toBe(false);
    s.attached({ type: "attached", paneId: "%4" }); // a host without offsets
    expect(s.copiesInput).toBe(false);
    s.attached({ type: "attached", paneId: "%4", offset: 3 });
    s.ended();
    expect(s.copiesInput).toBe(false);
  });

  it("the resume point: the attached pane's next offset, the one asked while an attach is in flight, none once ended", () => {
    const s = new PaneStream();
    expect(s.resumePoint()).toBeUndefined();
    s.leaving({ paneId: "%3", offset: 70000 });
    expect(s.resumePoint()).toEqual({ paneId: "%3", offset: 70000 });
    s.attached({ type: "attached", paneId: "%3", offset: 70000, resumed: true });
    s.reliable({ type: "output", data: enc.encode("l"), offset: 70000 });
    expect(s.resumePoint()).toEqual({ paneId: "%3", offset: 70001 });
    s.leaving();
    expect(s.resumePoint()).toBeUndefined();
    s.attached({ type: "attached", paneId: "%5", offset: 9 });
    s.ended();
    expect(s.resumePoint()).toBeUndefined();
  });
});
