// WebCrypto pieces of the spec: base64/hex, HMAC-SHA256, HKDF, Ed25519 device
// identity (signaling.md §2–§3), the pairing v2 secret and confirmation
// (pairing.md §9). The channel MACs live in channelauth.ts.

const subtle = globalThis.crypto.subtle;
const enc = new TextEncoder();

/** A byte array backed by a plain ArrayBuffer (what WebCrypto wants). */
export type Bytes = Uint8Array<ArrayBuffer>;

export function bytes(src: ArrayLike<number> | ArrayBuffer): Bytes {
  return new Uint8Array(src instanceof ArrayBuffer ? src.slice(0) : Array.from(src));
}

export function b64encode(b: Uint8Array): string {
  let s = "";
  for (const x of b) s += String.fromCharCode(x);
  return btoa(s);
}

/** Strict standard base64 with padding (canonical: unused bits zero); throws on anything else. */
export function b64decode(s: string): Bytes {
  if (s.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(s)) throw new Error("not standard base64");
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  if (b64encode(out) !== s) throw new Error("not canonical standard base64");
  return out;
}

export function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

export function unhex(s: string): Bytes {
  if (s.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(s)) throw new Error("not hex");
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function randomBytes(n: number): Bytes {
  return globalThis.crypto.getRandomValues(new Uint8Array(n));
}

export async function hmacSha256(key: Bytes, msg: Bytes): Promise<Bytes> {
  const k = await subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return new Uint8Array(await subtle.sign("HMAC", k, msg));
}

export async function sha256(msg: Bytes): Promise<Bytes> {
  return new Uint8Array(await subtle.digest("SHA-256", msg));
}

/** Device id: lowercase hex of the first 16 bytes of SHA-256(public key). */
export async function deviceIdOf(publicKey: Bytes): Promise<string> {
  return hex((await sha256(publicKey)).subarray(0, 16));
}

// PKCS#8 wrappers of a raw 32-byte private key (RFC 8410), for importing known keys.
const ED25519_PKCS8 = unhex("302e020100300506032b657004220420");
const X25519_PKCS8 = unhex("302e020100300506032b656e04220420");
/** The concatenation of byte arrays (`‖` in the spec). */
export function concat(...parts: Uint8Array[]): Bytes {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** The phone's Ed25519 identity; the private key never leaves WebCrypto. */
export interface Identity {
  privateKey: CryptoKey;
  publicKey: Bytes;
  deviceId: string;
}

export async function newIdentity(): Promise<Identity> {
  const pair = (await subtle.generateKey({ name: "Ed25519" }, false, ["sign", "verify"])) as CryptoKeyPair;
  const publicKey = new Uint8Array(await subtle.exportKey("raw", pair.publicKey));
  return { privateKey: pair.privateKey, publicKey, deviceId: await deviceIdOf(publicKey) };
}

/** An identity from a known 32-byte seed (test vectors). */
export async function identityFromSeed(seed: Bytes): Promise<Identity> {
  const privateKey = await subtle.importKey("pkcs8", concat(ED25519_PKCS8, seed), { name: "Ed25519" }, true, ["sign"]);
  // The public key is the last 32 bytes of the JWK `x`; export it once.
  const jwk = await subtle.exportKey("jwk", privateKey);
  const publicKey = b64decode(b64urlToStd(jwk.x ?? ""));
  const nonExtractable = await subtle.importKey("pkcs8", concat(ED25519_PKCS8, seed), { name: "Ed25519" }, false, ["sign"]);
  return { privateKey: nonExtractable, publicKey, deviceId: await deviceIdOf(publicKey) };
}

/** `signature` of signaling.md §3: base64 Ed25519 over `deviceId|nonce`. */
export async function signChallenge(id: Identity, nonce: string): Promise<string> {
  const sig = await subtle.sign({ name: "Ed25519" }, id.privateKey, enc.encode(`${id.deviceId}|${nonce}`));
  return b64encode(new Uint8Array(sig));
}

function b64urlToStd(s: string): string {
  const t = s.replace(/-/g, "+").replace(/_/g, "/");
  return t + "=".repeat((4 - (t.length % 4)) % 4);
}

/** A fresh X25519 pairing key for one attempt (pairing.md §1). */
export interface PairingKey {
  privateKey: CryptoKey;
  publicKey: Bytes;
}

export async function newPairingKey(): Promise<PairingKey> {
  const pair = (await subtle.generateKey({ name: "X25519" }, false, ["deriveBits"])) as CryptoKeyPair;
  return { privateKey: pair.privateKey, publicKey: new Uint8Array(await subtle.exportKey("raw", pair.publicKey)) };
}

/** A pairing key from known private bytes (test vectors). */
export async function pairingKeyFromPrivate(raw: Bytes): Promise<PairingKey> {
  const privateKey = await subtle.importKey("pkcs8", concat(X25519_PKCS8, raw), { name: "X25519" }, true, ["deriveBits"]);
  const jwk = await subtle.exportKey("jwk", privateKey);
  return { privateKey, publicKey: b64decode(b64urlToStd(jwk.x ?? "")) };
}

/** Z = X25519(own, peer); an all-zero Z (a small-order peer key) is refused. */
export async function x25519Shared(own: PairingKey, peerPublic: Bytes): Promise<Bytes> {
  const peer = await subtle.importKey("raw", peerPublic, { name: "X25519" }, false, []);
  const z = new Uint8Array(await subtle.deriveBits({ name: "X25519", public: peer }, own.privateKey, 256));
  if (z.every((b) => b === 0)) throw new Error("host key gives an all-zero shared secret");
  return z;
}

/** Length of the pairing token `T` of pairing v2 (pairing.md §9.1). */
export const PAIRING_TOKEN_BYTES = 16;

/**
 * The pairing v2 secret (pairing.md §9.3):
 * `K = HKDF-SHA256(IKM = Z ‖ T, salt "muxlink", info "muxlink-pairing-v2", 32 bytes)`,
 * returned as an HMAC-SHA256 CryptoKey (sign + verify) that is non-extractable
 * unless a test asks otherwise. Z and the IKM are wiped here.
 */
export async function pairingSecretV2(
  own: PairingKey,
  hostPublic: Bytes,
  token: Bytes,
  extractable = false,
): Promise<CryptoKey> {
  if (token.length !== PAIRING_TOKEN_BYTES) throw new Error("pairing token is not 16 bytes");
  const z = await x25519Shared(own, hostPublic);
  const ikm = concat(z, token);
  z.fill(0);
  try {
    const base = await subtle.importKey("raw", ikm, "HKDF", false, ["deriveKey"]);
    return await subtle.deriveKey(
      { name: "HKDF", hash: "SHA-256", salt: enc.encode("muxlink"), info: enc.encode("muxlink-pairing-v2") },
      base,
      { name: "HMAC", hash: "SHA-256", length: 256 },
      extractable,
      ["sign", "verify"],
    );
  } finally {
    ikm.fill(0);
  }
}

/** The ASCII message the phone's pairing confirmation covers (pairing.md §9.4). */
export function pairConfirmMessage(mobileDeviceId: string, mobileX25519PubB64: string, hostDeviceId: string): string {
  return `muxlink-pair-confirm-v2|${mobileDeviceId}|${mobileX25519PubB64}|${hostDeviceId}`;
}

/** `confirmation` of `POST /auth/pair/complete`: base64 HMAC-SHA256(K, message). */
export async function pairConfirmation(
  k: CryptoKey,
  mobileDeviceId: string,
  mobileX25519PubB64: string,
  hostDeviceId: string,
): Promise<string> {
  const msg = enc.encode(pairConfirmMessage(mobileDeviceId, mobileX25519PubB64, hostDeviceId));
  return b64encode(new Uint8Array(await subtle.sign("HMAC", k, msg)));
}

/** Request-signing headers of signaling.md §5; empty secret → none. */
export async function signedHeaders(
  secret: string,
  path: string,
  unixSeconds: number,
  nonceHex: string = hex(randomBytes(16)),
): Promise<Record<string, string>> {
  if (secret === "") return {};
  const ts = String(Math.floor(unixSeconds));
  const mac = await hmacSha256(enc.encode(secret), enc.encode(`${ts}:${nonceHex}:${path}`));
  return { "muxlink-timestamp": ts, "muxlink-nonce": nonceHex, "muxlink-signature": hex(mac) };
}

/** `exp` of a JWT read without verifying; unreadable → now + 1 h (signaling.md §4). */
export function jwtExpiry(token: string, nowSeconds: number): number {
  try {
    const payload = JSON.parse(atob(b64urlToStd(token.split(".")[1] ?? ""))) as { exp?: unknown };
    if (typeof payload.exp === "number" && Number.isFinite(payload.exp)) return payload.exp;
  } catch {
    // fall through to the default lifetime
  }
  return nowSeconds + 3600;
}
