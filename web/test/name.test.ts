// The device-name rule (signaling.md §2 as muxlink applies it), the same
// cases as `signaling_proto::validate_name`'s tests.
import { describe, expect, it } from "vitest";
import { isForbiddenNameChar, nameProblem } from "../src/proto/name";

describe("nameProblem", () => {
  it("accepts ordinary names up to 64 characters", () => {
    expect(nameProblem("phone browser")).toBeNull();
    expect(nameProblem("Pixel 9 — Ana ✓ عربي")).toBeNull();
    expect(nameProblem("é".repeat(64))).toBeNull();
    expect(nameProblem("😀".repeat(64))).toBeNull();
    expect(nameProblem("ok\u00a0nbsp")).toBeNull();
  });

  it("refuses empty and too long names", () => {
    expect(nameProblem("")).toMatch(/empty/);
    expect(nameProblem("é".repeat(65))).toMatch(/64/);
  });

  it("refuses C0, DEL and C1 controls", () => {
    for (const c of ["\u0000", "\u001b", "\t", "\u007f", "\u0080", "\u0085", "\u009b", "\u009f"]) {
      expect(nameProblem(`a${c}b`), JSON.stringify(c)).toMatch(/control or bidi/);
    }
  });

  it("refuses bidi formatting characters and names the one found", () => {
    const bidi = [0x061c, 0x200e, 0x200f, 0x202a, 0x202b, 0x202c, 0x202d, 0x202e, 0x2066, 0x2067, 0x2068, 0x2069];
    for (const cp of bidi) {
      expect(isForbiddenNameChar(cp)).toBe(true);
      expect(nameProblem(`evil${String.fromCodePoint(cp)}txt`)).toContain(`U+${cp.toString(16).toUpperCase().padStart(4, "0")}`);
    }
    for (const cp of [0x061b, 0x200d, 0x2029, 0x202f, 0x206a, 0x00a0]) expect(isForbiddenNameChar(cp)).toBe(false);
  });
});
