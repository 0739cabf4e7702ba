// The stand-in host's side of stream v2's fast channel (docs/stream-v2.md §4)
// for the channel-authentication harness: it notes every `terminal-fast`
// channel the phone opens (options, before or after `auth_ok`), and in the
// "fast" mode plays an attachment with offsets against the real
// HostConnection over Chromium's SCTP: output copies first, late, ahead, of
// another pane, a snapshot; numbered input copies from the phone.
import { decode, encode } from "@msgpack/msgpack";
import type { ConnEvent, HostConnection } from "../../src/net/connection";

type Msg = { type: string; data?: Uint8Array; offset?: number; paneId?: string; offsets?: boolean };

/** Polls `cond` until it holds; throws after `ms` (a bound on failure, not a timing assertion). */
async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const te = new TextEncoder();
const td = new TextDecoder();

export class FastHost {
  /** Each fast channel the phone opened: `label ordered=… maxRetransmits=… before|after auth_ok`. */
  readonly opened: string[] = [];
  /** Input the host received: `offset:length` per message, by channel. */
  readonly fastIn: string[] = [];
  readonly reliableIn: string[] = [];
  /** The phone's `attach` fields, as received. */
  attach: Msg | undefined;
  private fast: RTCDataChannel | undefined;

  constructor(pc: RTCPeerConnection, authed: () => boolean) {
    pc.addEventListener("datachannel", (e) => {
      const f = e.channel;
      this.opened.push(`${f.label} ordered=${f.ordered} maxRetransmits=${f.maxRetransmits} ${authed() ? "after" : "before"} auth_ok`);
      f.binaryType = "arraybuffer";
      this.fast = f;
      f.onmessage = (m) => {
        const msg = decode(new Uint8Array(m.data as ArrayBuffer)) as Msg;
        if (msg.type === "input") this.fastIn.push(`${msg.offset}:${msg.data?.length}`);
      };
    });
  }

  /** A request on `terminal` after `auth_ok`; answers `attach` with offsets from 1000. */
  reliable(msg: Msg, ch: RTCDataChannel): void {
    if (msg.type === "input") this.reliableIn.push(`${msg.offset}:${msg.data?.length}`);
    if (msg.type === "attach") {
      this.attach = msg;
      ch.send(encode({ type: "attached", paneId: "%3", offset: 1000 }));
    }
  }

  /** Runs the exchange; returns the text the phone showed. */
  async exchange(conn: HostConnection, ch: RTCDataChannel): Promise<string> {
    await until(() => this.fast?.readyState === "open", "the fast channel to open");
    const fast = this.fast!;
    let shown = "";
    let pongs = 0;
    conn.onevent = (e: ConnEvent) => {
      if (e.type === "output") shown += td.decode(e.data);
      if (e.type === "pong") pongs++;
    };
    conn.input(te.encode("pre")); // not attached yet: reliable only
    conn.send({ type: "attach", paneId: "%3", cols: 80, rows: 24, compression: "deflate", offsets: true });
    conn.input(te.encode("mid")); // attach not confirmed: reliable only, behind the attach
    await until(() => this.attach !== undefined, "the attach");
    const out = (text: string, offset: number, extra: Record<string, unknown> = {}) =>
      encode({ type: "output", data: te.encode(text), offset, ...extra });
    fast.send(out("ab", 1000, { paneId: "%3" })); // before any stream output is applied: dropped (§3)
    ch.send(out("ab", 1000));
    fast.send(out("cd", 1002, { paneId: "%3" })); // first: shown, its reliable copy is a duplicate
    ch.send(out("cd", 1002));
    ch.send(out("ef", 1004));
    fast.send(out("ef", 1004, { paneId: "%3" })); // late: a duplicate
    fast.send(out("XX", 1006, { paneId: "%9" })); // another pane: ignored
    fast.send(out("ij", 1008, { paneId: "%3" })); // ahead of a lost copy: dropped
    fast.send(encode({ type: "pong", latency: 0 })); // not an output copy: ignored
    ch.send(out("gh", 1006));
    ch.send(out("ij", 1008));
    ch.send(out("[snap]", 5000, { snapshot: true })); // the stream continues at 5000
    fast.send(out("k", 5000, { paneId: "%3" })); // may overtake the snapshot: dropped until "k" applies
    ch.send(out("k", 5000));
    fast.send(out("l", 5001, { paneId: "%3" }));
    ch.send(out("l", 5001));
    ch.send(encode({ type: "pong", latency: 0 }));
    // Reliable messages are in order: after the pong every byte has come at least once.
    await until(() => pongs === 1, "the pong");
    conn.input(te.encode("xy"));
    conn.input(te.encode("z".repeat(1500))); // over 1024 bytes: reliable only
    conn.input(te.encode("w"));
    await until(() => this.reliableIn.length === 5, "five reliable inputs");
    return shown;
  }
}
