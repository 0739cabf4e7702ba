// InOrder (docs/stream-v2.md §3): the unit tests of
// crates/terminal-protocol/src/stream.rs, ported one for one, so the web
// client and the Rust crate give the same verdicts.
import { describe, expect, it } from "vitest";
import { InOrder } from "../src/proto/inorder";

const apply = (skip = 0) => ({ kind: "apply", skip });

describe("InOrder", () => {
  it("reliable in order applies everything", () => {
    const s = InOrder.startingAt(100);
    expect(s.accept(100, 5, "reliable")).toEqual(apply());
    expect(s.accept(105, 3, "reliable")).toEqual(apply());
    expect(s.next).toBe(108);
  });

  it("a fast copy first makes the reliable one a duplicate", () => {
    const s = InOrder.startingAt(0);
    expect(s.accept(0, 1, "fast")).toEqual(apply());
    expect(s.accept(0, 1, "reliable")).toEqual({ kind: "duplicate" });
    expect(s.accept(1, 1, "reliable")).toEqual(apply());
    expect(s.accept(1, 1, "fast")).toEqual({ kind: "duplicate" });
  });

  it("a fast copy ahead of a lost one waits for the reliable channel", () => {
    const s = InOrder.startingAt(10);
    expect(s.accept(12, 2, "fast")).toEqual({ kind: "ahead" });
    expect(s.accept(10, 2, "reliable")).toEqual(apply());
    expect(s.accept(12, 2, "reliable")).toEqual(apply());
  });

  it("an unknown start takes the first reliable offset", () => {
    const s = InOrder.unknown();
    expect(s.accept(7, 1, "fast")).toEqual({ kind: "ahead" });
    expect(s.accept(7, 1, "reliable")).toEqual(apply());
    expect(s.next).toBe(8);
  });

  it("an overlap applies only the new tail", () => {
    const s = InOrder.startingAt(10);
    expect(s.accept(8, 5, "reliable")).toEqual(apply(2));
    expect(s.next).toBe(13);
  });

  it("a reliable gap is reported and applied", () => {
    const s = InOrder.startingAt(10);
    expect(s.accept(15, 1, "reliable")).toEqual({ kind: "gap", missing: 5 });
    expect(s.next).toBe(16);
  });

  it("a snapshot jump counts skipped bytes", () => {
    const s = InOrder.startingAt(10);
    expect(s.jumpTo(1010)).toBe(1000);
    expect(s.accept(1010, 1, "fast")).toEqual(apply());
    expect(s.jumpTo(5)).toBe(0);
  });

  it("offsets up to 2^53 − 1 stay exact", () => {
    const top = Number.MAX_SAFE_INTEGER;
    const s = InOrder.startingAt(top - 3);
    expect(s.accept(top - 3, 2, "reliable")).toEqual(apply());
    expect(s.accept(top - 3, 3, "fast")).toEqual(apply(2));
    expect(s.next).toBe(top);
  });
});
