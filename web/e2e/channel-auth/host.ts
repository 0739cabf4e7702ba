// The web client's HostConnection against a stand-in host: a second
// RTCPeerConnection in the same page (offerer, channel label `terminal`) that
// runs the host side of terminal-protocol.md §12, written here independently
// of src/proto/channelauth.ts, and can misbehave in the ways the phone must refuse;
// with fast.ts it also checks stream v2's fast channel ("fast" mode).
import { decode, encode } from "@msgpack/msgpack";
import { ConnectError, HostConnection } from "../../src/net/connection";
import type { Signaling, SignalMsg } from "../../src/net/signaling";
import { FastHost } from "./fast";

const HOST_ID = "21fe31dfa154a261626bf854046fd227";
const te = new TextEncoder();
const b64 = (b: Uint8Array) => btoa(String.fromCharCode(...b));
const unb64 = (s: string) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
const cat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};
const sha256 = async (b: ArrayBuffer) => new Uint8Array(await crypto.subtle.digest("SHA-256", b));
/** The host's own fingerprint, from its own local description. */
const ownFingerprint = (sdp: string) =>
  Uint8Array.from(/a=fingerprint:sha-256 ([0-9A-Fa-f:]+)/.exec(sdp)![1].split(":"), (x) => parseInt(x, 16));

type Mode =
  | "good" | "restart_ok" | "restart_other_cert" | "event_before_ok" | "wrong_mac" | "v1_auth_ok"
  | "reflected_mac" | "close_after_response" | "silent" | "fast";

export interface Outcome {
  mode: Mode | "phone_key_wrong";
  result: string;
  /** Request types the host received after it sent `auth_ok`. */
  afterAuth: string[];
  /** Messages the host received from the phone before `auth_ok` other than the one `auth_response`. */
  beforeOk: string[];
  /** Fast channels the phone opened (label, options, before or after auth_ok). */
  fast: string[];
  /** "fast" mode: the attach's `offsets`, the text the phone showed, input received per channel (`offset:length`). */
  offsets?: boolean;
  shown?: string;
  fastIn?: string[];
  reliableIn?: string[];
  ms: number;
}

const hmacKey = (raw: Uint8Array<ArrayBuffer>) =>
  crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);

