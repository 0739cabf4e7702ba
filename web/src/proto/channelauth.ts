// Channel authentication v2, the phone's side (terminal-protocol.md §12):
// both nonces and both DTLS certificate fingerprints go into the MAC, and the
// host proves the pairing key too (`auth_ok.mac`) before anything else flows.
import { b64decode, b64encode, concat, randomBytes, sha256, type Bytes } from "./crypto";
import { decodeEvent, encodeRequest, MAX_NONCE_CHARS, type Event } from "./msgpack";

/** How long the phone waits for `auth_ok` after sending `auth_response` (§12 step 5). */
export const AUTH_OK_TIMEOUT_MS = 10_000;
const NONCE_BYTES = 32;
const MOBILE_LABEL = new TextEncoder().encode("muxlink-auth-v2 mobile");
const HOST_LABEL = new TextEncoder().encode("muxlink-auth-v2 host");

/** The host did not prove the pairing key on this channel (missing, malformed or wrong `auth_ok`). */
export class HostProofError extends Error {}
/** The channel failed before the phone answered (no or bad challenge); nothing was proven either way. */
export class ChallengeError extends Error {}

/** 32 bytes from a `nonce`/`mac` field: present, ≤ 128 chars, strict standard base64. */
export function b64Field32(value: string | undefined, what: string): Bytes {
  if (value === undefined || value === "") throw new Error(`${what} is missing`);
  if (value.length > MAX_NONCE_CHARS) throw new Error(`${what} is longer than ${MAX_NONCE_CHARS} characters`);
  let b: Bytes;
  try {
    b = b64decode(value);
  } catch {
    throw new Error(`${what} is not standard base64`);
  }
  if (b.length !== NONCE_BYTES) throw new Error(`${what} is not ${NONCE_BYTES} bytes`);
  return b;
}

/** SHA-256 over the DER of a DTLS certificate, as `getRemoteCertificates()` gives it. */
export async function certificateFingerprint(der: ArrayBuffer | Uint8Array): Promise<Bytes> {
  return sha256(new Uint8Array(der instanceof ArrayBuffer ? der.slice(0) : der.slice()));
}

const FINGERPRINT_LINE = /^a=fingerprint:(\S+)[ \t]+(.*?)\s*$/i;
const SHA256_VALUE = /^[0-9a-f]{2}(?::[0-9a-f]{2}){31}$/i;

/**
 * The sha-256 certificate fingerprint of a session description (32 bytes).
 * Every `a=fingerprint:sha-256` line must be well formed (hash name and hex
 * case-insensitive, 32 colon-separated pairs) and all of them must carry the
 * same value: a description listing two different ones is refused, since a
 * DTLS stack may accept a certificate that matches any of them (§12). With
 * one value everywhere, "the first line of the DataChannel's media section,
 * else the session level" is that value.
 */
export function sdpFingerprint(sdp: string): Bytes {
  let found: string | undefined;
  for (const line of sdp.split(/\r?\n/)) {
    const m = FINGERPRINT_LINE.exec(line);
    if (!m || m[1].toLowerCase() !== "sha-256") continue;
    if (!SHA256_VALUE.test(m[2])) throw new Error("malformed a=fingerprint:sha-256 line");
    const value = m[2].toLowerCase();
    if (found !== undefined && found !== value) throw new Error("two different sha-256 fingerprints");
    found = value;
  }
  if (found === undefined) throw new Error("no a=fingerprint:sha-256 line");
  return Uint8Array.from(found.split(":"), (x) => parseInt(x, 16));
}

/** `tail = N_H ‖ N_M ‖ FP_H ‖ FP_M` (128 bytes). */
export function authTail(nH: Bytes, nM: Bytes, fpH: Bytes, fpM: Bytes): Bytes {
  for (const [v, what] of [[nH, "N_H"], [nM, "N_M"], [fpH, "FP_H"], [fpM, "FP_M"]] as const)
    if (v.length !== 32) throw new Error(`${what} is not 32 bytes`);
  return concat(nH, nM, fpH, fpM);
}

/** HMAC-SHA256(K, "muxlink-auth-v2 <role>" ‖ tail). */
export async function authMac(key: CryptoKey, role: "mobile" | "host", tail: Bytes): Promise<Bytes> {
  const msg = concat(role === "mobile" ? MOBILE_LABEL : HOST_LABEL, tail);
  return new Uint8Array(await crypto.subtle.sign("HMAC", key, msg));
}

/**
 * Checks the host's proof: `ev` must be `auth_ok` whose `mac` is present,
 * ≤ 128 chars, 32 bytes of standard base64 and equal (WebCrypto `verify`,
 * constant time) to HMAC(K, "muxlink-auth-v2 host" ‖ tail).
 */
