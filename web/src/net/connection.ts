// One session with the host: RTCPeerConnection as answerer with trickle ICE
// (peer-lifecycle.md §1–§2, host ICE restarts answered), channel
// authentication v2 (terminal-protocol.md §12) and the terminal-protocol
// client with stream v2 (docs/stream-v2.md): the fast channel opened after
// `auth_ok`, numbered input copied onto it, output shown each byte once.
import {
  certificateFingerprint, ChallengeError, HostProofError, PhoneAuth, sdpFingerprint, type Fingerprints,
} from "../proto/channelauth";
import { decodeEvent, encodeRequest, MAX_INPUT, MAX_MESSAGE, type Event, type Request } from "../proto/msgpack";
import { FAST_CHANNEL_LABEL, MAX_FAST_COPY } from "../proto/inorder";
import { PaneStream, type ResumePoint } from "../proto/stream";
import { LeadQueue } from "./lead";
import type { Signaling, SignalMsg } from "./signaling";

const OFFER_TIMEOUT_MS = 15_000;
const CHANNEL_TIMEOUT_MS = 20_000;
/** Remote candidates kept while no remote description is set. */
const MAX_PENDING_CANDIDATES = 64;
/** A fast input copy is skipped while the fast channel holds more than this unsent (it would not be fast). */
const FAST_BUFFER_LIMIT = 64 * 1024;

/** What the phone tells the user when the host did not prove the pairing key (§12 step 5). */
export const HOST_PROOF_MESSAGE =
  "The computer could not prove the pairing key — the connection may be intercepted. " +
  "Nothing was shown or sent on it. If the computer was paired again or its pairing was removed, pair this phone again.";

/** Why connecting failed, with a kind the UI turns into a message. */
export class ConnectError extends Error {
  constructor(
    readonly kind: "not_paired" | "already_connected" | "host_offline" | "timeout" | "host_proof" | "closed",
    message: string,
    /** Technical reason, for the console. */
    readonly detail = "",
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
  /** The fast channel (§4) opened or closed. */
  onfast: (open: boolean) => void = () => undefined;

  private channel: RTCDataChannel | undefined;
  /** `terminal-fast`: unordered, no retransmissions, copies only. */
  private fast: RTCDataChannel | undefined;
  /** Output of the current attachment: inflater, offsets, resume point. */
  private readonly stream = new PaneStream();
  /** Offset of the next input byte on this peer (§4: from 0, every byte of every `input`). */
  private inputNext = 0;
  /** Reliable sends after authentication: held back a moment after a fast copy (§4). */
  private readonly reliable = new LeadQueue((b) => {
    if (this.channel?.readyState === "open") this.channel.send(b as Uint8Array<ArrayBuffer>);
  });
  private pingSent = 0;
  private closed = false;
  /** Set once the host proved the pairing key; nothing but `auth_response` is sent before. */
  private authed = false;
  /** FP_H the handshake was bound to. */
  private hostFingerprint: Uint8Array | undefined;
  /** Why the connection closed after it was up, when it was a security failure. */
  closeReason: ConnectError | undefined;
  private unlisten: () => void = () => undefined;
  private handler: (m: SignalMsg) => void = () => undefined;
  /** Round-trip time of the last `ping` in ms. */
  latencyMs: number | undefined;

  private constructor(
    private readonly pc: RTCPeerConnection,
    private signaling: Signaling,
    readonly hostDeviceId: string,
  ) {}

  /** Asks the host for a connection, answers, runs channel authentication v2 (§12). */
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
      if (this.authed) {
        // A renegotiation may not bring another DTLS certificate under the proven channel.
        let fp: Uint8Array | undefined;
        try {
          fp = sdpFingerprint(sdp);
        } catch {
          fp = undefined;
        }
        if (!fp || !this.sameHost(fp)) {
          this.fail("a renegotiation offer carries another DTLS fingerprint");
          return;
        }
      }
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
    const auth = new PhoneAuth({
      key: secret,
      fingerprints: async () => {
        const fp = await this.fingerprints();
        this.hostFingerprint = fp.host;
        return fp;
      },
      send: (b) => {
        if (ch.readyState === "open") ch.send(b as Uint8Array<ArrayBuffer>);
      },
      after: (d) => this.receive(d.buffer),
    });
    ch.onmessage = (e) => {
      if (e.data instanceof ArrayBuffer) auth.receive(new Uint8Array(e.data));
      else auth.receive(new Uint8Array(0)); // a text message is not msgpack: fails the handshake
    };
    ch.onclose = () => auth.closed();
    const gone = () => {
      if (pc.connectionState === "failed" || pc.connectionState === "closed") auth.closed();
    };
    pc.addEventListener("connectionstatechange", gone);
    try {
      // The challenge must come within the channel timeout; auth_ok has its own 10 s inside PhoneAuth.
      await within(Promise.race([auth.responded, auth.done]), CHANNEL_TIMEOUT_MS, "the computer's challenge");
      await Promise.race([auth.done, failed]);
    } catch (e) {
      if (e instanceof HostProofError) throw new ConnectError("host_proof", HOST_PROOF_MESSAGE, e.message);
      if (e instanceof ChallengeError) throw new ConnectError("closed", `The connection failed before the key check: ${e.message}.`);
      throw e;
    } finally {
      pc.removeEventListener("connectionstatechange", gone);
    }
    this.authed = true;
    ch.onmessage = (m) => this.receive(m.data);
    ch.onclose = () => this.close();
    this.watchDtls();
    this.openFast();
  }

