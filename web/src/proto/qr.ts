// The pairing payload `code|hostX25519PubB64|hostDeviceId|serverUrl`
// (pairing.md §2 step 3), typed or taken from a QR URL's `#fragment`.
import { b64decode, type Bytes } from "./crypto";

export const CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

export interface QrPayload {
  code: string;
  hostKey: Bytes;
  hostKeyB64: string;
  hostDeviceId: string;
  /** Bare server URL without API version and trailing slash; "" when omitted. */
  serverUrl: string;
}

/** Parses and validates a 3- or 4-field payload; throws with a readable reason. */
export function parsePayload(text: string): QrPayload {
  let t = text.trim();
  if (t.startsWith("#")) t = t.slice(1);
  if (t.includes("%")) {
    try {
      t = decodeURIComponent(t);
    } catch {
      throw new Error("the pairing payload is not valid");
    }
  }
  if (t.length > 2048) throw new Error("pairing payload too long");
  const f = t.split("|");
  if (f.length !== 3 && f.length !== 4) throw new Error("expected 3 or 4 '|'-separated fields");
  const [code, key, id, url = ""] = f;
  if (code.length !== 6 || [...code].some((c) => !CODE_ALPHABET.includes(c)))
    throw new Error("pairing code must be 6 characters from the code alphabet");
  let hostKey: Bytes;
  try {
    hostKey = b64decode(key);
  } catch {
    throw new Error("host key is not 32 bytes of base64");
  }
  if (hostKey.length !== 32) throw new Error("host key is not 32 bytes of base64");
  if (!/^[0-9a-f]{32}$/.test(id)) throw new Error("host device id must be 32 lowercase hex characters");
  if (f.length === 4 && !(url.startsWith("http://") || url.startsWith("https://")))
    throw new Error("server url must start with http:// or https://");
  return { code, hostKey, hostKeyB64: key, hostDeviceId: id, serverUrl: url.replace(/\/+$/, "") };
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
