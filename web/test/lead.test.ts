// LeadQueue (docs/stream-v2.md §4): after a fast copy, reliable messages
// leave only once FAST_COPY_LEAD_MS has passed since the last copy, in a
// later task and in their order. Fake timers and a fake clock: no sleeping.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { FAST_COPY_LEAD_MS, LeadQueue } from "../src/net/lead";

const b = (n: number) => new Uint8Array([n]);

describe("LeadQueue", () => {
  let sent: number[];
  let q: LeadQueue;
  beforeEach(() => {
    vi.useFakeTimers();
    sent = [];
    q = new LeadQueue((m) => sent.push(m[0]), () => Date.now());
  });
  afterEach(() => vi.useRealTimers());

  it("sends at once while no copy went out", () => {
    q.push(b(1));
    q.push(b(2));
    expect(sent).toEqual([1, 2]);
  });

  it("an original waits the lead after its copy, in a later task", () => {
    q.copied();
    q.push(b(1));
    expect(sent).toEqual([]);
    vi.advanceTimersByTime(FAST_COPY_LEAD_MS - 1);
    expect(sent).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(sent).toEqual([1]);
    // Once the lead has passed, nothing waits.
    q.push(b(2));
    expect(sent).toEqual([1, 2]);
  });

  it("a message sent meanwhile keeps its place behind the waiting ones", () => {
    q.copied();
    q.push(b(1)); // the original of the copy
    vi.advanceTimersByTime(1);
    q.push(b(2)); // e.g. a detach: must not overtake the input
    expect(sent).toEqual([]);
    vi.advanceTimersByTime(FAST_COPY_LEAD_MS);
    expect(sent).toEqual([1, 2]);
  });

  it("every copy moves the lead on: originals leave the lead after the last copy", () => {
    q.copied();
    q.push(b(1));
    vi.advanceTimersByTime(2);
    q.copied();
    q.push(b(2));
    vi.advanceTimersByTime(1); // the first timer fires 3 ms after the first copy, 1 ms after the second
    expect(sent).toEqual([]);
    vi.advanceTimersByTime(FAST_COPY_LEAD_MS - 1);
    expect(sent).toEqual([1, 2]);
    expect(q.waiting).toBe(0);
  });

  it("clear drops what waits", () => {
    q.copied();
    q.push(b(1));
    q.clear();
    vi.advanceTimersByTime(10);
    expect(sent).toEqual([]);
  });
});
