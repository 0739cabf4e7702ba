// The device-name rule of signaling.md §2 as muxlink applies it (the same as
// `signaling_proto::validate_name`): 1–64 characters, no control character
// (C0, DEL, C1) and no bidi formatting character (U+061C, U+200E, U+200F,
// U+202A–U+202E, U+2066–U+2069), which could reorder or recolour the line a
// name is shown on at the other end.

/** Longest name, in characters (Unicode code points). */
export const MAX_NAME_CHARS = 64;

/** True for a character no name may hold. */
export function isForbiddenNameChar(cp: number): boolean {
  return (
    cp <= 0x1f || (cp >= 0x7f && cp <= 0x9f) ||
    cp === 0x061c || cp === 0x200e || cp === 0x200f ||
    (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069)
  );
}

/** Why `name` breaks the rule, in words for the user; null when it is fine. */
export function nameProblem(name: string): string | null {
  const chars = Array.from(name);
  if (chars.length === 0) return "The phone's name must not be empty.";
  if (chars.length > MAX_NAME_CHARS) return `The phone's name must be at most ${MAX_NAME_CHARS} characters.`;
  for (const ch of chars) {
    const cp = ch.codePointAt(0) ?? 0;
    if (isForbiddenNameChar(cp)) {
      const hex = cp.toString(16).toUpperCase().padStart(4, "0");
      return `The phone's name must not contain control or bidi formatting characters (it has U+${hex}).`;
    }
  }
  return null;
}