async function run(mode: Mode, hostKey: CryptoKey, phoneKey: CryptoKey, label: Outcome["mode"] = mode): Promise<Outcome> {
  const listeners = new Set<(m: SignalMsg) => void>();
  const toPhone = (m: Omit<SignalMsg, "targetDeviceId">) =>
    setTimeout(() => listeners.forEach((l) => l({ ...m, targetDeviceId: HOST_ID })), 0);
  const host = new RTCPeerConnection();
  const afterAuth: string[] = [];
  const beforeOk: string[] = [];
  let hostAuthed = false;
  let hostCh: RTCDataChannel | undefined;
  const fh = new FastHost(host, () => hostAuthed);

  const onConnectRequest = async () => {
    const ch = host.createDataChannel("terminal");
    hostCh = ch;
    ch.binaryType = "arraybuffer";
    let nH = new Uint8Array(32);
    let responses = 0;
    let authed = false;
    ch.onopen = () => {
      nH = crypto.getRandomValues(new Uint8Array(32));
      ch.send(encode({ type: "auth_challenge", nonce: b64(nH) }));
    };
    ch.onmessage = async (e) => {
      const msg = decode(new Uint8Array(e.data as ArrayBuffer)) as { type: string; nonce?: string; mac?: string };
      if (authed) {
        afterAuth.push(msg.type);
        fh.reliable(msg, ch);
        return;
      }
      if (msg.type !== "auth_response" || responses++ > 0) {
        beforeOk.push(msg.type);
        return;
      }
      const fpH = ownFingerprint(host.localDescription!.sdp);
      const fpM = await sha256(host.sctp!.transport.getRemoteCertificates()[0]);
      const tail = cat(nH, unb64(msg.nonce ?? ""), fpH, fpM);
      const ok = await crypto.subtle.verify("HMAC", hostKey, unb64(msg.mac ?? ""), cat(te.encode("muxlink-auth-v2 mobile"), tail));
      if (!ok || mode === "close_after_response") {
        host.close();
        return;
      }
      authed = true;
      hostAuthed = true;
      const mac = new Uint8Array(await crypto.subtle.sign("HMAC", hostKey, cat(te.encode("muxlink-auth-v2 host"), tail)));
      switch (mode) {
        case "event_before_ok":
          ch.send(encode({ type: "pong", latency: 0 }));
          ch.send(encode({ type: "auth_ok", mac: b64(mac) }));
          break;
        case "wrong_mac":
          mac[0] ^= 1;
          ch.send(encode({ type: "auth_ok", mac: b64(mac) }));
          break;
        case "v1_auth_ok":
          ch.send(encode({ type: "auth_ok" }));
          break;
        case "reflected_mac":
          ch.send(encode({ type: "auth_ok", mac: msg.mac }));
          break;
        case "silent":
          break;
        default:
          ch.send(encode({ type: "auth_ok", mac: b64(mac) }));
      }
    };
    host.onicecandidate = (e) => {
      if (e.candidate?.candidate)
        toPhone({ type: "ice_candidate", candidate: e.candidate.candidate, sdpMid: e.candidate.sdpMid ?? undefined,
          sdpMLineIndex: e.candidate.sdpMLineIndex ?? undefined });
    };
    await host.setLocalDescription(await host.createOffer());
    toPhone({ type: "sdp_offer", sdp: host.localDescription!.sdp });
  };

  const signaling = {
    listen(h: (m: SignalMsg) => void) {
      listeners.add(h);
      return () => listeners.delete(h);
    },
    send(m: SignalMsg) {
      setTimeout(() => {
        if (m.type === "connect_request") void onConnectRequest();
        else if (m.type === "sdp_answer") void host.setRemoteDescription({ type: "answer", sdp: m.sdp });
        else if (m.type === "ice_candidate")
          void host.addIceCandidate({ candidate: m.candidate, sdpMid: m.sdpMid ?? null, sdpMLineIndex: m.sdpMLineIndex ?? null });
      }, 0);
      return true;
    },
  } as unknown as Signaling;

  const t0 = performance.now();
  const outcome = (result: string, more: Partial<Outcome> = {}): Outcome =>
    ({ mode: label, result, afterAuth, beforeOk, fast: fh.opened, ...more, ms: Math.round(performance.now() - t0) });
  let conn: HostConnection;
  try {
    conn = await HostConnection.connect(signaling, HOST_ID, phoneKey, []);
  } catch (e) {
    host.close();
    return outcome(e instanceof ConnectError ? `${e.kind}: ${e.detail || e.message}` : `error: ${String(e)}`);
  }
  conn.send({ type: "list_sessions" });
  await new Promise((r) => setTimeout(r, 300));
  if (mode === "fast") {
    let shown: string;
    try {
      shown = await fh.exchange(conn, hostCh!);
    } catch (e) {
      shown = `error: ${String(e)}`;
    }
    const more = { offsets: fh.attach?.offsets, shown, fastIn: fh.fastIn, reliableIn: fh.reliableIn };
    const result = conn.isOpen ? "connected" : "closed";
    conn.close();
    host.close();
    return outcome(result, more);
  }
  if (mode === "restart_ok" || mode === "restart_other_cert") {
    host.restartIce();
    await host.setLocalDescription(await host.createOffer());
    let sdp = host.localDescription!.sdp;
    if (mode === "restart_other_cert")
      sdp = sdp.replace(/(a=fingerprint:sha-256 )([0-9A-F]{2})/, (_m, a: string, b: string) => a + (b === "00" ? "01" : "00"));
    toPhone({ type: "sdp_offer", sdp });
    await new Promise((r) => setTimeout(r, 1500));
    conn.send({ type: "ping" });
    await new Promise((r) => setTimeout(r, 300));
  }
  const result = conn.isOpen ? "connected" : `closed: ${conn.closeReason?.kind ?? ""} ${conn.closeReason?.detail ?? ""}`.trim();
  conn.close();
  host.close();
  return outcome(result);
}

void (async () => {
  const out = document.getElementById("out")!;
  try {
    const k = await hmacKey(crypto.getRandomValues(new Uint8Array(32)));
    const other = await hmacKey(crypto.getRandomValues(new Uint8Array(32)));
    const results: Outcome[] = [];
    for (const mode of ["good", "restart_ok", "restart_other_cert", "event_before_ok", "wrong_mac", "v1_auth_ok",
      "reflected_mac", "close_after_response", "silent", "fast"] as Mode[])
      results.push(await run(mode, k, k));
    results.push(await run("good", k, other, "phone_key_wrong"));
    out.textContent = JSON.stringify(results);
  } catch (e) {
    out.textContent = JSON.stringify({ error: String(e) });
  }
})();