  /**
   * Opens the fast channel on the authenticated peer (§4): in band over the
   * SCTP association, no renegotiation. A host that does not take it leaves
   * the reliable channel doing all the work.
   */
  private openFast(): void {
    let f: RTCDataChannel;
    try {
      f = this.pc.createDataChannel(FAST_CHANNEL_LABEL, { ordered: false, maxRetransmits: 0 });
    } catch {
      return;
    }
    f.binaryType = "arraybuffer";
    this.fast = f;
    f.onopen = () => this.onfast(true);
    f.onclose = () => {
      if (this.fast === f) this.fast = undefined;
      this.onfast(false);
    };
    f.onmessage = (m) => this.receiveFast(m.data);
  }

  /** A message on the fast channel: a stream output copy of the attached pane is shown, anything else ignored. */
  private receiveFast(data: unknown): void {
    if (this.closed || !(data instanceof ArrayBuffer) || data.byteLength > MAX_MESSAGE) return;
    let ev: Event;
    try {
      ev = decodeEvent(new Uint8Array(data));
    } catch {
      return;
    }
    const out = this.stream.fast(ev);
    if (out) this.onevent({ type: "output", data: out });
  }

  /** Whether the fast channel is open. */
  get fastOpen(): boolean {
    return !this.closed && this.fast?.readyState === "open";
  }

  /**
   * FP_H from the certificate the host presented (never from the SDP text)
   * and FP_M from this phone's own local description (§12 "Fingerprints").
   */
  private async fingerprints(): Promise<Fingerprints> {
    const dtls = this.pc.sctp?.transport;
    if (!dtls || typeof dtls.getRemoteCertificates !== "function")
      throw new Error("this browser does not show the computer's DTLS certificate");
    const certs = dtls.getRemoteCertificates();
    if (certs.length === 0) throw new Error("the computer presented no DTLS certificate");
    const local = this.pc.currentLocalDescription?.sdp ?? this.pc.localDescription?.sdp ?? "";
    return { host: await certificateFingerprint(certs[0]), mobile: sdpFingerprint(local) };
  }

  /**
   * After authentication the DTLS certificate may not change under the
   * channel: a renegotiation that would bring another one is refused (see
   * `answer`), and a transport that reconnects with another one is closed.
   */
  private watchDtls(): void {
    const dtls = this.pc.sctp?.transport;
    if (!dtls) return;
    dtls.addEventListener("statechange", () => {
      if (dtls.state !== "connected" || this.closed) return;
      void this.fingerprints().then(
        (fp) => {
          if (!this.sameHost(fp.host)) this.fail("the computer's DTLS certificate changed after the key check");
        },
        (e: Error) => this.fail(e.message),
      );
    });
  }

