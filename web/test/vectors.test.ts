// The spec's normative vectors (terminal-protocol.md §10–§11, signaling.md §10)
// asserted against the web client's protocol modules. The v2 pairing and
// channel-authentication vectors (pairing.md §9.1, terminal-protocol.md §12.1)
// are in v2.test.ts.
import { describe, expect, it } from "vitest";
import { createDeflateRaw, deflateRawSync, constants } from "node:zlib";
import { decodeEvent, encodeRequest, DecodeError } from "../src/proto/msgpack";
import { StreamInflater, InflateError } from "../src/proto/inflate";
import {
  b64decode, b64encode, hex, identityFromSeed, jwtExpiry, pairingKeyFromPrivate, signChallenge, signedHeaders, unhex,
  x25519Shared,
} from "../src/proto/crypto";
import { wsUrl, apiPath } from "../src/proto/qr";

const h = (s: string) => unhex(s.replace(/\s+/g, ""));

describe("terminal protocol vectors", () => {
  it("V1 attach with compression", () => {
    const b = encodeRequest({ type: "attach", paneId: "%3", cols: 120, rows: 40, compression: "deflate" });
    expect(hex(b)).toBe("85a474797065a6617474616368a670616e654964a22533a4636f6c7378a4726f777328ab636f6d7072657373696f6ea76465666c617465");
  });
  it("V2 reattach", () => {
    const b = encodeRequest({ type: "attach", paneId: "%3", cols: 120, rows: 40, reattach: true });
    expect(hex(b)).toBe("85a474797065a6617474616368a670616e654964a22533a4636f6c7378a4726f777328a87265617474616368c3");
  });
  it("V3 input", () => {
    const b = encodeRequest({ type: "input", data: new Uint8Array([0x6c, 0x73, 0x0d]) });
    expect(hex(b)).toBe("82a474797065a5696e707574a464617461c4036c730d");
  });
  it("V4 auth_challenge (still the v2 challenge)", () => {
    const ch = decodeEvent(h(`82a474797065ae617574685f6368616c6c656e6765a56e6f6e6365d92c
      41414543417751464267634943516f4c4441304f4478415245684d554652595847426b61477877644868383d`));
    expect(ch).toEqual({ type: "auth_challenge", nonce: "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=" });
  });
  it("V5 error", () => {
    expect(decodeEvent(h("83a474797065a56572726f72a4636f6465ac6e6f745f6174746163686564a76d657373616765b06e6f2070616e65206174746163686564"))).toEqual({
      type: "error", code: "not_attached", message: "no pane attached",
    });
  });
  it("V6 ping/pong", () => {
    expect(hex(encodeRequest({ type: "ping" }))).toBe("81a474797065a470696e67");
    expect(decodeEvent(h("82a474797065a4706f6e67a76c6174656e637900"))).toEqual({ type: "pong", latency: 0 });
  });
  it("V7 sessions", () => {
    const ev = decodeEvent(h(`83a474797065a873657373696f6e73a873657373696f6e739186a26964a22430a46e616d65
a4776f726ba9637265617465644174ce6553f100a777696e646f77739185a26964a24030
a46e616d65a37a7368a5696e64657800a6616374697665c3a570616e65739186a26964a22530
a5696e64657800a6616374697665c3a473697a6582a4636f6c7350a4726f777318a57469746c65
a4686f7374ae63757272656e74436f6d6d616e64a37a7368ae6c61737441637469766974794174
ce6553f164a86174746163686564c2ac6167656e7456657273696f6ea5302e312e30`));
    expect(ev).toEqual({
      type: "sessions",
      agentVersion: "0.1.0",
      sessions: [{
        id: "$0", name: "work", createdAt: 1700000000,
        windows: [{ id: "@0", name: "zsh", index: 0, active: true, panes: [{
          id: "%0", index: 0, active: true, size: { cols: 80, rows: 24 }, title: "host", currentCommand: "zsh",
        }] }],
        lastActivityAt: 1700000100, attached: false,
      }],
    });
  });
  it("V8 two-frame deflate stream", () => {
    const att = decodeEvent(h("83a474797065a86174746163686564a670616e654964a22533ab636f6d7072657373696f6ea76465666c617465"));
    expect(att).toEqual({ type: "attached", paneId: "%3", compression: "deflate" });
    const f1 = decodeEvent(h("82a474797065a66f7574707574a464617461c40dca48cdc9c9e7e502000000ffff"));
    expect(f1.type).toBe("output");
    const inf = new StreamInflater();
    const td = new TextDecoder();
    expect(td.decode(inf.push((f1 as { data: Uint8Array }).data))).toBe("hello\r\n");
    expect(td.decode(inf.push(h("ca805000000000ffff")))).toBe("hello\r\n");
    // The second frame needs the first one's window: a fresh inflater cannot decode it.
    expect(() => new StreamInflater().push(h("ca805000000000ffff"))).toThrow(InflateError);
  });
  it("V10 invalid_request error", () => {
    expect(decodeEvent(h("83a474797065a56572726f72a4636f6465af696e76616c69645f72657175657374a76d657373616765d9206174746163682e636f6c733a20657870656374656420616e20696e7465676572"))).toEqual({
      type: "error", code: "invalid_request", message: "attach.cols: expected an integer",
    });
  });
});

