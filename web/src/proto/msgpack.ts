// Terminal-protocol messages (spec terminal-protocol.md §1–§4, §9, §11, §12,
// and the stream v2 fields of docs/stream-v2.md §1): requests are encoded with
// the spec's key order and the shortest forms; events are decoded strictly
// (integers vs floats, bounds, required fields).
import { encode } from "@msgpack/msgpack";
import { MAX_STREAM_OFFSET } from "./inorder";

/** Largest DataChannel message either side accepts (§1). */
export const MAX_MESSAGE = 1_048_576;
/** Largest `input.data` (§9). */
export const MAX_INPUT = 16_384;
/** Largest `auth_challenge.nonce` / `auth_ok.mac` string the phone accepts (§12). */
export const MAX_NONCE_CHARS = 128;

export interface Pane {
  id: string;
  index: number;
  active: boolean;
  size: { cols: number; rows: number };
  title: string;
  currentCommand: string;
}
export interface Window {
  id: string;
  name: string;
  index: number;
  active: boolean;
  panes: Pane[];
}
export interface Session {
  id: string;
  name: string;
  createdAt: number;
  windows: Window[];
  lastActivityAt: number;
  attached: boolean;
}

export type Request =
  | { type: "list_sessions" }
  | {
    type: "attach"; paneId: string; cols: number; rows: number; reattach?: boolean; compression?: string;
    /** Stream v2: every `output` of this attachment carries its offset. */
    offsets?: boolean;
    /** Stream v2: continue the pane's stream at this offset (§5); only with `offsets`. */
    resumeFrom?: number;
  }
  | { type: "detach" }
  /** `offset`: stream v2, the position of `data[0]` in this peer's input stream (§4). */
  | { type: "input"; data: Uint8Array; offset?: number }
  | { type: "resize"; cols: number; rows: number }
  | { type: "kill_session"; session: string }
  | { type: "ping" }
  | { type: "create_session" }
  | { type: "auth_response"; nonce: string; mac: string };

export type Event =
  | { type: "auth_challenge"; nonce: string }
  /** `mac` is checked by channelauth.ts; absent here means absent on the wire. */
  | { type: "auth_ok"; mac?: string }
  | { type: "sessions"; sessions: Session[]; agentVersion?: string; updateAvailable?: string }
  /**
   * Stream v2 fields: `offset` of the first plaintext byte (of a snapshot:
   * where the stream continues), `snapshot` when it is a screen snapshot,
   * `paneId` only on fast-channel copies. Absent keys are left out.
   */
  | { type: "output"; data: Uint8Array; offset?: number; snapshot?: boolean; paneId?: string }
  /** Stream v2: `offset` where the stream continues iff `offsets` was asked; `resumed` when `resumeFrom` was honoured. */
  | { type: "attached"; paneId: string; compression?: string; offset?: number; resumed?: boolean }
  | { type: "detached" }
  | { type: "session_ended"; session: string }
  | { type: "pane_closed"; paneId: string }
  | { type: "error"; code: string; message: string }
  | { type: "pong"; latency: number }
  | { type: "session_created"; session: Session }
  | { type: "unknown"; name: string };

/** Why a message could not be decoded. */
export class DecodeError extends Error {}

/** A stream offset for the wire: an integer in 0..=2^53 − 1, else a RangeError. */
function offset(name: string, n: number): number {
  if (!Number.isInteger(n) || n < 0 || n > MAX_STREAM_OFFSET) throw new RangeError(`${name}: not a stream offset: ${n}`);
  return n;
}

/** Encodes one request; optional fields are omitted when absent/false/empty. */
export function encodeRequest(req: Request): Uint8Array {
  // Objects are built key by key in the table order of §2 (encode keeps insertion order).
  const m: Record<string, unknown> = { type: req.type };
  switch (req.type) {
    case "attach":
      m.paneId = req.paneId;
      m.cols = req.cols;
      m.rows = req.rows;
      if (req.reattach) m.reattach = true;
      if (req.compression) m.compression = req.compression;
      if (req.offsets) m.offsets = true;
      if (req.resumeFrom !== undefined) m.resumeFrom = offset("attach.resumeFrom", req.resumeFrom);
      break;
    case "input":
      m.data = req.data;
      if (req.offset !== undefined) m.offset = offset("input.offset", req.offset);
      break;
    case "resize":
      m.cols = req.cols;
      m.rows = req.rows;
      break;
    case "kill_session":
      m.session = req.session;
      break;
    case "auth_response":
      m.nonce = req.nonce;
      m.mac = req.mac;
      break;
    default:
      break;
  }
  return encode(m, { ignoreUndefined: true });
}

// ---- strict reader -------------------------------------------------------

