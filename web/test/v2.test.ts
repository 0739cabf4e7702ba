// Pairing v2 (pairing.md §9, vector §9.1) and channel authentication v2
// (terminal-protocol.md §12, vector V11 in §12.1).
import { describe, expect, it } from "vitest";
import { decode, encode } from "@msgpack/msgpack";
import { decodeEvent, encodeRequest } from "../src/proto/msgpack";
import {
  b64decode, b64encode, hex, pairConfirmMessage, pairConfirmation, pairingKeyFromPrivate, pairingSecretV2, unhex,
  type Bytes,
} from "../src/proto/crypto";
import {
  authMac, authTail, ChallengeError, checkAuthOk, HostProofError, PhoneAuth, sdpFingerprint,
} from "../src/proto/channelauth";
import { CODE_ALONE_MESSAGE, OLD_PAYLOAD_MESSAGE, parsePayload, payloadFromFragment, PayloadError } from "../src/proto/qr";

const h = (s: string) => unhex(s.replace(/\s+/g, ""));
const range = (from: number, n = 32): Bytes => Uint8Array.from({ length: n }, (_, i) => from + i);

const HOST_PRIV = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";
const MOBILE_PRIV = "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb";
const HOST_PUB_B64 = "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=";
const MOBILE_PUB_B64 = "3p7bfXt9wbTTW2HC7OQ1Nz+DQ8hbeGdNrfx+FG+IK08=";
const HOST_ID = "21fe31dfa154a261626bf854046fd227";
const MOBILE_ID = "0123456789abcdef0123456789abcdef";
const T = range(0xf0, 16);
const K_HEX = "c568e156200eee0049bddd189ddce76e5d120eb3d6957cb6fc79c08902582ed9";
const PAYLOAD = `ABC234|${HOST_PUB_B64}|${HOST_ID}|https://signal.example.net|8PHy8/T19vf4+fr7/P3+/w==`;

