// One session with the host: RTCPeerConnection as answerer with trickle ICE
// (peer-lifecycle.md §1–§2, host ICE restarts answered), the key-possession
// handshake (terminal-protocol.md §5, §11.1) and the terminal-protocol client.
import { b64decode, b64encode } from "../proto/crypto";
import { decodeEvent, encodeRequest, MAX_INPUT, MAX_MESSAGE, type Event, type Request } from "../proto/msgpack";
import { StreamInflater } from "../proto/inflate";
import type { Signaling, SignalMsg } from "./signaling";

const OFFER_TIMEOUT_MS = 15_000;
const CHANNEL_TIMEOUT_MS = 20_000;
const AUTH_TIMEOUT_MS = 10_000;
/** Remote candidates kept while no remote description is set. */
const MAX_PENDING_CANDIDATES = 64;

/** Why connecting failed, with a kind the UI turns into a message. */
export class ConnectError extends Error {
  constructor(
    readonly kind: "not_paired" | "already_connected" | "host_offline" | "timeout" | "wrong_key" | "closed",
    message: string,
  ) {
    super(message);
  }
}

/** Events after auth, with `output` already inflated. */
export type ConnEvent = Event | { type: "local_error"; message: string };

export class HostConnection {
  /** Events after auth; set before `connect` resolves to miss none. */
  onevent: (e: ConnEvent) => void = () => undefined;
  /** Peer connection state changes (connected, disconnected, failed, closed). */
  onstate: (s: RTCPeerConnectionState) => void = () => undefined;
  /** Called once when the channel or peer is gone. */
  onclose: () => void = () => undefined;

  private channel: RTCDataChannel | undefined;
  private inflater: StreamInflater | undefined;
  private pingSent = 0;
  private closed = false;
  private unlisten: () => void = () => undefined;
  private handler: (m: SignalMsg) => void = () => undefined;
  /** Round-trip time of the last `ping` in ms. */
  latencyMs: number | undefined;

  private constructor(
    private readonly pc: RTCPeerConnection,
    private signaling: Signaling,
    readonly hostDeviceId: string,
  ) {}

  /** Asks the host for a connection, answers, proves key possession, waits for `auth_ok`. */
  static async connect(
    signaling: Signaling,
    hostDeviceId: string,
    secret: CryptoKey,
    iceServers: RTCIceServer[],
  ): Promise<HostConnection> {
    const pc = new RTCPeerConnection({ iceServers });
    const conn = new HostConnection(pc, signaling, hostDeviceId);
    try {
      await conn.negotiate(secret);
      return conn;
    } catch (e) {
      conn.close();
      throw e;
    }
  }