  private sameHost(fp: Uint8Array): boolean {
    const h = this.hostFingerprint;
    return h !== undefined && h.length === fp.length && h.every((b, i) => b === fp[i]);
  }

  /** Closes with a host-proof failure the UI reads from `closeReason`. */
  private fail(detail: string): void {
    if (this.closed) return;
    this.closeReason = new ConnectError("host_proof", HOST_PROOF_MESSAGE, detail);
    this.close();
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
        // A new stream per attach (§7): a new inflater and stream position every time.
        this.stream.attached(ev);
        break;
      case "output": {
        let out: Uint8Array | undefined;
        try {
          out = this.stream.reliable(ev);
        } catch (e) {
          this.onevent({ type: "local_error", message: (e as Error).message });
          return;
        }
        if (!out) return; // its fast copy was shown already
        ev = { type: "output", data: out };
        break;
      }
      case "detached":
        this.stream.ended();
        break;
      case "pane_closed":
        if (ev.paneId === this.stream.paneId) this.stream.ended();
        break;
      case "error":
        if (ev.code === "attach_failed") this.stream.ended();
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
    if (!this.authed || this.closed || !this.channel || this.channel.readyState !== "open") return false;
    this.reliable.push(b);
    return true;
  }

  /** Sends one request; false when the channel is gone. An `input` goes through `input` (numbered, maybe copied). */
  send(req: Request): boolean {
    if (!this.isOpen) return false;
    if (req.type === "input") {
      this.input(req.data);
      return this.isOpen;
    }
    if (req.type === "ping") this.pingSent = performance.now();
    if (req.type === "attach")
      this.stream.leaving(req.resumeFrom === undefined ? undefined : { paneId: req.paneId, offset: req.resumeFrom });
    if (req.type === "detach") this.stream.leaving();
    return this.sendRaw(encodeRequest(req));
  }

  /**
   * `input`, split into messages of at most 16 384 bytes, each numbered in
   * this peer's input stream; one of at most 1024 bytes goes first as a copy
   * on the fast channel (while the attachment is confirmed and that channel
   * is not backed up), then reliably, at least 3 ms later (§4).
   */
  input(data: Uint8Array): void {
    for (let i = 0; i < data.length; i += MAX_INPUT) {
      if (!this.isOpen) return;
      const chunk = data.subarray(i, i + MAX_INPUT);
      const msg = encodeRequest({ type: "input", data: chunk, offset: this.inputNext });
      this.inputNext += chunk.length;
      const f = this.fast;
      const copy = chunk.length <= MAX_FAST_COPY && this.stream.copiesInput;
      if (copy && f?.readyState === "open" && f.bufferedAmount <= FAST_BUFFER_LIMIT) {
        try {
          f.send(msg as Uint8Array<ArrayBuffer>);
          // The original leaves FAST_COPY_LEAD_MS later, never in the copy's datagram.
          this.reliable.copied();
        } catch {
          // A copy lost here is a copy lost on the way: the reliable one follows.
        }
      }
      this.sendRaw(msg);
    }
  }

  /** Where this connection's attachment stood, for `resumeFrom` on the next one (§5). */
  resumePoint(): ResumePoint | undefined {
    return this.stream.resumePoint();
  }

  /** Moves to a new signaling socket (the old one dropped) so ICE restarts keep working. */
  rebind(signaling: Signaling): void {
    this.unlisten();
    this.signaling = signaling;
    this.unlisten = signaling.listen(this.handler);
  }

  get isOpen(): boolean {
    return !this.closed && this.authed && this.channel?.readyState === "open";
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.unlisten();
    this.reliable.clear();
    this.fast?.close();
    this.channel?.close();
    this.pc.close();
    this.onclose();
  }
}