describe("request encoding (key order, shortest forms, omitted optionals)", () => {
  const enc = (r: Parameters<typeof encodeRequest>[0]) => hex(encodeRequest(r));
  const str = (t: string) => hex(new Uint8Array([0xa0 + t.length])) + hex(new TextEncoder().encode(t));
  it("field-less requests are one-key maps", () => {
    for (const t of ["list_sessions", "detach", "ping", "create_session"] as const)
      expect(enc({ type: t })).toBe("81" + str("type") + str(t));
  });
  it("resize and kill_session", () => {
    expect(enc({ type: "resize", cols: 200, rows: 50 })).toBe("83" + str("type") + str("resize") + str("cols") + "ccc8" + str("rows") + "32");
    expect(enc({ type: "kill_session", session: "$1" })).toBe("82" + str("type") + str("kill_session") + str("session") + str("$1"));
  });
  it("false and empty optionals are omitted", () => {
    expect(enc({ type: "attach", paneId: "%3", cols: 120, rows: 40, reattach: false, compression: "" }))
      .toBe("84a474797065a6617474616368a670616e654964a22533a4636f6c7378a4726f777328");
  });
  it("input data is bin, never str", () => {
    expect(enc({ type: "input", data: new Uint8Array(300) })).toMatch(/^82a474797065a5696e707574a464617461c5012c/);
  });
});

describe("decoder strictness", () => {
  it("accepts wide integers and any key order", () => {
    // {latency: uint64 5, type: "pong"}
    expect(decodeEvent(h("82a76c6174656e6379cf0000000000000005a474797065a4706f6e67"))).toEqual({ type: "pong", latency: 5 });
  });
  it("rejects a float where an integer is required", () => {
    expect(() => decodeEvent(h("82a474797065a4706f6e67a76c6174656e6379cb3ff0000000000000"))).toThrow(/pong.latency: expected an integer/);
  });
  it("rejects str data, missing type, truncation, non-map", () => {
    expect(() => decodeEvent(h("82a474797065a66f7574707574a464617461a161"))).toThrow(DecodeError);
    expect(() => decodeEvent(h("81a46461746100"))).toThrow(DecodeError);
    expect(() => decodeEvent(h("82a474797065a4706f6e67a76c6174656e6379"))).toThrow(DecodeError);
    expect(() => decodeEvent(h("9100"))).toThrow(DecodeError);
    expect(() => decodeEvent(h("dfffffffff"))).toThrow(DecodeError);
  });
  it("unknown types are reported as unknown, unknown keys ignored", () => {
    expect(decodeEvent(h("82a474797065a3666f6fa178c3"))).toEqual({ type: "unknown", name: "foo" });
    expect(decodeEvent(h("82a474797065a86465746163686564a178c3"))).toEqual({ type: "detached" });
  });
  it("bounds: error.code over 255", () => {
    const code = "x".repeat(256);
    const enc = new TextEncoder();
    const body = [0x83, 0xa4, ...enc.encode("type"), 0xa5, ...enc.encode("error"), 0xa4, ...enc.encode("code"),
      0xda, 0x01, 0x00, ...enc.encode(code), 0xa7, ...enc.encode("message"), 0xa0];
    expect(() => decodeEvent(new Uint8Array(body))).toThrow(/error.code/);
  });
});

