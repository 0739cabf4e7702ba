// The QR URL's fragment (pairing.md §9.2): the auto-pair decision, `hashchange`,
// and the fragment leaving the address bar through `history.replaceState`.
import { describe, expect, it } from "vitest";
import { fragmentAction, watchFragment, type FragmentEnv, type PairedHost } from "../src/fragment";
import { CODE_ALONE_MESSAGE, OLD_PAYLOAD_MESSAGE } from "../src/proto/qr";

const HOST_KEY = "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=";
const HOST_ID = "21fe31dfa154a261626bf854046fd227";
const SERVER = "https://signal.example.net";
const PAYLOAD = `ABC234|${HOST_KEY}|${HOST_ID}|${SERVER}|8PHy8/T19vf4+fr7/P3+/w==`;
const paired = (over: Partial<PairedHost> = {}): PairedHost => ({ hostDeviceId: HOST_ID, hostName: "desk", serverUrl: SERVER, ...over });
const OTHER_ID = "0123456789abcdef0123456789abcdef";

describe("fragmentAction: what a QR URL's fragment asks for", () => {
  it("nothing for no fragment", () => {
    for (const h of ["", "#", "#  "]) expect(fragmentAction(h, undefined)).toEqual({ kind: "none" });
  });

  it("pairs at once when not paired, with |+/= raw or percent-encoded (decoded exactly once)", () => {
    const all = encodeURIComponent(PAYLOAD);
    const some = PAYLOAD.replace(/\|/g, "%7C");
    const lower = PAYLOAD.replace(/\|/g, "%7c").replace(/\+/g, "%2b").replace(/\//g, "%2f").replace(/=/g, "%3d");
    for (const f of [PAYLOAD, all, some, lower]) {
      const a = fragmentAction(`#${f}`, undefined);
      expect(a.kind).toBe("pair");
      if (a.kind !== "pair") continue;
      expect(a.payload).toBe(PAYLOAD);
      expect(a.qr.hostDeviceId).toBe(HOST_ID);
      expect(a.qr.serverUrl).toBe(SERVER);
    }
    // Without the leading `#` too (a fragment string rather than location.hash).
    expect(fragmentAction(PAYLOAD, undefined).kind).toBe("pair");
  });

  it("refuses a twice-encoded payload (one decode leaves %7C), bad percent-encoding, old payloads and a bare code", () => {
    const twice = fragmentAction(`#${encodeURIComponent(encodeURIComponent(PAYLOAD))}`, undefined);
    expect(twice.kind).toBe("refuse");
    expect(fragmentAction("#ABC%ZZ", undefined)).toMatchObject({ kind: "refuse", message: expect.stringMatching(/damaged/) });
    const four = PAYLOAD.split("|").slice(0, 4).join("|");
    expect(fragmentAction(`#${four}`, undefined)).toEqual({ kind: "refuse", message: OLD_PAYLOAD_MESSAGE });
    expect(fragmentAction(`#${four}`, paired())).toEqual({ kind: "refuse", message: OLD_PAYLOAD_MESSAGE });
    expect(fragmentAction("#ABC234", undefined)).toEqual({ kind: "refuse", message: CODE_ALONE_MESSAGE });
    expect(fragmentAction(`#${PAYLOAD}|extra`, undefined).kind).toBe("refuse");
    // A fragment is the payload itself, not a pasted line or another URL.
    expect(fragmentAction(`#x%20${encodeURIComponent(PAYLOAD)}`, undefined).kind).toBe("refuse");
    expect(fragmentAction(`#${encodeURIComponent(`https://x/#${PAYLOAD}`)}`, undefined).kind).toBe("refuse");
  });

  it("does not pair again with the host it is paired with (same server, trailing slash or case aside)", () => {
    expect(fragmentAction(`#${PAYLOAD}`, paired()).kind).toBe("already-paired");
    expect(fragmentAction(`#${PAYLOAD}`, paired({ serverUrl: `${SERVER}/` })).kind).toBe("already-paired");
    expect(fragmentAction(`#${PAYLOAD}`, paired({ serverUrl: SERVER.toUpperCase() })).kind).toBe("already-paired");
  });

  it("pairs the same computer on another server without asking", () => {
    expect(fragmentAction(`#${PAYLOAD}`, paired({ serverUrl: "https://other.example.net" })).kind).toBe("pair");
  });

  it("asks before replacing a pairing with another computer", () => {
    const current = paired({ hostDeviceId: OTHER_ID });
    const a = fragmentAction(`#${PAYLOAD}`, current);
    expect(a.kind).toBe("confirm-replace");
    if (a.kind !== "confirm-replace") return;
    expect(a.current).toBe(current);
    expect(a.qr.hostDeviceId).toBe(HOST_ID);
    expect(a.payload).toBe(PAYLOAD);
  });
});

/** A stand-in window: replaceState rewrites the URL like a browser (no `hashchange`). */
function fakeWindow(hash: string, pathname = "/", search = "") {
  const log: string[] = [];
  const listeners: (() => void)[] = [];
  const env: FragmentEnv & { navigate(hash: string): void } = {
    location: { hash, pathname, search },
    history: {
      replaceState(_data, _unused, url) {
        log.push(`replaceState ${String(url)}`);
        const u = new URL(String(url), "https://muxlink.example");
        env.location.hash = u.hash;
        env.location.pathname = u.pathname;
        env.location.search = u.search;
      },
    },
    addEventListener(type, listener) {
      expect(type).toBe("hashchange");
      listeners.push(listener);
    },
    // A fragment navigation in this document (a QR URL opened in the open tab).
    navigate(h: string) {
      env.location.hash = h;
      for (const l of listeners) l();
    },
  };
  return { env, log, listeners };
}

describe("watchFragment: the fragment is taken once, then leaves the address bar", () => {
  it("takes the load-time fragment, then replaceState drops it (path and query kept)", () => {
    const { env, log } = fakeWindow(`#${encodeURIComponent(PAYLOAD)}`, "/", "?lang=en");
    watchFragment(env, (h) => log.push(`take ${h}`));
    expect(log).toEqual([`take #${encodeURIComponent(PAYLOAD)}`, "replaceState /?lang=en"]);
    expect(env.location.hash).toBe("");
  });

  it("a reload after that sees no fragment: nothing is taken, no pairing again", () => {
    const first = fakeWindow(`#${PAYLOAD}`);
    watchFragment(first.env, () => {});
    // The reload opens the URL the address bar now shows.
    const reload = fakeWindow(first.env.location.hash, first.env.location.pathname, first.env.location.search);
    watchFragment(reload.env, (h) => reload.log.push(`take ${h}`));
    expect(reload.log).toEqual([]);
    expect(reload.listeners).toHaveLength(1);
  });

  it("without a fragment nothing is taken and the URL is left alone", () => {
    for (const h of ["", "#"]) {
      const { env, log } = fakeWindow(h);
      watchFragment(env, (x) => log.push(`take ${x}`));
      expect(log).toEqual([]);
    }
  });

  it("a QR URL opened in the already open tab arrives as hashchange and is taken the same way", () => {
    const { env, log } = fakeWindow("");
    const taken: string[] = [];
    watchFragment(env, (h) => {
      taken.push(h);
      log.push("take");
    });
    env.navigate(`#${PAYLOAD}`);
    expect(taken).toEqual([`#${PAYLOAD}`]);
    expect(log).toEqual(["take", "replaceState /"]);
    // A second QR URL later (another computer) is picked up too.
    env.navigate(`#${PAYLOAD.replace(HOST_ID, OTHER_ID)}`);
    expect(taken).toHaveLength(2);
    expect(fragmentAction(taken[1], paired()).kind).toBe("confirm-replace");
    // A hashchange to an empty fragment takes nothing.
    env.navigate("");
    expect(taken).toHaveLength(2);
  });

  it("the fragment leaves the address bar even when taking it throws", () => {
    const { env, log } = fakeWindow(`#${PAYLOAD}`);
    expect(() => watchFragment(env, () => {
      throw new Error("boom");
    })).toThrow("boom");
    expect(log).toEqual(["replaceState /"]);
    expect(env.location.hash).toBe("");
  });
});