const rawK = (k: CryptoKey) => crypto.subtle.exportKey("raw", k).then((b) => hex(new Uint8Array(b)));
const vectorK = () =>
  crypto.subtle.importKey("raw", h(K_HEX), { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);

describe("pairing v2 vector (pairing.md §9.1)", () => {
  it("T, K on both sides, confirmation message and C", async () => {
    expect(b64encode(T)).toBe("8PHy8/T19vf4+fr7/P3+/w==");
    const host = await pairingKeyFromPrivate(h(HOST_PRIV));
    const mobile = await pairingKeyFromPrivate(h(MOBILE_PRIV));
    expect(b64encode(mobile.publicKey)).toBe(MOBILE_PUB_B64);
    const k = await pairingSecretV2(mobile, host.publicKey, T, true);
    expect(await rawK(k)).toBe(K_HEX);
    expect(b64encode(h(await rawK(k)))).toBe("xWjhViAO7gBJvd0Yndznbl0SDrPWlXy2/HnAiQJYLtk=");
    expect(await rawK(await pairingSecretV2(host, mobile.publicKey, T, true))).toBe(K_HEX);
    expect(pairConfirmMessage(MOBILE_ID, MOBILE_PUB_B64, HOST_ID)).toBe(
      "muxlink-pair-confirm-v2|0123456789abcdef0123456789abcdef|3p7bfXt9wbTTW2HC7OQ1Nz+DQ8hbeGdNrfx+FG+IK08=|21fe31dfa154a261626bf854046fd227",
    );
    const c = await pairConfirmation(k, MOBILE_ID, MOBILE_PUB_B64, HOST_ID);
    expect(c).toBe("QsO8l31s/WKvrPA9L+6RFga8NJQEAgAbIunhzjZVMUo=");
    expect(hex(b64decode(c))).toBe("42c3bc977d6cfd62afacf03d2fee911606bc34940402001b22e9e1ce3655314a");
  });
  it("K is a non-extractable HMAC key usable for sign and verify", async () => {
    const mobile = await pairingKeyFromPrivate(h(MOBILE_PRIV));
    const k = await pairingSecretV2(mobile, b64decode(HOST_PUB_B64), T);
    expect(k.extractable).toBe(false);
    expect(k.algorithm).toMatchObject({ name: "HMAC" });
    expect([...k.usages].sort()).toEqual(["sign", "verify"]);
    await expect(crypto.subtle.exportKey("raw", k)).rejects.toThrow();
    // Same K as the vector: the confirmation matches.
    expect(await pairConfirmation(k, MOBILE_ID, MOBILE_PUB_B64, HOST_ID)).toBe("QsO8l31s/WKvrPA9L+6RFga8NJQEAgAbIunhzjZVMUo=");
  });
  it("refuses a token that is not 16 bytes and a host key giving an all-zero Z", async () => {
    const mobile = await pairingKeyFromPrivate(h(MOBILE_PRIV));
    await expect(pairingSecretV2(mobile, b64decode(HOST_PUB_B64), range(0, 15))).rejects.toThrow(/16 bytes/);
    // The point 0 has small order: X25519 gives all zeros (refused by WebCrypto or by us).
    await expect(pairingSecretV2(mobile, new Uint8Array(32), T)).rejects.toThrow();
  });
});

describe("pairing v2 payload", () => {
  it("parses the vector's payload", () => {
    const p = parsePayload(PAYLOAD);
    expect(p.code).toBe("ABC234");
    expect(p.hostKeyB64).toBe(HOST_PUB_B64);
    expect(hex(p.hostKey)).toBe("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
    expect(p.hostDeviceId).toBe(HOST_ID);
    expect(p.serverUrl).toBe("https://signal.example.net");
    expect(hex(p.token)).toBe(hex(T));
  });
  it("takes the printed line and the whole QR URL", () => {
    expect(parsePayload(`PAIRING_PAYLOAD ${PAYLOAD}\n`).code).toBe("ABC234");
    expect(parsePayload(`payload: ${PAYLOAD}`).code).toBe("ABC234");
    expect(hex(parsePayload(`https://signal.example.net/#${encodeURIComponent(PAYLOAD)}`).token)).toBe(hex(T));
  });
  it("a fragment is percent-decoded exactly once, encoded or not", () => {
    const full = encodeURIComponent(PAYLOAD); // | + / = all encoded
    const partial = PAYLOAD.replace(/\|/g, "%7C"); // only the separators
    const lower = PAYLOAD.replace(/\|/g, "%7c").replace(/\//g, "%2f").replace(/=/g, "%3d").replace(/\+/g, "%2B");
    for (const f of [PAYLOAD, full, partial, lower]) {
      expect(payloadFromFragment(`#${f}`)).toBe(PAYLOAD);
      expect(hex(parsePayload(payloadFromFragment(`#${f}`)).token)).toBe(hex(T));
    }
    // Twice-encoded stays encoded once after one decode (and so is not a payload).
    expect(payloadFromFragment(`#${encodeURIComponent(full)}`)).toBe(full);
    expect(() => parsePayload(payloadFromFragment(`#${encodeURIComponent(full)}`))).toThrow(PayloadError);
    expect(() => payloadFromFragment("#ABC%ZZ")).toThrow(PayloadError);
  });
  it("refuses a payload without T (4 or 3 fields) and a code alone", () => {
    const four = PAYLOAD.split("|").slice(0, 4).join("|");
    expect(() => parsePayload(four)).toThrow(OLD_PAYLOAD_MESSAGE);
    expect(() => parsePayload(four.split("|").slice(0, 3).join("|"))).toThrow(OLD_PAYLOAD_MESSAGE);
    expect(() => parsePayload("ABC234")).toThrow(CODE_ALONE_MESSAGE);
    expect(() => parsePayload("abc234")).toThrow(CODE_ALONE_MESSAGE);
    for (const m of [OLD_PAYLOAD_MESSAGE, CODE_ALONE_MESSAGE]) {
      expect(m).toMatch(/scan the QR code/);
      expect(m).toMatch(/paste the whole payload line/);
      expect(m).not.toMatch(/enter the code/i);
    }
    expect(OLD_PAYLOAD_MESSAGE).toMatch(/older muxlink/);
  });
  it("refuses empty fields and bad values", () => {
    const f = PAYLOAD.split("|");
    const with_ = (i: number, v: string) => f.map((x, j) => (j === i ? v : x)).join("|");
    expect(() => parsePayload(with_(4, ""))).toThrow(/pairing token is empty/);
    expect(() => parsePayload(with_(3, ""))).toThrow(/server url is empty/);
    expect(() => parsePayload(with_(0, "ABC23I"))).toThrow(/pairing code/);
    expect(() => parsePayload(with_(1, "AAAA"))).toThrow(/host key/);
    expect(() => parsePayload(with_(2, "XYZ"))).toThrow(/device id/);
    expect(() => parsePayload(with_(3, "ftp://x"))).toThrow(/http/);
    expect(() => parsePayload(with_(4, "8PHy8/T19vf4+fr7/P3+"))).toThrow(/16 bytes/);
    expect(() => parsePayload(with_(4, b64encode(range(0, 17))))).toThrow(/16 bytes/);
    expect(() => parsePayload(with_(4, "8PHy8/T19vf4+fr7/P3+/x=="))).toThrow(/16 bytes/);
    expect(() => parsePayload(`${PAYLOAD}|extra`)).toThrow(/5 fields separated by '\|'/);
  });
});

describe("channel authentication v2 vector V11 (terminal-protocol.md §12.1)", () => {
  const nH = range(0x00);
  const nM = range(0x20);
  const fpH = range(0x40);
  const fpM = range(0x60);
  const CHALLENGE = `82a474797065ae617574685f6368616c6c656e6765a56e6f6e6365d92c
    41414543417751464267634943516f4c4441304f4478415245684d554652595847426b61477877644868383d`;
  const RESPONSE = `83a474797065ad617574685f726573706f6e7365a56e6f6e6365d92c
    494345694979516c4a69636f4b536f724c4330754c7a41784d6a4d304e5459334f446b364f7a7739506a383d
    a36d6163d92c
    4b6c6c4641363979616b305534425a5273706a716d36496273696b723765714c384e506c48444b4d7138593d`;
  const AUTH_OK = `82a474797065a7617574685f6f6ba36d6163d92c
    61433450697678673046564664376849432f674f6d62623968344574786c5330517a62304a6852454756593d`;

  it("phone MAC and host MAC", async () => {
    const k = await vectorK();
    const tail = authTail(nH, nM, fpH, fpM);
    expect(tail.length).toBe(128);
    const phone = await authMac(k, "mobile", tail);
    expect(hex(phone)).toBe("2a594503af726a4d14e01651b298ea9ba21bb2292bedea8bf0d3e51c328cabc6");
    expect(b64encode(phone)).toBe("KllFA69yak0U4BZRspjqm6Ibsikr7eqL8NPlHDKMq8Y=");
    const host = await authMac(k, "host", tail);
    expect(hex(host)).toBe("682e0f8afc60d0554577b8480bf80e99b6fd87812dc654b44336f42614441956");
    expect(b64encode(host)).toBe("aC4Pivxg0FVFd7hIC/gOmbb9h4EtxlS0Qzb0JhREGVY=");
  });
  it("byte-exact auth_challenge, auth_response, auth_ok", () => {
    expect(decodeEvent(h(CHALLENGE))).toEqual({ type: "auth_challenge", nonce: b64encode(nH) });
    expect(hex(encodeRequest({
      type: "auth_response",
      nonce: "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=",
      mac: "KllFA69yak0U4BZRspjqm6Ibsikr7eqL8NPlHDKMq8Y=",
    }))).toBe(hex(h(RESPONSE)));
    expect(b64encode(nM)).toBe("ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=");
    expect(decodeEvent(h(AUTH_OK))).toEqual({ type: "auth_ok", mac: "aC4Pivxg0FVFd7hIC/gOmbb9h4EtxlS0Qzb0JhREGVY=" });
  });
  it("FP in SDP form", () => {
    const line = (from: number) =>
      `a=fingerprint:sha-256 ${Array.from(range(from), (b) => b.toString(16).toUpperCase().padStart(2, "0")).join(":")}`;
    expect(line(0x40)).toMatch(/^a=fingerprint:sha-256 40:41:42:.*:5F$/);
    expect(hex(sdpFingerprint(`v=0\r\n${line(0x40)}\r\n`))).toBe(hex(fpH));
    expect(hex(sdpFingerprint(`v=0\r\n${line(0x60)}\r\n`))).toBe(hex(fpM));
  });
  it("PhoneAuth answers the vector challenge byte-exactly, then sends nothing until a good auth_ok", async () => {
    const sent: Uint8Array[] = [];
    const after: Uint8Array[] = [];
    const auth = new PhoneAuth({
      key: await vectorK(),
      fingerprints: async () => ({ host: fpH, mobile: fpM }),
      send: (b) => sent.push(b),
      nonce: () => nM.slice(),
      after: (d) => after.push(d),
    });
    auth.receive(h(CHALLENGE));
    await auth.responded;
    expect(sent.map(hex)).toEqual([hex(h(RESPONSE))]);
    auth.receive(h(AUTH_OK));
    const pong = h("82a474797065a4706f6e67a76c6174656e637900");
    auth.receive(pong);
    await auth.done;
    await new Promise((r) => setTimeout(r, 0));
    expect(sent.length).toBe(1);
    expect(after.map(hex)).toEqual([hex(pong)]);
  });
});

describe("own fingerprint from the local description", () => {
  const fp = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89";
  const fpHex = "abcdef0123456789".repeat(4);
  // Shaped like a Chrome answer to a data-channel-only offer.
  const chrome = [
    "v=0", "o=- 4611731400430051336 2 IN IP4 127.0.0.1", "s=-", "t=0 0", "a=group:BUNDLE 0",
    "a=extmap-allow-mixed", "a=msid-semantic: WMS", "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
    "c=IN IP4 0.0.0.0", "a=ice-ufrag:abcd", "a=ice-pwd:abcdefghijklmnopqrstuvwx", "a=ice-options:trickle",
    `a=fingerprint:sha-256 ${fp}`, "a=setup:active", "a=mid:0", "a=sctp-port:5000", "a=max-message-size:262144", "",
  ].join("\r\n");
  it("reads the sha-256 line of a browser answer", () => {
    expect(hex(sdpFingerprint(chrome))).toBe(fpHex);
    expect(hex(sdpFingerprint(chrome.replace(/\r\n/g, "\n")))).toBe(fpHex);
  });
  it("hash name and hex are case-insensitive; other hashes are skipped", () => {
    expect(hex(sdpFingerprint(`a=fingerprint:SHA-256 ${fp.toLowerCase()}`))).toBe(fpHex);
    expect(hex(sdpFingerprint(`a=fingerprint:sha-1 00:11\r\na=fingerprint:sha-256 ${fp}`))).toBe(fpHex);
  });
  it("session-level value, and the same value repeated, are accepted", () => {
    const session = chrome.replace(`a=fingerprint:sha-256 ${fp}\r\n`, "").replace("t=0 0", `t=0 0\r\na=fingerprint:sha-256 ${fp}`);
    expect(hex(sdpFingerprint(session))).toBe(fpHex);
    expect(hex(sdpFingerprint(`${chrome}a=fingerprint:sha-256 ${fp.toLowerCase()}\r\n`))).toBe(fpHex);
  });
  it("refuses a missing, malformed or ambiguous fingerprint", () => {
    expect(() => sdpFingerprint("v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n")).toThrow(/no a=fingerprint/);
    expect(() => sdpFingerprint(`a=fingerprint:sha-256 ${fp.slice(3)}`)).toThrow(/malformed/);
    expect(() => sdpFingerprint(`a=fingerprint:sha-256 ${fp.replace(/:/g, "")}`)).toThrow(/malformed/);
    expect(() => sdpFingerprint(`a=fingerprint:sha-256 ${fp.replace("AB", "GG")}`)).toThrow(/malformed/);
    const other = fp.replace(/^AB/, "AC");
    expect(() => sdpFingerprint(`${chrome}a=fingerprint:sha-256 ${other}\r\n`)).toThrow(/two different/);
  });
});

describe("auth_ok checks", () => {
  const tail = authTail(range(0x00), range(0x20), range(0x40), range(0x60));
  const GOOD = "aC4Pivxg0FVFd7hIC/gOmbb9h4EtxlS0Qzb0JhREGVY=";

  it("accepts the host MAC", async () => {
    await expect(checkAuthOk(await vectorK(), tail, { type: "auth_ok", mac: GOOD })).resolves.toBeUndefined();
  });
  it("rejects missing, malformed and wrong MACs", async () => {
    const k = await vectorK();
    const bad: (string | undefined)[] = [
      undefined, // the v1 auth_ok without fields
      "",
      "A".repeat(132), // over 128 chars
      "not base64!",
      GOOD.slice(0, -4), // not 32 bytes
      b64encode(range(0, 33)),
      "aC4Pivxg0FVFd7hIC/gOmbb9h4EtxlS0Qzb0JhREGVZ=", // non-canonical last char
      "KllFA69yak0U4BZRspjqm6Ibsikr7eqL8NPlHDKMq8Y=", // the phone's own MAC reflected back
      b64encode(new Uint8Array(32)),
    ];
    for (const mac of bad)
      await expect(checkAuthOk(k, tail, mac === undefined ? { type: "auth_ok" } : { type: "auth_ok", mac }), String(mac))
        .rejects.toThrow(HostProofError);
    // The same MAC over another tail (another FP_H: a man in the middle) is wrong too.
    const mitm = authTail(range(0x00), range(0x20), range(0x41), range(0x60));
    await expect(checkAuthOk(k, mitm, { type: "auth_ok", mac: GOOD })).rejects.toThrow(/does not match/);
    await expect(checkAuthOk(k, tail, { type: "sessions", sessions: [] })).rejects.toThrow(/expected auth_ok/);
  });
  it("the decoder takes auth_ok with and without mac, and refuses a non-string mac", () => {
    expect(decodeEvent(h("81a474797065a7617574685f6f6b"))).toEqual({ type: "auth_ok" });
    expect(() => decodeEvent(encode({ type: "auth_ok", mac: new Uint8Array(32) }))).toThrow(/auth_ok.mac/);
    expect(() => decodeEvent(encode({ type: "auth_ok", mac: "A".repeat(129) }))).toThrow(/auth_ok.mac/);
  });
});

describe("PhoneAuth failures", () => {
  const challenge = () => encode({ type: "auth_challenge", nonce: b64encode(range(0)) });
  const setup = async (opts: { timeoutMs?: number; noCert?: boolean } = {}) => {
    const sent: Uint8Array[] = [];
    const auth = new PhoneAuth({
      key: await vectorK(),
      fingerprints: async () => {
        if (opts.noCert) throw new Error("the computer presented no DTLS certificate");
        return { host: range(0x40), mobile: range(0x60) };
      },
      send: (b) => sent.push(b),
      timeoutMs: opts.timeoutMs,
    });
    return { auth, sent };
  };
  const answered = async (opts: { timeoutMs?: number } = {}) => {
    const s = await setup(opts);
    s.auth.receive(challenge());
    await s.auth.responded;
    expect(s.sent.length).toBe(1);
    return s;
  };

  it("a fresh 32-byte N_M each time", async () => {
    const nonce = (m: Uint8Array) => (decode(m) as { nonce: string }).nonce;
    const a = nonce((await answered()).sent[0]);
    const b = nonce((await answered()).sent[0]);
    expect(b64decode(a).length).toBe(32);
    expect(a).not.toBe(b);
  });
  it("no auth_ok in time", async () => {
    const { auth, sent } = await answered({ timeoutMs: 30 });
    await expect(auth.done).rejects.toThrow(/no auth_ok within/);
    expect(sent.length).toBe(1);
  });
  it("a wrong auth_ok", async () => {
    const { auth, sent } = await answered();
    auth.receive(encode({ type: "auth_ok", mac: b64encode(new Uint8Array(32)) }));
    await expect(auth.done).rejects.toThrow(HostProofError);
    expect(sent.length).toBe(1);
  });
  it("an auth_ok with no mac (v1 host)", async () => {
    const { auth } = await answered();
    auth.receive(h("81a474797065a7617574685f6f6b"));
    await expect(auth.done).rejects.toThrow(/auth_ok.mac is missing/);
  });
  it("anything else before auth_ok, even a valid event or garbage", async () => {
    const a = await answered();
    a.auth.receive(encode({ type: "sessions", sessions: [] }));
    await expect(a.auth.done).rejects.toThrow(/expected auth_ok, got sessions/);
    const b = await answered();
    b.auth.receive(new Uint8Array([0xc1]));
    await expect(b.auth.done).rejects.toThrow(HostProofError);
    const c = await answered();
    c.auth.receive(encode({ type: "auth_challenge", nonce: b64encode(range(0)) }));
    await expect(c.auth.done).rejects.toThrow(HostProofError);
  });
  it("the channel closes after auth_response: the host did not prove the key", async () => {
    const { auth } = await answered();
    auth.closed();
    await expect(auth.done).rejects.toThrow(HostProofError);
  });
  it("no remote certificate: refused as a failed proof, nothing sent", async () => {
    const { auth, sent } = await setup({ noCert: true });
    auth.receive(challenge());
    await expect(auth.done).rejects.toThrow(HostProofError);
    await expect(auth.done).rejects.toThrow(/no DTLS certificate/);
    expect(sent.length).toBe(0);
  });
  it("before answering: bad challenge, other first message, close", async () => {
    for (const first of [
      encode({ type: "auth_challenge", nonce: b64encode(range(0, 31)) }),
      encode({ type: "auth_challenge", nonce: "A".repeat(129) }),
      encode({ type: "pong", latency: 0 }),
      new Uint8Array([0x90]),
    ]) {
      const { auth, sent } = await setup();
      auth.receive(first);
      await expect(auth.done).rejects.toThrow(ChallengeError);
      expect(sent.length).toBe(0);
    }
    const { auth } = await setup();
    auth.closed();
    await expect(auth.done).rejects.toThrow(ChallengeError);
  });
});