describe("streaming inflater", () => {
  it("keeps its window over many sync-flushed chunks from zlib", async () => {
    // One deflate stream, level 6, sync-flushed after every chunk like the host does.
    const chunks = Array.from({ length: 60 }, (_, i) => `line ${i % 7} of output ${"abc".repeat(i % 5)}\r\n`);
    const d = createDeflateRaw({ level: 6 });
    const frames: Uint8Array[] = [];
    for (const c of chunks) {
      const parts: Buffer[] = [];
      const onData = (b: Buffer) => parts.push(b);
      d.on("data", onData);
      d.write(c);
      await new Promise<void>((r) => d.flush(constants.Z_SYNC_FLUSH, () => r()));
      d.off("data", onData);
      const f = Buffer.concat(parts);
      expect(hex(f.subarray(f.length - 4))).toBe("0000ffff");
      frames.push(new Uint8Array(f));
    }
    const inf = new StreamInflater();
    const td = new TextDecoder();
    frames.forEach((f, i) => expect(td.decode(inf.push(f))).toBe(chunks[i]));
  });
  it("rejects a frame that inflates past 1 MiB", () => {
    const bomb = deflateRawSync(Buffer.alloc(2 * 1024 * 1024), { finishFlush: constants.Z_SYNC_FLUSH });
    expect(() => new StreamInflater().push(new Uint8Array(bomb))).toThrow(/1048576/);
  });
});

describe("signaling and pairing vectors", () => {
  it("request signature", async () => {
    const n = "000102030405060708090a0b0c0d0e0f";
    expect((await signedHeaders("test-hmac-secret", "/v1/auth/token", 1700000000, n))["muxlink-signature"])
      .toBe("fb8cb8bf1ce477ab8ce79d2e88f250beac9337c633535e2baa130c94b1d7e3aa");
    expect(await signedHeaders("test-hmac-secret", "/v1/ws", 1700000000, n)).toEqual({
      "muxlink-timestamp": "1700000000", "muxlink-nonce": n,
      "muxlink-signature": "87edac9c6aab929c4c8a6cee72937eabf623d4f6d2ebda7f240dae8d3446e38f",
    });
    expect(await signedHeaders("", "/v1/ws", 1700000000, n)).toEqual({});
  });
  it("device id and challenge signature", async () => {
    const id = await identityFromSeed(h("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"));
    expect(hex(id.publicKey)).toBe("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
    expect(b64encode(id.publicKey)).toBe("11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=");
    expect(id.deviceId).toBe("21fe31dfa154a261626bf854046fd227");
    expect(await signChallenge(id, "AAECAwQFBgcICQoLDA0ODw==")).toBe(
      "9y2DxMZTQxShSRi0Th8WAWAzmJGVXpQ1vLR3tRVLQxIK4vxXKtV9cLnXBWsa5u+7JKXfrisZ4iRosXmjQvVMDw==",
    );
  });
  it("jwt expiry read without verifying", () => {
    const jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIyMWZlMzFkZmExNTRhMjYxNjI2YmY4NTQwNDZmZDIyNyIsImF1ZCI6Im11eGxpbmsiLCJkZXZpY2VJZCI6IjIxZmUzMWRmYTE1NGEyNjE2MjZiZjg1NDA0NmZkMjI3IiwiZGV2aWNlVHlwZSI6Imhvc3QiLCJpYXQiOjE3MDAwMDAwMDAsImV4cCI6MTcwMDAwMzYwMH0.wERNXVLxj3RcCMqXRriR07uoAfVWbp6vnadnrMMOI4M";
    expect(jwtExpiry(jwt, 0)).toBe(1700003600);
    expect(jwtExpiry("garbage", 100)).toBe(3700);
  });
  it("X25519 shared secret Z (pairing.md §7)", async () => {
    const host = await pairingKeyFromPrivate(h("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"));
    const mobile = await pairingKeyFromPrivate(h("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"));
    expect(b64encode(host.publicKey)).toBe("hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=");
    expect(b64encode(mobile.publicKey)).toBe("3p7bfXt9wbTTW2HC7OQ1Nz+DQ8hbeGdNrfx+FG+IK08=");
    const z = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742";
    expect(hex(await x25519Shared(mobile, host.publicKey))).toBe(z);
    expect(hex(await x25519Shared(host, mobile.publicKey))).toBe(z);
  });
  it("base64 decoding is strict", () => {
    expect(hex(b64decode("AAECAw=="))).toBe("00010203");
    for (const bad of ["AAECAw=", "AAECAw", "AAEC Aw==", "AAECAx==", "AA-_", "AAECAw==\n"])
      expect(() => b64decode(bad), bad).toThrow();
  });
  it("urls", () => {
    expect(wsUrl("https://a.b:5/")).toBe("wss://a.b:5/v1/ws");
    expect(wsUrl("http://127.0.0.1:9")).toBe("ws://127.0.0.1:9/v1/ws");
    expect(apiPath("/auth/token")).toBe("/v1/auth/token");
  });
});
