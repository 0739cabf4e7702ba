// The stream v2 vectors S1–S7 (docs/stream-v2.md §7), byte for byte against
// the web client's codec, the same bytes as
// crates/terminal-protocol/tests/stream_v2_vectors.rs; and the offset bound
// (2^53 − 1) on both the encoding and the decoding side.
import { describe, expect, it } from "vitest";
import { decodeEvent, encodeRequest, DecodeError } from "../src/proto/msgpack";
import { hex, unhex } from "../src/proto/crypto";

const h = (s: string) => unhex(s.replace(/\s+/g, ""));
const flat = (s: string) => s.replace(/\s+/g, "");

const S1 = `88 a4 74797065 a6 617474616368 a6 70616e654964 a2 2533 a4 636f6c73 78
  a4 726f7773 28 a8 7265617474616368 c3 ab 636f6d7072657373696f6e
  a7 6465666c617465 a7 6f666673657473 c3 aa 726573756d6546726f6d
  ce 00011170`;
const S2 = `83 a4 74797065 a5 696e707574 a4 64617461 c4 01 6c a6 6f6666736574 2a`;
const S3 = `85 a4 74797065 a8 6174746163686564 a6 70616e654964
  a2 2533 ab 636f6d7072657373696f6e a7 6465666c617465 a6 6f6666736574
  ce 00011170 a7 726573756d6564 c3`;
const S4 = `83 a4 74797065 a6 6f7574707574 a4 64617461 c4 01 6c a6 6f6666736574
  ce 00011170`;
const S5 = `84 a4 74797065 a6 6f7574707574
  a4 64617461 c4 01 6c a6 6f6666736574 ce 00011170 a6 70616e654964
  a2 2533`;
const S6 = `84 a4 74797065 a6 6f7574707574 a4 64617461 c4 09 1b5b481b5b324a2420
  a6 6f6666736574 ce 00124f80 a8 736e617073686f74 c3`;
const S7 = `83 a4 74797065 a5 696e707574 a4 64617461 c4 01 6c a6 6f6666736574
  cf 0020000000000000`;

const l = new Uint8Array([0x6c]);

describe("stream v2 vectors (docs/stream-v2.md §7)", () => {
  it("S1 attach with offsets and resumeFrom", () => {
    const b = encodeRequest({
      type: "attach", paneId: "%3", cols: 120, rows: 40, reattach: true, compression: "deflate",
      offsets: true, resumeFrom: 70000,
    });
    expect(hex(b)).toBe(flat(S1));
  });
  it("S2 input with offset", () => {
    expect(hex(encodeRequest({ type: "input", data: l, offset: 42 }))).toBe(flat(S2));
  });
  it("S3 attached, resumed", () => {
    expect(decodeEvent(h(S3))).toEqual({ type: "attached", paneId: "%3", compression: "deflate", offset: 70000, resumed: true });
  });
  it("S4 reliable output with offset", () => {
    expect(decodeEvent(h(S4))).toEqual({ type: "output", data: l, offset: 70000 });
  });
  it("S5 the fast copy of S4 names the pane", () => {
    expect(decodeEvent(h(S5))).toEqual({ type: "output", data: l, offset: 70000, paneId: "%3" });
  });
  it("S6 snapshot output", () => {
    expect(decodeEvent(h(S6))).toEqual({
      type: "output", data: new TextEncoder().encode("\x1b[H\x1b[2J$ "), offset: 1_200_000, snapshot: true,
    });
  });
  it("S7 an offset of 2^53 is refused, 2^53 − 1 is exact", () => {
    // The phone never sends S7: encoding 2^53 fails before anything reaches the wire.
    expect(() => encodeRequest({ type: "input", data: l, offset: 2 ** 53 })).toThrow(/input.offset/);
    expect(hex(encodeRequest({ type: "input", data: l, offset: 2 ** 53 - 1 })))
      .toBe(flat(S7).replace(/cf0020000000000000$/, "cf001fffffffffffff"));
    // And an event carrying one does not decode (as terminal-protocol refuses S7).
    const out = (tail: string) => h(`83 a4 74797065 a6 6f7574707574 a4 64617461 c4 01 6c a6 6f6666736574 ${tail}`);
    expect(() => decodeEvent(out("cf 0020000000000000"))).toThrow(DecodeError);
    expect(() => decodeEvent(out("cf 0020000000000000"))).toThrow(/output.offset/);
    expect(decodeEvent(out("cf 001fffffffffffff"))).toEqual({ type: "output", data: l, offset: 2 ** 53 - 1 });
    const attached = (tail: string) => h(`83 a4 74797065 a8 6174746163686564 a6 70616e654964 a2 2533 a6 6f6666736574 ${tail}`);
    expect(() => decodeEvent(attached("cf 0020000000000000"))).toThrow(/attached.offset/);
    expect(decodeEvent(attached("cf 001fffffffffffff"))).toEqual({ type: "attached", paneId: "%3", offset: 2 ** 53 - 1 });
  });
});

describe("stream v2 field rules", () => {
  it("a phone that does not ask sends today's bytes (V1, V3)", () => {
    expect(hex(encodeRequest({ type: "attach", paneId: "%3", cols: 120, rows: 40, compression: "deflate", offsets: false })))
      .toBe("85a474797065a6617474616368a670616e654964a22533a4636f6c7378a4726f777328ab636f6d7072657373696f6ea76465666c617465");
    expect(hex(encodeRequest({ type: "input", data: new Uint8Array([0x6c, 0x73, 0x0d]) }))).toBe("82a474797065a5696e707574a464617461c4036c730d");
  });
  it("offsets are shortest-form unsigned integers", () => {
    const tail = (o: number) => hex(encodeRequest({ type: "input", data: l, offset: o })).split("a66f6666736574")[1];
    expect(tail(0)).toBe("00");
    expect(tail(127)).toBe("7f");
    expect(tail(128)).toBe("cc80");
    expect(tail(65535)).toBe("cdffff");
    expect(tail(2 ** 32)).toBe("cf0000000100000000");
  });
  it("a negative or fractional offset is not encoded", () => {
    expect(() => encodeRequest({ type: "input", data: l, offset: -1 })).toThrow(RangeError);
    expect(() => encodeRequest({ type: "input", data: l, offset: 1.5 })).toThrow(RangeError);
    expect(() => encodeRequest({ type: "attach", paneId: "%3", cols: 1, rows: 1, offsets: true, resumeFrom: -1 })).toThrow(/resumeFrom/);
  });
  it("decoding refuses a negative or float offset and wrong-typed flags", () => {
    const out = (rest: string) => h(`83 a4 74797065 a6 6f7574707574 a4 64617461 c4 01 6c ${rest}`);
    expect(() => decodeEvent(out("a6 6f6666736574 ff"))).toThrow(/output.offset/);
    expect(() => decodeEvent(out("a6 6f6666736574 cb 3ff0000000000000"))).toThrow(/output.offset: expected an integer/);
    expect(() => decodeEvent(out("a8 736e617073686f74 01"))).toThrow(/output.snapshot/);
    expect(() => decodeEvent(out("a6 70616e654964 01"))).toThrow(/output.paneId/);
  });
  it("false flags and an empty paneId read as absent", () => {
    const ev = decodeEvent(h(`85 a4 74797065 a6 6f7574707574 a4 64617461 c4 01 6c a6 6f6666736574 05
      a8 736e617073686f74 c2 a6 70616e654964 a0`));
    expect(ev).toEqual({ type: "output", data: l, offset: 5 });
    expect(Object.keys(ev)).toEqual(["type", "data", "offset"]);
  });
});