  private async negotiate(secret: CryptoKey): Promise<void> {
    const pc = this.pc;
    const host = this.hostDeviceId;
    let remoteSet = false;
    const pending: RTCIceCandidateInit[] = [];
    let offerWaiter: { resolve: (sdp: string) => void; reject: (e: Error) => void } | undefined;
    let failWaiter: (e: Error) => void = () => undefined;

    const answer = async (sdp: string) => {
      await pc.setRemoteDescription({ type: "offer", sdp });
      remoteSet = true;
      for (const c of pending.splice(0)) await pc.addIceCandidate(c).catch(() => undefined);
      await pc.setLocalDescription(await pc.createAnswer());
      this.signaling.send({ type: "sdp_answer", targetDeviceId: host, sdp: pc.localDescription?.sdp ?? "" });
    };

    this.handler = (m: SignalMsg) => {
      const fromHost = m.targetDeviceId === host;
      if (m.type === "host_offline" && m.deviceId === host) {
        failWaiter(new ConnectError("host_offline", "The computer is offline (its muxlink agent is not connected)."));
        return;
      }
      if (m.type === "connection_rejected" && (fromHost || !m.targetDeviceId)) {
        const kind = m.reason === "already_connected" ? "already_connected" : "not_paired";
        failWaiter(new ConnectError(kind, kind === "not_paired"
          ? "The computer does not accept this phone: pair again."
          : "The computer already has a phone connected."));
        return;
      }
      if (!fromHost) return;
      if (m.type === "sdp_offer" && m.sdp) {
        if (offerWaiter) {
          offerWaiter.resolve(m.sdp);
          offerWaiter = undefined;
        } else {
          // ICE restart (or renegotiation) on the same connection.
          void answer(m.sdp).catch(() => undefined);
        }
      } else if (m.type === "ice_candidate" && m.candidate) {
        const c: RTCIceCandidateInit = { candidate: m.candidate, sdpMid: m.sdpMid ?? null, sdpMLineIndex: m.sdpMLineIndex ?? null };
        if (remoteSet) void pc.addIceCandidate(c).catch(() => undefined);
        else if (pending.length < MAX_PENDING_CANDIDATES) pending.push(c);
      }
    };
    this.unlisten = this.signaling.listen(this.handler);

    pc.onicecandidate = (e) => {
      if (!e.candidate || !e.candidate.candidate) return; // end of gathering is not sent
      this.signaling.send({
        type: "ice_candidate",
        targetDeviceId: host,
        candidate: e.candidate.candidate,
        ...(e.candidate.sdpMid != null ? { sdpMid: e.candidate.sdpMid } : {}),
        ...(e.candidate.sdpMLineIndex != null ? { sdpMLineIndex: e.candidate.sdpMLineIndex } : {}),
      });
    };
    pc.onconnectionstatechange = () => {
      this.onstate(pc.connectionState);
      if (pc.connectionState === "failed" || pc.connectionState === "closed") this.close();
    };

    const failed = new Promise<never>((_, reject) => {
      failWaiter = reject;
    });
    failed.catch(() => undefined);
    const within = <T>(p: Promise<T>, ms: number, what: string): Promise<T> =>
      Promise.race([
        p,
        failed,
        new Promise<never>((_, reject) =>
          setTimeout(() => reject(new ConnectError("timeout", `Timed out waiting for ${what}.`)), ms)),
      ]);

    const offer = new Promise<string>((resolve, reject) => {
      offerWaiter = { resolve, reject };
    });
    const channel = new Promise<RTCDataChannel>((resolve) => {
      pc.ondatachannel = (e) => {
        if (e.channel.label === "terminal") resolve(e.channel);
      };
    });
    if (!this.signaling.send({ type: "connect_request", targetDeviceId: host }))
      throw new ConnectError("closed", "The signaling connection is closed.");
    await answer(await within(offer, OFFER_TIMEOUT_MS, "the computer's offer"));

    const ch = await within(channel, CHANNEL_TIMEOUT_MS, "the data channel");
    ch.binaryType = "arraybuffer";
    this.channel = ch;
    const authed = new Promise<void>((resolve, reject) => {
      let challenged = false;
      ch.onmessage = async (e) => {
        if (!(e.data instanceof ArrayBuffer)) return;
        let ev: Event;
        try {
          ev = decodeEvent(new Uint8Array(e.data));
        } catch (err) {
          reject(new ConnectError("closed", `The computer sent an invalid message: ${(err as Error).message}`));
          return;
        }
        if (!challenged && ev.type === "auth_challenge") {
          challenged = true;
          try {
            const nonce = b64decode(ev.nonce);
            if (ev.nonce.length > 128 || nonce.length !== 32) throw new Error("bad nonce");
            const mac = new Uint8Array(await crypto.subtle.sign("HMAC", secret, nonce));
            this.sendRaw(encodeRequest({ type: "auth_response", mac: b64encode(mac) }));
          } catch (err) {
            reject(new ConnectError("closed", `Bad challenge from the computer: ${(err as Error).message}`));
          }
        } else if (challenged && ev.type === "auth_ok") {
          ch.onmessage = (m) => this.receive(m.data);
          resolve();
        }
      };
      ch.onclose = () =>
        reject(new ConnectError(challenged ? "wrong_key" : "closed", challenged
          ? "The computer refused this phone's key: the stored pairing secret is wrong. Pair again."
          : "The computer closed the connection."));
    });
    await within(authed, AUTH_TIMEOUT_MS + CHANNEL_TIMEOUT_MS, "the key check");
    ch.onclose = () => this.close();
  }

  private receive(data: unknown): void {
    if (!(data instanceof ArrayBuffer)) return;
    if (data.byteLength > MAX_MESSAGE) return;
    let ev: Event;
    try {
      ev = decodeEvent(new Uint8Array(data));
    } catch (e) {
      this.onevent({ type: "local_error", message: `invalid message from the computer: ${(e as Error).message}` });
      return;
    }
    switch (ev.type) {
      case "attached":
        // A new stream per attach (§7): reset the inflater every time.
        this.inflater = ev.compression === "deflate" ? new StreamInflater() : undefined;
        break;
      case "output":
        if (this.inflater) {
          try {
            ev = { type: "output", data: this.inflater.push(ev.data) };
          } catch (e) {
            this.onevent({ type: "local_error", message: (e as Error).message });
            return;
          }
        }
        break;
      case "pong":
        if (this.pingSent) this.latencyMs = performance.now() - this.pingSent;
        this.pingSent = 0;
        break;
      case "unknown":
        return; // unknown types are dropped
      default:
        break;
    }
    this.onevent(ev);
  }

  private sendRaw(b: Uint8Array): boolean {
    if (!this.channel || this.channel.readyState !== "open") return false;
    this.channel.send(b as Uint8Array<ArrayBuffer>);
    return true;
  }

  /** Sends one request; false when the channel is gone. */
  send(req: Request): boolean {
    if (req.type === "ping") this.pingSent = performance.now();
    return this.sendRaw(encodeRequest(req));
  }

  /** `input`, split into messages of at most 16 384 bytes. */
  input(data: Uint8Array): void {
    for (let i = 0; i < data.length; i += MAX_INPUT) this.send({ type: "input", data: data.subarray(i, i + MAX_INPUT) });
  }

  /** Moves to a new signaling socket (the old one dropped) so ICE restarts keep working. */
  rebind(signaling: Signaling): void {
    this.unlisten();
    this.signaling = signaling;
    this.unlisten = signaling.listen(this.handler);
  }

  get isOpen(): boolean {
    return !this.closed && this.channel?.readyState === "open";
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.unlisten();
    this.channel?.close();
    this.pc.close();
    this.onclose();
  }
}
