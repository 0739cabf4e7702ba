// The phone's signaling WebSocket (signaling.md §6–§7, §11): `auth` with the
// JWT, presence every 30 s, host presence tracking, messages to listeners.
import { signedHeaders } from "../proto/crypto";
import { apiPath, wsUrl } from "../proto/qr";

const AUTH_TIMEOUT_MS = 10_000;
const PRESENCE_MS = 30_000;
const MAX_WS_MESSAGE = 16_384;

/** One signaling message (all fields optional except `type`). */
export interface SignalMsg {
  type: string;
  token?: string;
  name?: string;
  status?: string;
  error?: string;
  reason?: string;
  targetDeviceId?: string;
  deviceId?: string;
  hostDeviceId?: string;
  hostName?: string;
  sdp?: string;
  candidate?: string;
  sdpMid?: string;
  sdpMLineIndex?: number;
}

/** Why the socket could not be opened or authenticated. */
export class SignalingError extends Error {}

export class Signaling {
  private listeners = new Set<(m: SignalMsg) => void>();
  private presence: ReturnType<typeof setInterval> | undefined;
  /** Hosts the server reported online (id → name). */
  readonly online = new Map<string, string>();
  onclose: (() => void) | undefined;

  private constructor(private readonly ws: WebSocket) {
    ws.onmessage = (e) => {
      if (typeof e.data !== "string") return;
      let m: SignalMsg;
      try {
        m = JSON.parse(e.data) as SignalMsg;
      } catch {
        return; // malformed JSON is skipped
      }
      if (typeof m?.type !== "string") return;
      if (m.type === "host_online" && m.deviceId) this.online.set(m.deviceId, m.name ?? "");
      if (m.type === "host_offline" && m.deviceId) this.online.delete(m.deviceId);
      for (const l of [...this.listeners]) l(m);
    };
    ws.onclose = () => {
      clearInterval(this.presence);
      this.onclose?.();
    };
    this.presence = setInterval(() => this.send({ type: "presence" }), PRESENCE_MS);
  }

  /**
   * Opens the socket, sends `auth{token,name}` and waits for `auth ok`. A
   * browser cannot set headers on a WebSocket, so with a signing secret the
   * upgrade's signature goes in the query (the server accepts it on `/ws`).
   */
  static async connect(serverUrl: string, token: string, name: string, hmacSecret = ""): Promise<Signaling> {
    const signed = await signedHeaders(hmacSecret, apiPath("/ws"), Date.now() / 1000);
    const query = new URLSearchParams(signed).toString();
    const url = wsUrl(serverUrl) + (query ? `?${query}` : "");
    return new Promise((resolve, reject) => {
      let ws: WebSocket;
      try {
        ws = new WebSocket(url);
      } catch (e) {
        reject(new SignalingError(`bad server url: ${(e as Error).message}`));
        return;
      }
      const early: SignalMsg[] = [];
      const timer = setTimeout(() => {
        ws.close();
        reject(new SignalingError("the signaling server did not answer"));
      }, AUTH_TIMEOUT_MS);
      ws.onopen = () => ws.send(JSON.stringify({ type: "auth", token, ...(name ? { name } : {}) }));
      ws.onerror = () => undefined;
      ws.onclose = (e) => {
        clearTimeout(timer);
        reject(new SignalingError(`signaling socket closed (${e.code}${e.reason ? " " + e.reason : ""})`));
      };
      ws.onmessage = (e) => {
        let m: SignalMsg;
        try {
          m = JSON.parse(String(e.data)) as SignalMsg;
        } catch {
          return;
        }
        if (m.type === "auth") {
          clearTimeout(timer);
          if (m.status !== "ok") {
            ws.close();
            reject(new SignalingError(`signaling auth failed: ${m.error ?? m.status ?? "?"}`));
            return;
          }
          const s = new Signaling(ws);
          // Messages that raced the auth reply (host_online snapshot) are replayed.
          for (const x of early) ws.onmessage?.(new MessageEvent("message", { data: JSON.stringify(x) }));
          resolve(s);
        } else if (m.type === "error") {
          clearTimeout(timer);
          ws.close();
          reject(new SignalingError(`signaling auth failed: ${m.error ?? "error"}`));
        } else {
          early.push(m);
        }
      };
    });
  }

  /** Queues a message; returns false when the socket is not open or it is too large. */
  send(m: SignalMsg): boolean {
    const text = JSON.stringify(m);
    if (this.ws.readyState !== WebSocket.OPEN || text.length > MAX_WS_MESSAGE) return false;
    this.ws.send(text);
    return true;
  }

  /** Adds a listener; returns its remover. */
  listen(l: (m: SignalMsg) => void): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  get open(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  close(): void {
    clearInterval(this.presence);
    this.ws.close(1000);
  }
}
