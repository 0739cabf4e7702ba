// Signed HTTP calls to the signaling server (signaling.md §1, §3, §5;
// pairing.md §2 step 5–6, §8, §9): challenge, token, pair/complete, TURN.
import {
  b64encode, newPairingKey, pairConfirmation, pairingSecretV2, signChallenge, signedHeaders, type Identity,
} from "../proto/crypto";
import { nameProblem } from "../proto/name";
import { apiBase, apiPath, type QrPayload } from "../proto/qr";
import { PAIRING_VERSION, type PairingRecord } from "./store";

const HTTP_TIMEOUT_MS = 10_000;
const MAX_BODY = 65_536;
const PERMANENT = new Set(["missing client signature", "invalid timestamp", "invalid client signature"]);

/** A non-2xx answer (or no answer) from the server. */
export class ApiError extends Error {
  constructor(readonly status: number, readonly error: string, readonly endpoint: string) {
    super(status === 0 ? `${endpoint}: ${error}` : `${endpoint}: ${status} ${error}`);
  }
  /** Retrying cannot help (signaling.md §5, plus `unknown device`). */
  get permanent(): boolean {
    return this.status === 401 && (PERMANENT.has(this.error) || this.error === "unknown device");
  }
}

/** Server settings shared by every call. */
export interface ServerOpts {
  serverUrl: string;
  /** Request-signing secret; "" sends no signing headers. */
  hmacSecret: string;
}

export async function call<T>(
  opts: ServerOpts,
  method: string,
  endpoint: string,
  body?: unknown,
  bearer?: string,
): Promise<T> {
  const headers: Record<string, string> = await signedHeaders(opts.hmacSecret, apiPath(endpoint), Date.now() / 1000);
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  let resp: Response;
  try {
    resp = await fetch(apiBase(opts.serverUrl) + endpoint, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
    });
  } catch (e) {
    throw new ApiError(0, `server unreachable (${(e as Error).message})`, endpoint);
  }
  const text = (await resp.text()).slice(0, MAX_BODY);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  if (!resp.ok) {
    const err = (json as { error?: unknown } | undefined)?.error;
    throw new ApiError(resp.status, typeof err === "string" ? err : text.slice(0, 200), endpoint);
  }
  if (json === undefined) throw new ApiError(resp.status, "response is not JSON", endpoint);
  return json as T;
}

/** `POST /auth/challenge` → a non-empty nonce. */
export async function challenge(opts: ServerOpts, deviceId: string): Promise<string> {
  const r = await call<{ nonce?: string }>(opts, "POST", "/auth/challenge", { deviceId });
  if (!r.nonce) throw new ApiError(200, "empty challenge nonce", "/auth/challenge");
  return r.nonce;
}

/** Challenge → sign → `POST /auth/token` → JWT. */
export async function fetchToken(opts: ServerOpts, id: Identity): Promise<string> {
  const nonce = await challenge(opts, id.deviceId);
  const signature = await signChallenge(id, nonce);
  const r = await call<{ token?: string }>(opts, "POST", "/auth/token", { deviceId: id.deviceId, nonce, signature });
  if (!r.token) throw new ApiError(200, "empty token", "/auth/token");
  return r.token;
}

/** Why pairing failed, in words for the user. */
export class PairingError extends Error {}

/**
 * Completes a pairing v2 from the QR payload (pairing.md §9); nothing is
 * stored here. K comes from the QR's host key and token, the confirmation
 * proves K to the host, and a server answer naming another host aborts.
 */
export async function pair(
  qr: QrPayload,
  id: Identity,
  name: string,
  hmacSecret: string,
): Promise<PairingRecord> {
  // The server refuses a bad name too; saying why here is clearer.
  const problem = name ? nameProblem(name) : null;
  if (problem) throw new PairingError(problem);
  const serverUrl = qr.serverUrl;
  const opts = { serverUrl, hmacSecret };
  // A fresh pairing key per attempt, dropped when this returns.
  const own = await newPairingKey();
  const ownB64 = b64encode(own.publicKey);
  let secret: CryptoKey;
  try {
    secret = await pairingSecretV2(own, qr.hostKey, qr.token);
  } catch (e) {
    throw new PairingError(`The host key in this pairing payload cannot be used (${(e as Error).message}).`);
  }
  const confirmation = await pairConfirmation(secret, id.deviceId, ownB64, qr.hostDeviceId);
  const nonce = await challenge(opts, id.deviceId);
  const signature = await signChallenge(id, nonce);
  let resp: { hostX25519PublicKey?: string; hostDeviceId?: string; hostName?: string };
  try {
    resp = await call(opts, "POST", "/auth/pair/complete", {
      pairingCode: qr.code,
      deviceId: id.deviceId,
      ed25519PublicKey: b64encode(id.publicKey),
      x25519PublicKey: ownB64,
      ...(name ? { name } : {}),
      nonce,
      signature,
      confirmation,
    });
  } catch (e) {
    if (e instanceof ApiError && e.status === 404)
      throw new PairingError(
        "This QR code is wrong or expired (or was already used): run `muxlink pair` on the computer again " +
          "and scan the new QR code, or paste the payload line it prints.");
    throw e;
  }
  // The camera read the QR code; the server may lie (pairing.md §8.1).
  if (resp.hostDeviceId !== qr.hostDeviceId || resp.hostX25519PublicKey !== qr.hostKeyB64)
    throw new PairingError("The server answered with a different host key: pairing aborted, nothing stored.");
  const hostName = typeof resp.hostName === "string" ? resp.hostName : "";
  return { version: PAIRING_VERSION, hostDeviceId: qr.hostDeviceId, hostName, serverUrl, secret };
}

/** ICE servers from `GET /turn/credentials`; STUN-less empty list on any failure. */
export async function iceServers(opts: ServerOpts, token: string): Promise<RTCIceServer[]> {
  try {
    const r = await call<{ urls?: string[]; username?: string; credential?: string }>(
      opts, "GET", "/turn/credentials", undefined, token,
    );
    if (!Array.isArray(r.urls) || r.urls.length === 0) return [];
    return [{ urls: r.urls, username: r.username, credential: r.credential }];
  } catch {
    return [];
  }
}
