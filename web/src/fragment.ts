// The QR URL `<web client URL>#<payload>` (pairing.md §9.2): what to do with a
// payload found in the fragment, and taking it out of the address bar. Kept
// free of the DOM so Vitest can drive it with a stand-in location and history.
import { parsePayload, payloadFromFragment, PayloadError, type QrPayload } from "./proto/qr";

/** What the page knows about the host it is paired with (if any). */
export interface PairedHost {
  hostDeviceId: string;
  hostName: string;
  serverUrl: string;
}

export type FragmentAction =
  /** No fragment: nothing to do. */
  | { kind: "none" }
  /** A damaged, old or otherwise unusable payload: say why, pair nothing. */
  | { kind: "refuse"; message: string }
  /** Not paired with this host: pair at once. */
  | { kind: "pair"; payload: string; qr: QrPayload }
  /** Already paired with this very host on this server: nothing to pair. */
  | { kind: "already-paired"; payload: string; qr: QrPayload }
  /** Paired with another host: ask before replacing that pairing. */
  | { kind: "confirm-replace"; payload: string; qr: QrPayload; current: PairedHost };

/**
 * Decides what a fragment (`location.hash`, with or without its `#`) asks for,
 * given the current pairing. The fragment is percent-decoded exactly once.
 */
export function fragmentAction(hash: string, paired: PairedHost | undefined): FragmentAction {
  const fragment = hash.startsWith("#") ? hash.slice(1) : hash;
  if (fragment.trim() === "") return { kind: "none" };
  let payload: string;
  let qr: QrPayload;
  try {
    payload = payloadFromFragment(fragment);
    // Only the payload itself: a fragment is not a pasted line or a second URL.
    if (/[\s#]/.test(payload)) throw new PayloadError("The pairing link is damaged: scan the QR code again.");
    qr = parsePayload(payload);
  } catch (e) {
    return { kind: "refuse", message: e instanceof PayloadError ? e.message : `The pairing link cannot be used: ${(e as Error).message}` };
  }
  if (!paired) return { kind: "pair", payload, qr };
  if (paired.hostDeviceId === qr.hostDeviceId) {
    return sameServer(paired.serverUrl, qr.serverUrl)
      ? { kind: "already-paired", payload, qr }
      : { kind: "pair", payload, qr }; // the same computer, moved to another server
  }
  return { kind: "confirm-replace", payload, qr, current: paired };
}

function sameServer(a: string, b: string): boolean {
  const norm = (u: string) => u.replace(/\/+$/, "").toLowerCase();
  return norm(a) === norm(b);
}

/** The parts of `window` the fragment watcher uses. */
export interface FragmentEnv {
  location: { hash: string; pathname: string; search: string };
  history: { replaceState(data: unknown, unused: string, url?: string | URL | null): void };
  addEventListener(type: "hashchange", listener: () => void): void;
}

/**
 * Hands each non-empty fragment to `take` — the one the page loaded with, and
 * any later one (a QR URL opened in this tab fires `hashchange`) — and then
 * takes it out of the address bar with `history.replaceState`, so a reload
 * does not pair again and the pairing token does not stay in the URL.
 */
export function watchFragment(env: FragmentEnv, take: (hash: string) => void): void {
  const check = () => {
    const hash = env.location.hash;
    if (hash === "" || hash === "#") return;
    try {
      take(hash);
    } finally {
      // Same document, no `hashchange`: the address bar keeps path and query only.
      env.history.replaceState(null, "", env.location.pathname + env.location.search);
    }
  };
  env.addEventListener("hashchange", check);
  check();
}