/** A decoded msgpack float, kept apart so integer fields can refuse it. */
class Float {
  constructor(readonly value: number) {}
}
type Value = null | boolean | number | bigint | Float | string | Uint8Array | Value[] | Map<string, Value>;

const MAX_DEPTH = 32;

class Reader {
  private pos = 0;
  private readonly view: DataView;
  constructor(private readonly buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  done(): boolean {
    return this.pos === this.buf.length;
  }
  private need(n: number): number {
    if (this.pos + n > this.buf.length) throw new DecodeError("truncated message");
    const p = this.pos;
    this.pos += n;
    return p;
  }
  private u8(): number {
    return this.buf[this.need(1)];
  }
  private len(bytes: 1 | 2 | 4): number {
    const p = this.need(bytes);
    return bytes === 1 ? this.view.getUint8(p) : bytes === 2 ? this.view.getUint16(p) : this.view.getUint32(p);
  }
  private bytes(n: number): Uint8Array {
    const p = this.need(n);
    return this.buf.slice(p, p + n);
  }
  private str(n: number): string {
    const p = this.need(n);
    try {
      return new TextDecoder("utf-8", { fatal: true }).decode(this.buf.subarray(p, p + n));
    } catch {
      throw new DecodeError("string is not UTF-8");
    }
  }
  private array(n: number, depth: number): Value[] {
    // Each element takes at least one byte: refuse counts the message cannot hold.
    if (n > this.buf.length - this.pos) throw new DecodeError("truncated message");
    const out: Value[] = [];
    for (let i = 0; i < n; i++) out.push(this.value(depth + 1));
    return out;
  }
  private map(n: number, depth: number): Map<string, Value> {
    if (n * 2 > this.buf.length - this.pos) throw new DecodeError("truncated message");
    const out = new Map<string, Value>();
    for (let i = 0; i < n; i++) {
      const k = this.value(depth + 1);
      const v = this.value(depth + 1);
      if (typeof k === "string") out.set(k, v);
    }
    return out;
  }
  value(depth = 0): Value {
    if (depth > MAX_DEPTH) throw new DecodeError("nesting too deep");
    const b = this.u8();
    if (b <= 0x7f) return b;
    if (b >= 0xe0) return b - 0x100;
    if ((b & 0xf0) === 0x80) return this.map(b & 0x0f, depth);
    if ((b & 0xf0) === 0x90) return this.array(b & 0x0f, depth);
    if ((b & 0xe0) === 0xa0) return this.str(b & 0x1f);
    const v = this.view;
    switch (b) {
      case 0xc0: return null;
      case 0xc2: return false;
      case 0xc3: return true;
      case 0xc4: return this.bytes(this.len(1));
      case 0xc5: return this.bytes(this.len(2));
      case 0xc6: return this.bytes(this.len(4));
      case 0xca: return new Float(v.getFloat32(this.need(4)));
      case 0xcb: return new Float(v.getFloat64(this.need(8)));
      case 0xcc: return v.getUint8(this.need(1));
      case 0xcd: return v.getUint16(this.need(2));
      case 0xce: return v.getUint32(this.need(4));
      case 0xcf: return v.getBigUint64(this.need(8));
      case 0xd0: return v.getInt8(this.need(1));
      case 0xd1: return v.getInt16(this.need(2));
      case 0xd2: return v.getInt32(this.need(4));
      case 0xd3: return v.getBigInt64(this.need(8));
      case 0xd9: return this.str(this.len(1));
      case 0xda: return this.str(this.len(2));
      case 0xdb: return this.str(this.len(4));
      case 0xdc: return this.array(this.len(2), depth);
      case 0xdd: return this.array(this.len(4), depth);
      case 0xde: return this.map(this.len(2), depth);
      case 0xdf: return this.map(this.len(4), depth);
      default:
        throw new DecodeError(`unsupported msgpack byte 0x${b.toString(16)}`);
    }
  }
}

const utf8Len = (s: string) => new TextEncoder().encode(s).length;

class Fields {
  constructor(private readonly m: Map<string, Value>, private readonly where: string) {}
  private fail(key: string, rule: string): never {
    throw new DecodeError(`${this.where}.${key}: ${rule}`);
  }
  has(key: string): boolean {
    const v = this.m.get(key);
    return v !== undefined && v !== null;
  }
  str(key: string, max: number, optional = false): string {
    const v = this.m.get(key);
    if ((v === undefined || v === null) && optional) return "";
    if (typeof v !== "string") this.fail(key, "expected a string");
    if (utf8Len(v) > max) this.fail(key, `longer than ${max} bytes`);
    return v;
  }
  int(key: string, min: number, max: number): number {
    const v = this.m.get(key);
    let n: number;
    if (typeof v === "number") n = v;
    else if (typeof v === "bigint") {
      if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) this.fail(key, "out of range");
      n = Number(v);
    } else this.fail(key, "expected an integer");
    if (n < min || n > max) this.fail(key, `out of range ${min}..=${max}`);
    return n;
  }
  bool(key: string, optional = false): boolean {
    const v = this.m.get(key);
    if ((v === undefined || v === null) && optional) return false;
    if (typeof v !== "boolean") this.fail(key, "expected a boolean");
    return v;
  }
  bin(key: string, max: number): Uint8Array {
    const v = this.m.get(key);
    if (!(v instanceof Uint8Array)) this.fail(key, "expected bin");
    if (v.length > max) this.fail(key, `longer than ${max} bytes`);
    return v;
  }
  list(key: string): Fields[] {
    const v = this.m.get(key);
    if (!Array.isArray(v)) this.fail(key, "expected an array");
    return v.map((e, i) => {
      if (!(e instanceof Map)) this.fail(`${key}[${i}]`, "expected a map");
      return new Fields(e, `${this.where}.${key}[${i}]`);
    });
  }
  sub(key: string): Fields {
    const v = this.m.get(key);
    if (!(v instanceof Map)) this.fail(key, "expected a map");
    return new Fields(v, `${this.where}.${key}`);
  }
}