export async function checkAuthOk(key: CryptoKey, tail: Bytes, ev: Event): Promise<void> {
  if (ev.type !== "auth_ok") throw new HostProofError(`expected auth_ok, got ${ev.type === "unknown" ? ev.name : ev.type}`);
  let mac: Bytes;
  try {
    mac = b64Field32(ev.mac, "auth_ok.mac");
  } catch (e) {
    throw new HostProofError((e as Error).message);
  }
  const ok = await crypto.subtle.verify("HMAC", key, mac, concat(HOST_LABEL, tail));
  if (!ok) throw new HostProofError("auth_ok.mac does not match");
}

/** This phone's and the host's certificate fingerprints, as seen on this connection. */
export interface Fingerprints {
  /** FP_H: SHA-256 of the certificate the host presented in the DTLS handshake. */
  host: Bytes;
  /** FP_M: this phone's own certificate fingerprint (its local description). */
  mobile: Bytes;
}

export interface PhoneAuthOptions {
  /** The pairing key K (HMAC-SHA256, sign + verify). */
  key: CryptoKey;
  /** Called once, when the challenge arrives; throws when a value is unavailable. */
  fingerprints: () => Promise<Fingerprints>;
  /** Sends one DataChannel message; used exactly once, for `auth_response`. */
  send: (b: Uint8Array) => void;
  timeoutMs?: number;
  /** N_M source; tests pass a fixed one. */
  nonce?: () => Bytes;
  /** Messages received after the verified `auth_ok`, in order, until the caller takes over the channel. */
  after?: (data: Uint8Array) => void;
}

/**
 * The phone's handshake over one channel. Feed it every received message
 * until `done` settles: it answers the first `auth_challenge` with
 * `auth_response` and then sends nothing; `done` resolves only on a verified
 * `auth_ok` and rejects with HostProofError for a missing (timeout or channel
 * closed), malformed or wrong one, or with ChallengeError before it answered.
 */
export class PhoneAuth {
  readonly done: Promise<void>;
  /** Resolves when `auth_response` went out (never rejects; watch `done` for failures). */
  readonly responded: Promise<void>;
  private onResponded!: () => void;
  private state: "challenge" | "auth_ok" | "done" = "challenge";
  private succeeded = false;
  private queue: Promise<void> = Promise.resolve();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private tail: Bytes | undefined;
  private settle!: (e?: Error) => void;

  constructor(private readonly opts: PhoneAuthOptions) {
    this.done = new Promise<void>((resolve, reject) => {
      this.settle = (e?: Error) => {
        if (this.state === "done") return;
        this.state = "done";
        clearTimeout(this.timer);
        this.tail?.fill(0);
        if (e) reject(e);
        else {
          this.succeeded = true;
          resolve();
        }
      };
    });
    this.done.catch(() => undefined);
    this.responded = new Promise<void>((resolve) => {
      this.onResponded = resolve;
    });
  }

  /** One received message, handled strictly in arrival order. */
  receive(data: Uint8Array): void {
    this.queue = this.queue.then(() => this.handle(data)).catch((e: Error) => this.settle(e));
  }

  /** The channel or the peer connection went away. */
  closed(): void {
    this.settle(this.state === "auth_ok"
      ? new HostProofError("the connection closed before auth_ok")
      : new ChallengeError("the computer closed the connection"));
  }

  private async handle(data: Uint8Array): Promise<void> {
    if (this.state === "done") {
      if (this.succeeded) this.opts.after?.(data);
      return;
    }
    let ev: Event;
    try {
      ev = decodeEvent(data);
    } catch (e) {
      throw this.state === "auth_ok"
        ? new HostProofError(`undecodable message instead of auth_ok: ${(e as Error).message}`)
        : new ChallengeError(`invalid message from the computer: ${(e as Error).message}`);
    }
    if (this.state === "challenge") {
      if (ev.type !== "auth_challenge")
        throw new ChallengeError(`expected auth_challenge, got ${ev.type === "unknown" ? ev.name : ev.type}`);
      let nH: Bytes;
      try {
        nH = b64Field32(ev.nonce, "auth_challenge.nonce");
      } catch (e) {
        throw new ChallengeError((e as Error).message);
      }
      let fp: Fingerprints;
      try {
        fp = await this.opts.fingerprints();
      } catch (e) {
        // No certificate to bind to: refused like a failed proof (§12 "Fingerprints").
        throw new HostProofError(`no DTLS fingerprint: ${(e as Error).message}`);
      }
      const nM = this.opts.nonce?.() ?? randomBytes(NONCE_BYTES);
      const tail = authTail(nH, nM, fp.host, fp.mobile);
      const mac = await authMac(this.opts.key, "mobile", tail);
      if (this.state !== "challenge") return; // closed meanwhile
      this.tail = tail;
      this.state = "auth_ok";
      this.opts.send(encodeRequest({ type: "auth_response", nonce: b64encode(nM), mac: b64encode(mac) }));
      this.onResponded();
      this.timer = setTimeout(
        () => this.settle(new HostProofError("no auth_ok within 10 s")),
        this.opts.timeoutMs ?? AUTH_OK_TIMEOUT_MS,
      );
      return;
    }
    await checkAuthOk(this.opts.key, this.tail!, ev);
    this.settle();
  }
}
