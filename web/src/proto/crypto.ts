// WebCrypto pieces of the spec: base64/hex, HMAC-SHA256, HKDF, Ed25519 device
// identity (signaling.md §2–§3), X25519 pairing secret (pairing.md §3) and the
// key-possession MAC (terminal-protocol.md §5).

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

/** Strict standard base64 with padding; throws on anything else. */
export function b64decode(s: string): Bytes {
  if (s.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(s)) throw new Error("not standard base64");
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
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

/** RFC 5869 HKDF-SHA256 (extract then expand). */
export async function hkdfSha256(ikm: Bytes, salt: string, info: string, len: number): Promise<Bytes> {
  const k = await subtle.importKey("raw", ikm, "HKDF", false, ["deriveBits"]);
  const bits = await subtle.deriveBits(
    { name: "HKDF", hash: "SHA-256", salt: enc.encode(salt), info: enc.encode(info) },
    k,
    len * 8,
  );
  return new Uint8Array(bits);
}

/** Device id: lowercase hex of the first 16 bytes of SHA-256(public key). */
export async function deviceIdOf(publicKey: Bytes): Promise<string> {
  return hex((await sha256(publicKey)).subarray(0, 16));
}

// PKCS#8 wrappers of a raw 32-byte private key (RFC 8410), for importing known keys.
const ED25519_PKCS8 = unhex("302e020100300506032b657004220420");
const X25519_PKCS8 = unhex("302e020100300506032b656e04220420");
const concat = (a: Uint8Array, b: Uint8Array): Bytes => {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
};

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

/** Z = X25519(own, peer) (all-zero refused), K = HKDF(Z, "muxlink", "muxlink-pairing-v1"). */
export async function derivePairingSecret(own: PairingKey, peerPublic: Bytes): Promise<Bytes> {
  const peer = await subtle.importKey("raw", peerPublic, { name: "X25519" }, false, []);
  const z = new Uint8Array(await subtle.deriveBits({ name: "X25519", public: peer }, own.privateKey, 256));
  if (z.every((b) => b === 0)) throw new Error("host key gives an all-zero shared secret");
  const k = await hkdfSha256(z, "muxlink", "muxlink-pairing-v1", 32);
  z.fill(0);
  return k;
}

/** `auth_response.mac` for an `auth_challenge.nonce` (terminal-protocol.md §5). */
export async function authMac(secret: Bytes, nonceB64: string): Promise<string> {
  if (nonceB64.length > 128) throw new Error("challenge nonce longer than 128 characters");
  const nonce = b64decode(nonceB64);
  if (nonce.length !== 32) throw new Error("challenge nonce is not 32 bytes");
  return b64encode(await hmacSha256(secret, nonce));
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