const INT = Number.MAX_SAFE_INTEGER;

function pane(f: Fields): Pane {
  const size = f.sub("size");
  return {
    id: f.str("id", 255),
    index: f.int("index", 0, INT),
    active: f.bool("active"),
    size: { cols: size.int("cols", 0, INT), rows: size.int("rows", 0, INT) },
    title: f.str("title", MAX_MESSAGE),
    currentCommand: f.str("currentCommand", MAX_MESSAGE),
  };
}
function window(f: Fields): Window {
  return {
    id: f.str("id", 255),
    name: f.str("name", MAX_MESSAGE),
    index: f.int("index", 0, INT),
    active: f.bool("active"),
    panes: f.list("panes").map(pane),
  };
}
function session(f: Fields): Session {
  return {
    id: f.str("id", 255),
    name: f.str("name", MAX_MESSAGE),
    createdAt: f.int("createdAt", -INT, INT),
    windows: f.list("windows").map(window),
    lastActivityAt: f.int("lastActivityAt", -INT, INT),
    attached: f.bool("attached"),
  };
}

/** Decodes one host event; throws DecodeError on anything the spec rejects. */
export function decodeEvent(buf: Uint8Array): Event {
  if (buf.length > MAX_MESSAGE) throw new DecodeError("message larger than 1048576 bytes");
  const r = new Reader(buf);
  const top = r.value();
  if (!r.done()) throw new DecodeError("trailing bytes after the message");
  if (!(top instanceof Map)) throw new DecodeError("message is not a map");
  const t = top.get("type");
  if (typeof t !== "string" || t === "") throw new DecodeError("type: expected a non-empty string");
  const f = new Fields(top, t);
  switch (t) {
    case "auth_challenge":
      return { type: t, nonce: f.str("nonce", MAX_NONCE_CHARS) };
    case "auth_ok":
      return f.has("mac") ? { type: t, mac: f.str("mac", MAX_NONCE_CHARS) } : { type: t };
    case "detached":
      return { type: t };
    case "sessions": {
      const ev: Event = { type: t, sessions: f.list("sessions").map(session) };
      if (f.has("agentVersion")) ev.agentVersion = f.str("agentVersion", 255);
      if (f.has("updateAvailable")) ev.updateAvailable = f.str("updateAvailable", 255);
      return ev;
    }
    case "output": {
      const ev: Event = { type: t, data: f.bin("data", MAX_MESSAGE) };
      if (f.has("offset")) ev.offset = f.int("offset", 0, MAX_STREAM_OFFSET);
      if (f.bool("snapshot", true)) ev.snapshot = true;
      const pane = f.str("paneId", 255, true);
      if (pane) ev.paneId = pane;
      return ev;
    }
    case "attached": {
      const ev: Event = { type: t, paneId: f.str("paneId", 255) };
      if (f.has("compression")) ev.compression = f.str("compression", 255);
      if (f.has("offset")) ev.offset = f.int("offset", 0, MAX_STREAM_OFFSET);
      if (f.bool("resumed", true)) ev.resumed = true;
      return ev;
    }
    case "session_ended":
      return { type: t, session: f.str("session", 255) };
    case "pane_closed":
      return { type: t, paneId: f.str("paneId", 255) };
    case "error":
      return { type: t, code: f.str("code", 255), message: f.str("message", 4096) };
    case "pong":
      return { type: t, latency: f.int("latency", 0, INT) };
    case "session_created":
      return { type: t, session: session(f.sub("session")) };
    default:
      return { type: "unknown", name: t };
  }
}
