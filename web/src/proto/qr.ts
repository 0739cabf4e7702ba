// The pairing v2 payload `code|hostX25519PubB64|hostDeviceId|serverUrl|base64(T)`
// (pairing.md §9.2), typed, pasted, or taken from a QR URL's `#fragment`.
import { b64decode, PAIRING_TOKEN_BYTES, type Bytes } from "./crypto";

export const CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/** What works for pairing, said wherever the page talks about codes (a code alone cannot pair in v2). */
export const HOW_TO_PAIR =
  "scan the QR code that `muxlink pair` shows on the computer, or paste the whole payload line it prints";

/** Shown for a payload from before pairing v2 (no token `T`). */
export const OLD_PAYLOAD_MESSAGE =
  `This pairing payload is from an older muxlink and cannot pair: ${HOW_TO_PAIR}.`;

/** Shown for a pairing code typed or pasted on its own. */
export const CODE_ALONE_MESSAGE =
  `A code alone cannot pair: ${HOW_TO_PAIR}.`;

export interface QrPayload {
  code: string;
  hostKey: Bytes;
  hostKeyB64: string;
  hostDeviceId: string;
  /** Bare server URL without API version and trailing slash. */
  serverUrl: string;
  /** The pairing token T (16 bytes); it never goes to the server. */
  token: Bytes;
}

/** A payload that cannot be used, with a message meant for the user. */
export class PayloadError extends Error {}

/**
 * The payload in a QR URL's fragment: the leading `#` dropped and the rest
 * percent-decoded exactly once (its `|`, `+`, `/`, `=` may or may not be encoded).
 */
export function payloadFromFragment(fragment: string): string {
  const f = fragment.startsWith("#") ? fragment.slice(1) : fragment;
  try {
    return decodeURIComponent(f);
  } catch {
    throw new PayloadError("The pairing link is damaged (bad percent-encoding): scan the QR code again.");
  }
}

/**
 * Parses and validates a pairing v2 payload; throws PayloadError with a
 * readable reason. Accepts the payload itself, the line `muxlink pair`
 * prints (`PAIRING_PAYLOAD <payload>` or `payload: <payload>`), or the whole
 * QR URL / `#fragment` (whose fragment is then decoded once).
 */
export function parsePayload(text: string): QrPayload {
  let t = text.trim();
  // The printed line: the payload is its last word (the payload has no spaces).
  const words = t.split(/\s+/);
  t = words[words.length - 1];
  const hash = t.indexOf("#");
  if (hash >= 0) t = payloadFromFragment(t.slice(hash));
  if (t.length > 2048) throw new PayloadError("The pairing payload is too long.");
  const f = t.split("|");
  if (f.length === 1 && isCode(f[0].toUpperCase())) throw new PayloadError(CODE_ALONE_MESSAGE);
  if (f.length > 1 && f.length <= 4) throw new PayloadError(OLD_PAYLOAD_MESSAGE);
  if (f.length !== 5) throw new PayloadError(`That is not a pairing payload (5 fields separated by '|'): ${HOW_TO_PAIR}.`);
  const names = ["pairing code", "host key", "host device id", "server url", "pairing token"];
  f.forEach((v, i) => {
    if (v === "") throw new PayloadError(`The pairing payload's ${names[i]} is empty.`);
  });
  const [code, key, id, url, tok] = f;
  if (!isCode(code)) throw new PayloadError(`The pairing payload's first field is not a pairing code: ${HOW_TO_PAIR}.`);
  let hostKey: Bytes;
  try {
    hostKey = b64decode(key);
  } catch {
    throw new PayloadError("The host key is not 32 bytes of base64.");
  }
  if (hostKey.length !== 32) throw new PayloadError("The host key is not 32 bytes of base64.");
  if (!/^[0-9a-f]{32}$/.test(id)) throw new PayloadError("The host device id must be 32 lowercase hex characters.");
  if (!(url.startsWith("http://") || url.startsWith("https://")))
    throw new PayloadError("The server url must start with http:// or https://.");
  let token: Bytes;
  try {
    token = b64decode(tok);
  } catch {
    throw new PayloadError("The pairing token is not 16 bytes of base64.");
  }
  if (tok.length !== 24 || token.length !== PAIRING_TOKEN_BYTES)
    throw new PayloadError("The pairing token is not 16 bytes of base64.");
  return { code, hostKey, hostKeyB64: key, hostDeviceId: id, serverUrl: url.replace(/\/+$/, ""), token };
}

function isCode(s: string): boolean {
  return s.length === 6 && [...s].every((c) => CODE_ALPHABET.includes(c));
}

/** API base (`server + /v1`), the signed path, and the WebSocket URL (signaling.md §1). */
export function apiBase(serverUrl: string, version = "v1"): string {
  const base = serverUrl.replace(/\/+$/, "");
  const v = version.replace(/^\/+|\/+$/g, "");
  return v === "" ? base : `${base}/${v}`;
}
export function apiPath(path: string, version = "v1"): string {
  const v = version.replace(/^\/+|\/+$/g, "");
  const p = path.replace(/^\/+/, "");
  return v === "" ? `/${p}` : `/${v}/${p}`;
}
export function wsUrl(serverUrl: string, version = "v1"): string {
  return `${apiBase(serverUrl, version).replace(/^https:\/\//, "wss://").replace(/^http:\/\//, "ws://")}/ws`;
}
