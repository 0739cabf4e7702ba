// The muxlink web client UI: pairing, session list, terminal with extra keys,
// connection state and latency, reconnect. All protocol work lives in proto/ and net/.
import "@xterm/xterm/css/xterm.css";
import "./style.css";
import { Terminal } from "@xterm/xterm";
import { FitAddon } from "@xterm/addon-fit";
import type { Identity } from "./proto/crypto";
import type { Session } from "./proto/msgpack";
import { nameProblem } from "./proto/name";
import { HOW_TO_PAIR, parsePayload, PayloadError, type QrPayload } from "./proto/qr";
import { fragmentAction, watchFragment, type FragmentAction, type PairedHost } from "./fragment";
import { ApiError, PairingError, fetchToken, iceServers, pair } from "./net/api";
import { ConnectError, HostConnection, type ConnEvent } from "./net/connection";
import type { ResumePoint } from "./proto/stream";
import { Signaling, SignalingError } from "./net/signaling";
import { forgetPairing, get, loadIdentity, loadPairing, put, savePairing, type PairingRecord } from "./net/store";

const PING_MS = 5_000;
const BACKOFF_MAX_MS = 30_000;

// ---- tiny DOM helpers -------------------------------------------------------

type Child = Node | string;
function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Partial<HTMLElementTagNameMap[K]> & Record<string, unknown> = {},
  ...kids: Child[]
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k.startsWith("data-") || k.startsWith("aria-")) e.setAttribute(k, String(v));
    else (e as unknown as Record<string, unknown>)[k] = v;
  }
  e.append(...kids);
  return e;
}
const $ = (id: string) => document.getElementById(id) as HTMLElement;
const view = $("view");

function setState(state: "idle" | "connecting" | "connected" | "error", text: string): void {
  const s = $("state");
  s.dataset.state = state;
  s.textContent = text;
  app.state = state;
  // The latency readout means something only while connected.
  if (state !== "connected") showLatency(undefined);
}
function showLatency(ms: number | undefined): void {
  const l = $("latency");
  l.textContent = ms === undefined ? "" : `${Math.round(ms)} ms`;
  l.hidden = ms === undefined;
}
function notice(text: string, kind: "error" | "info" = "error"): void {
  const n = $("notice");
  n.textContent = text;
  n.className = kind;
  n.hidden = text === "";
}
function show(...nodes: Node[]): void {
  view.replaceChildren(...nodes);
}

// ---- state ------------------------------------------------------------------

interface App {
  state: string;
  identity?: Identity;
  record?: PairingRecord;
  signaling?: Signaling;
  conn?: HostConnection;
  sessions: Session[];
  attachedPane?: string;
  /** Where the last connection's attachment stood: the next connection re-attaches there (`resumeFrom`). */
  resume?: ResumePoint;
  /** A re-attach is in flight: its `attached` says whether the screen continues (resumed) or is redrawn. */
  reattaching: boolean;
  term?: Terminal;
  fit?: FitAddon;
  backoff: number;
  ice: RTCIceServer[];
  retry?: ReturnType<typeof setTimeout>;
  /** Auto-reconnect stops on errors a retry cannot fix (pairing key not proven, not paired). */
  stopped: boolean;
}
// Deliberately not reachable from `window`: the pairing record, the identity
// and the connection stay inside this module. Tests read the DOM (data-* below).
const app: App = { state: "idle", sessions: [], backoff: 1000, ice: [], stopped: false, reattaching: false };

/** Whether the signaling socket is open, as `#state[data-signaling]` (read by the e2e test). */
function markSignaling(open: boolean): void {
  $("state").dataset.signaling = open ? "open" : "closed";
}

/** Whether the fast channel (stream v2) is open, as `#state[data-fast]` (read by the e2e test). */
function markFast(open: boolean): void {
  $("state").dataset.fast = open ? "open" : "closed";
}

// ---- pairing ----------------------------------------------------------------

/** The payload of the last QR URL opened, kept in memory (never in the URL) to prefill the pairing page. */
let scanned = "";
/** The pairing in flight: a second QR URL or tap waits for it instead of racing it. */
let pairing: Promise<void> | undefined;

/** Why the pairing page shows the signing-secret field. */
type SecretNeed = "missing" | "invalid" | undefined;

function pairingPage(prefill = scanned, need: SecretNeed = undefined): void {
  const payload = el("textarea", { rows: 4, placeholder: "ABC234|hostKey…|hostId…|https://server|token…", value: prefill, id: "payload" });
  const name = el("input", { id: "name", value: "phone browser", maxLength: 64 });
  void get<string>("name").then((n) => n && (name.value = n));
  const hmac = el("input", { id: "hmac", type: "password", autocomplete: "off", placeholder: need ? "the server's signing secret" : "empty unless the server signs requests" });
  void get<string>("hmacSecret").then((s) => (hmac.value = need === "invalid" ? "" : s ?? ""));
  const go = el("button", { className: "primary", id: "pair", textContent: "Pair" });
  const submit = () => {
    void startPairing(payload.value, { name: name.value, hmacSecret: hmac.value });
  };
  go.onclick = submit;
  hmac.onkeydown = (e) => {
    if (e.key === "Enter") submit();
  };
  const secretLabel = el("label", { id: "secret-label" }, "Server signing secret", hmac);
  const cancel = el("button", { textContent: `Back to ${hostLabel(app.record)}` });
  cancel.onclick = () => {
    notice("");
    resumeCurrent();
  };
  show(el("section", { className: "page", id: "pairing", ...(need ? { "data-need-secret": need } : {}) },
    el("h2", {}, "Pair with your computer"),
    ...(need
      ? [el("p", { className: "hint" }, "Type the signing secret, then press Enter or tap Pair. The phone remembers it."), secretLabel]
      : [el("p", { className: "hint" }, "Run `muxlink pair` on the computer, then scan its QR code with the phone's camera, or paste the whole payload line it prints here (the code alone cannot pair).")]),
    payload,
    el("label", {}, "This phone's name", name),
    ...(need ? [] : [el("details", {}, el("summary", {}, "Server signing secret"), secretLabel)]),
    el("div", { className: "row" }, go, ...(app.record ? [cancel] : [])),
  ));
  if (need) hmac.focus();
}

/** The paired computer's name for the user. */
function hostLabel(r: { hostName?: string; hostDeviceId: string } | undefined): string {
  if (!r) return "the computer";
  return r.hostName || `the computer ${r.hostDeviceId.slice(0, 8)}…`;
}

/** Back from the pairing page or the replace question to the current pairing. */
function resumeCurrent(): void {
  if (!app.record) {
    pairingPage();
    return;
  }
  app.stopped = false;
  app.backoff = 1000;
  if (app.conn?.isOpen) {
    if (app.attachedPane && termWrap) show(termWrap);
    else sessionsPage();
    app.conn.send({ type: "list_sessions" });
  } else {
    waitingPage();
    void connect();
  }
}

/**
 * Pairs with the payload (typed, pasted or from a QR URL). The name and the
 * signing secret come from the page when given, else from what the phone stored.
 */
function startPairing(text: string, fields?: { name: string; hmacSecret: string }): Promise<void> {
  if (pairing) {
    notice("A pairing is already under way: wait for it to finish.", "info");
    return pairing;
  }
  pairing = pairOnce(text, fields).finally(() => (pairing = undefined));
  return pairing;
}

async function pairOnce(text: string, fields?: { name: string; hmacSecret: string }): Promise<void> {
  const go = document.getElementById("pair") as HTMLButtonElement | null;
  if (go) go.disabled = true;
  notice("");
  try {
    const qr = parsePayload(text);
    scanned = text.trim();
    // The current connection (if any) stops while pairing; a failed attempt can go back to it.
    if (app.conn || app.signaling || connecting) {
      dropConnection();
      // An attempt in flight ends on its own (it sees `stopped`); then close what it opened.
      await connecting?.catch(() => undefined);
      dropConnection();
    }
    const phoneName = (fields?.name ?? (await get<string>("name")) ?? "phone browser").trim();
    const problem = phoneName ? nameProblem(phoneName) : null;
    if (problem) throw new PairingError(problem);
    const hmacSecret = fields?.hmacSecret ?? (await get<string>("hmacSecret")) ?? "";
    if (fields) {
      await put("hmacSecret", hmacSecret);
      await put("name", phoneName);
    }
    setState("connecting", "pairing…");
    show(el("section", { className: "page", id: "pairing-now" },
      el("h2", {}, "Pairing…"),
      el("p", { className: "hint" }, `With the computer ${qr.hostDeviceId.slice(0, 8)}… on ${qr.serverUrl}.`)));
    const record = await pair(qr, app.identity!, phoneName, hmacSecret);
    // Only now is the old pairing (if any) let go: a failed attempt keeps it.
    dropConnection();
    await savePairing(record);
    app.record = record;
    app.stopped = false;
    app.backoff = 1000;
    scanned = "";
    notice(`Paired with ${hostLabel(record)}.`, "info");
    waitingPage();
    void connect();
  } catch (e) {
    const need = secretNeed(e);
    if (!app.conn?.isOpen) setState("error", app.record ? "not connected" : "not paired");
    notice(pairingMessage(e));
    pairingPage(text.trim(), need);
  } finally {
    if (go) go.disabled = false;
  }
}

/** Whether pairing failed for want of (or on a wrong) request-signing secret. */
function secretNeed(e: unknown): SecretNeed {
  if (!(e instanceof ApiError) || e.status !== 401) return undefined;
  if (e.error === "missing client signature") return "missing";
  if (e.error === "invalid client signature") return "invalid";
  return undefined;
}

/** Closes the current connection and terminal (before a new pairing replaces the old one). */
function dropConnection(): void {
  app.stopped = true;
  clearTimeout(app.retry);
  const conn = app.conn;
  app.conn = undefined;
  conn?.close();
  const sig = app.signaling;
  app.signaling = undefined;
  sig?.close();
  markSignaling(false);
  markFast(false);
  app.term?.dispose();
  app.term = undefined;
  termWrap = undefined;
  app.attachedPane = undefined;
  app.resume = undefined;
  app.sessions = [];
}

/** One screen asking before a QR code for another computer replaces the current pairing. */
function replaceQuestion(qr: QrPayload, payload: string, current: PairedHost): void {
  document.getElementById("replace")?.remove();
  const yes = el("button", { className: "primary", id: "replace-yes", textContent: "Pair with the new computer" });
  const no = el("button", { id: "replace-no", textContent: `Keep ${hostLabel(current)}` });
  const dialog = el("section", { className: "page", id: "replace", role: "dialog", "aria-modal": "true", "aria-labelledby": "replace-title" },
    el("h2", { id: "replace-title" }, "Replace the current pairing?"),
    el("p", {}, `This phone is paired with ${hostLabel(current)}. The QR code you opened is for another computer (${qr.hostDeviceId.slice(0, 8)}… on ${qr.serverUrl}).`),
    el("p", { className: "hint" }, `Pairing with it replaces the pairing with ${hostLabel(current)}: this phone can then no longer connect to it until you pair again.`),
    el("div", { className: "row" }, yes, no));
  const close = () => dialog.remove();
  yes.onclick = () => {
    close();
    void startPairing(payload);
  };
  no.onclick = () => {
    close();
    scanned = "";
    notice("");
    if (!app.conn?.isOpen && !connecting) resumeCurrent();
  };
  document.body.append(dialog);
  yes.focus();
}

/** A fragment from the QR URL (at load or on `hashchange`): pair, ask, or say why not. */
function takeFragment(hash: string): FragmentAction["kind"] {
  const action = fragmentAction(hash, app.record);
  switch (action.kind) {
    case "none":
      break;
    case "refuse":
      notice(action.message);
      if (!app.record) {
        setState("idle", "not paired");
        pairingPage("");
      }
      break;
    case "already-paired":
      scanned = action.payload;
      notice(`This phone is already paired with ${hostLabel(app.record)}: there is nothing to pair. (Forget the pairing first to pair again.)`, "info");
      break;
    case "confirm-replace":
      scanned = action.payload;
      replaceQuestion(action.qr, action.payload, action.current);
      break;
    case "pair":
      void startPairing(action.payload);
      break;
  }
  return action.kind;
}

/** Drops the connection and the stored pairing, back to the pairing page. */
function forgetButton(): HTMLButtonElement {
  const b = el("button", { className: "danger", textContent: "Forget pairing" });
  b.onclick = async () => {
    if (!confirm("Forget the pairing with this computer?")) return;
    dropConnection();
    await forgetPairing();
    app.record = undefined;
    setState("idle", "not paired");
    pairingPage();
  };
  return b;
}

/** Shown while the first connection to the paired computer is being made. */
function waitingPage(): void {
  const forget = forgetButton();
  show(el("section", { className: "page", id: "waiting" },
    el("h2", {}, `Paired with ${hostLabel(app.record)}`),
    el("p", { className: "hint" }, "Connecting to the computer. Start `muxlink` there if it is not running."),
    el("div", { className: "row" }, forget)));
}

function pairingMessage(e: unknown): string {
  if (e instanceof PairingError || e instanceof PayloadError) return e.message;
  const need = secretNeed(e);
  if (need === "missing")
    return "This muxlink server only accepts signed requests: enter its signing secret (the one `muxlink` on the computer is set up with) below, and the phone pairs.";
  if (need === "invalid") return "The server refused the signing secret: check it and enter it again.";
  if (e instanceof ApiError) {
    if (e.status === 401 && e.error === "invalid timestamp")
      return "The server refused the request's time: set this phone's clock right and try again.";
    if (e.status === 0) return "The muxlink server cannot be reached. Check the address and your network.";
    if (e.status === 409) return "This phone is registered as a computer on that server.";
    if (e.status === 429) return "Too many attempts: wait a minute and try again.";
    return `Pairing failed: ${e.message}`;
  }
  return `That is not a pairing payload (${(e as Error).message}): ${HOW_TO_PAIR}.`;
}

// ---- connecting -------------------------------------------------------------

/** The attempt in flight: wake-ups and retries join it instead of racing a second peer. */
let connecting: Promise<void> | undefined;

function connect(): Promise<void> {
  connecting ??= connectOnce().finally(() => (connecting = undefined));
  return connecting;
}

async function connectOnce(): Promise<void> {
  clearTimeout(app.retry);
  const record = app.record;
  if (!record) {
    setState("idle", "not paired");
    notice(`This phone is not paired yet: ${HOW_TO_PAIR}.`, "info");
    pairingPage();
    return;
  }
  if (app.conn?.isOpen) return;
  setState("connecting", "connecting…");
  const hmacSecret = (await get<string>("hmacSecret")) ?? "";
  const opts = { serverUrl: record.serverUrl, hmacSecret };
  try {
    if (!app.signaling?.open) await openSignaling(opts);
    const conn = await HostConnection.connect(app.signaling!, record.hostDeviceId, record.secret, app.ice);
    if (app.stopped || app.record !== record) {
      conn.close(); // a pairing or "forget" came in meanwhile
      return;
    }
    app.conn = conn;
    app.backoff = 1000;
    conn.onevent = onEvent;
    conn.onfast = (open) => {
      if (app.conn === conn) markFast(open);
    };
    markFast(conn.fastOpen);
    conn.onstate = (s) => {
      if (s === "disconnected") setState("connecting", "network lost…");
      if (s === "connected") setState("connected", "connected");
    };
    conn.onclose = () => {
      if (app.conn !== conn) return;
      app.conn = undefined;
      markFast(false);
      app.resume = conn.resumePoint();
      if (conn.closeReason) {
        failed(conn.closeReason);
        return;
      }
      setState("connecting", "disconnected");
      scheduleRetry();
    };
    setState("connected", "connected");
    notice("");
    conn.send({ type: "ping" });
    if (app.attachedPane) attach(app.attachedPane, true);
    else conn.send({ type: "list_sessions" });
  } catch (e) {
    if (app.stopped) return; // a pairing or "forget" stopped this attempt: nothing to report
    failed(e);
  }
}

/** Token, socket and ICE servers for the paired server; `device_unpaired` handled here. */
async function openSignaling(opts: { serverUrl: string; hmacSecret: string }): Promise<void> {
  const token = await fetchToken(opts, app.identity!);
  const sig = await Signaling.connect(opts.serverUrl, token, (await get<string>("name")) ?? "", opts.hmacSecret);
  sig.onclose = () => {
    if (app.signaling !== sig) return;
    app.signaling = undefined;
    markSignaling(false);
    // The peer may outlive the socket, but ICE restarts need signaling: reopen it.
    if (app.conn?.isOpen) void reopenSignaling();
  };
  sig.listen((m) => {
    if (m.type === "device_unpaired") {
      void forgetPairing();
      app.record = undefined;
      app.stopped = true;
      app.conn?.close();
      setState("error", "not paired");
      notice("The computer removed this pairing. Pair again to use it.");
      pairingPage();
    }
  });
  app.signaling = sig;
  markSignaling(true);
  app.ice = await iceServers(opts, token);
}

/** Reopens a dropped signaling socket under a live peer, with backoff, and rebinds the peer. */
async function reopenSignaling(): Promise<void> {
  let wait = 1000;
  while (app.conn?.isOpen && !app.signaling?.open && app.record && !app.stopped) {
    try {
      await openSignaling({ serverUrl: app.record.serverUrl, hmacSecret: (await get<string>("hmacSecret")) ?? "" });
      app.conn?.rebind(app.signaling!);
      return;
    } catch {
      await new Promise((r) => setTimeout(r, wait));
      wait = Math.min(wait * 2, BACKOFF_MAX_MS);
    }
  }
}

function failed(e: unknown): void {
  if (e instanceof ConnectError && e.kind === "host_proof") {
    // Possible interception: no retry loop, nothing of the terminal left on screen.
    console.warn(`muxlink: channel authentication failed: ${e.detail}`);
    app.stopped = true;
    app.conn?.close();
    app.term?.dispose();
    app.term = undefined;
    termWrap = undefined;
    app.attachedPane = undefined;
    setState("error", "not verified");
    notice(e.message);
    pairAgainPage("The computer could not prove the pairing key");
    return;
  }
  if (e instanceof ConnectError && e.kind === "not_paired") {
    app.stopped = true;
    setState("error", "not paired");
    notice(e.message);
    pairAgainPage();
    return;
  }
  if (e instanceof ApiError && e.permanent) {
    app.stopped = true;
    setState("error", "rejected");
    notice(e.error === "unknown device"
      ? "The server no longer knows this phone. Pair again."
      : `The server rejects this client's requests (${e.error}). Check the signing secret.`);
    pairAgainPage();
    return;
  }
  setState("error", e instanceof ConnectError && e.kind === "host_offline" ? "computer offline" : "offline");
  if (e instanceof ConnectError) notice(`${e.message} Retrying…`);
  else if (e instanceof ApiError && e.status === 0) notice("The muxlink server cannot be reached. Retrying…");
  else if (e instanceof SignalingError || e instanceof ApiError) notice(`${e.message}. Retrying…`);
  else notice(`Connection failed: ${(e as Error).message}. Retrying…`);
  scheduleRetry();
}

function scheduleRetry(): void {
  if (app.stopped) return;
  clearTimeout(app.retry);
  app.retry = setTimeout(() => void connect(), app.backoff);
  app.backoff = Math.min(app.backoff * 2, BACKOFF_MAX_MS);
}

function pairAgainPage(heading = ""): void {
  const again = el("button", { className: "primary", textContent: "Pair again" });
  again.onclick = async () => {
    dropConnection();
    await forgetPairing();
    app.record = undefined;
    setState("idle", "not paired");
    notice(scanned ? "" : `To pair again, ${HOW_TO_PAIR}.`, "info");
    pairingPage();
  };
  const retry = el("button", { textContent: "Retry" });
  retry.onclick = () => {
    app.stopped = false;
    app.backoff = 1000;
    void connect();
  };
  show(el("section", { className: "page", id: "stopped" },
    ...(heading ? [el("h2", {}, heading)] : []),
    el("div", { className: "row" }, again, retry)));
}

// ---- events -----------------------------------------------------------------

function onEvent(ev: ConnEvent): void {
  switch (ev.type) {
    case "sessions":
      app.sessions = ev.sessions;
      if (!app.attachedPane) sessionsPage();
      break;
    case "session_created":
    case "session_ended":
      app.conn?.send({ type: "list_sessions" });
      break;
    case "attached":
      app.attachedPane = ev.paneId;
      // A re-attach that resumed continues the screen as it is; otherwise a snapshot redraws it.
      if (app.reattaching && !ev.resumed) app.term?.reset();
      app.reattaching = false;
      app.resume = undefined;
      markAttached(ev.paneId, ev.resumed === true);
      break;
    case "output":
      app.term?.write(ev.data);
      break;
    case "pane_closed":
      if (ev.paneId === app.attachedPane) {
        app.attachedPane = undefined;
        markAttached(undefined);
        notice("The pane closed.", "info");
      }
      break;
    case "detached":
      app.attachedPane = undefined;
      markAttached(undefined);
      app.conn?.send({ type: "list_sessions" });
      break;
    case "pong":
      showLatency(app.state === "connected" ? app.conn?.latencyMs : undefined);
      break;
    case "error":
      notice(`${ev.code}: ${ev.message}`);
      if (ev.code === "attach_failed") {
        app.attachedPane = undefined;
        sessionsPage();
      }
      break;
    case "local_error":
      notice(ev.message);
      break;
    default:
      break;
  }
}

// ---- session list -----------------------------------------------------------

function sessionsPage(): void {
  app.term?.dispose();
  app.term = undefined;
  termWrap = undefined;
  const list = app.sessions.map((s) => {
    const panes = s.windows.flatMap((w) =>
      w.panes.map((p) => {
        const b = el("button", {
          className: "pane",
          "data-pane": p.id,
          textContent: `${w.index}:${w.name}${w.panes.length > 1 ? "." + p.index : ""} — ${p.currentCommand} (${p.size.cols}×${p.size.rows})`,
        });
        b.onclick = () => attach(p.id, false);
        return b;
      }));
    const kill = el("button", { className: "danger", textContent: "Kill" });
    kill.onclick = () => {
      if (confirm(`Kill session ${s.name}?`)) app.conn?.send({ type: "kill_session", session: s.id });
    };
    return el("div", { className: "session", "data-session": s.name },
      el("div", { className: "row" }, el("span", { className: "name" }, s.name), el("span", { className: "meta" }, s.attached ? "attached on the computer" : "")),
      ...panes,
      el("div", { className: "row" }, kill));
  });
  const create = el("button", { className: "primary", textContent: "New session" });
  create.onclick = () => app.conn?.send({ type: "create_session" });
  const refresh = el("button", { textContent: "Refresh" });
  refresh.onclick = () => app.conn?.send({ type: "list_sessions" });
  const forget = forgetButton();
  show(el("section", { className: "page", id: "sessions" },
    el("h2", {}, app.record?.hostName || "Sessions"),
    ...(list.length ? list : [el("p", { className: "hint" }, "No tmux sessions on the computer.")]),
    el("div", { className: "row" }, create, refresh, forget)));
}

// ---- terminal ---------------------------------------------------------------

/**
 * The pane the host confirmed with `attached`, as `#term-wrap[data-attached]`,
 * and `data-resumed` when that attach continued the stream (stream v2 §5).
 */
function markAttached(paneId: string | undefined, resumed = false): void {
  const w = document.getElementById("term-wrap");
  if (!w) return;
  if (paneId === undefined) delete w.dataset.attached;
  else w.dataset.attached = paneId;
  if (resumed) w.dataset.resumed = "true";
  else delete w.dataset.resumed;
}

/** The terminal size, as `#term[data-cols][data-rows]` (the e2e test compares it with tmux). */
function markSize(cols: number, rows: number): void {
  const t = document.getElementById("term");
  if (!t) return;
  t.dataset.cols = String(cols);
  t.dataset.rows = String(rows);
}

/** The terminal page while it exists (shown again after the replace question is declined). */
let termWrap: HTMLElement | undefined;

const enc = new TextEncoder();
const mods = { ctrl: false, alt: false };

function withMods(s: string): string {
  let out = s;
  if (mods.ctrl && out.length === 1) {
    const c = out.toUpperCase().charCodeAt(0);
    if (c >= 0x40 && c <= 0x5f) out = String.fromCharCode(c - 0x40);
    else if (out === " ") out = "\x00";
  }
  if (mods.alt) out = "\x1b" + out;
  return out;
}

function clearMods(): void {
  mods.ctrl = mods.alt = false;
  document.querySelectorAll<HTMLButtonElement>("#keys button[aria-pressed]").forEach((b) => b.setAttribute("aria-pressed", "false"));
}

function attach(paneId: string, reattach: boolean): void {
  const conn = app.conn;
  if (!conn) return;
  if (!app.term) terminalPage();
  app.fit!.fit();
  const { cols, rows } = app.term!;
  // Stream v2: offsets on every output; after a reconnect, continue where the screen stopped if the host still can.
  const resume = reattach && app.resume?.paneId === paneId ? app.resume.offset : undefined;
  conn.send({ type: "attach", paneId, cols: clamp(cols), rows: clamp(rows), ...(reattach ? { reattach: true } : {}),
    compression: "deflate", offsets: true, ...(resume !== undefined ? { resumeFrom: resume } : {}) });
  app.reattaching = reattach;
  app.attachedPane = paneId;
}

const clamp = (n: number) => Math.max(1, Math.min(500, n));

function terminalPage(): void {
  const host = el("div", { id: "term" });
  const keys = el("div", { id: "keys" });
  const key = (label: string, seq: string, title = "", raw = false) => {
    const b = el("button", { textContent: label, ...(title ? { title, "aria-label": title } : {}) });
    b.onclick = () => {
      app.conn?.input(enc.encode(raw ? seq : withMods(seq)));
      clearMods();
      app.term?.focus();
    };
    return b;
  };
  const toggle = (label: string, which: "ctrl" | "alt") => {
    const b = el("button", { textContent: label, "aria-pressed": "false" });
    b.onclick = () => {
      mods[which] = !mods[which];
      b.setAttribute("aria-pressed", String(mods[which]));
      app.term?.focus();
    };
    return b;
  };
  const back = el("button", { textContent: "⟵ Sessions" });
  back.onclick = () => {
    app.conn?.send({ type: "detach" });
    app.attachedPane = undefined;
    sessionsPage();
  };
  // One row that scrolls sideways on a narrow phone (360 px shows about half of it).
  keys.append(back, key("Esc", "\x1b"), key("Tab", "\t"), toggle("Ctrl", "ctrl"), toggle("Alt", "alt"),
    key("^B", "\x02", "tmux prefix (Ctrl-B)", true),
    key("←", "\x1b[D"), key("↑", "\x1b[A"), key("↓", "\x1b[B"), key("→", "\x1b[C"),
    key("PgUp", "\x1b[5~", "Page Up"), key("PgDn", "\x1b[6~", "Page Down"),
    key("|", "|"), key("~", "~"), key("/", "/"), key("-", "-"));
  termWrap = el("div", { id: "term-wrap" }, host, keys);
  show(termWrap);
  const term = new Terminal({ fontSize: 14, cursorBlink: true, scrollback: 2000, convertEol: false,
    theme: { background: "#111418" } });
  const fit = new FitAddon();
  term.loadAddon(fit);
  term.open(host);
  term.onData((d) => {
    app.conn?.input(enc.encode(withMods(d)));
    if (mods.ctrl || mods.alt) clearMods();
  });
  term.onResize(({ cols, rows }) => {
    markSize(cols, rows);
    if (app.attachedPane) app.conn?.send({ type: "resize", cols: clamp(cols), rows: clamp(rows) });
  });
  app.term = term;
  app.fit = fit;
  fit.fit();
  markSize(term.cols, term.rows);
  term.focus();
}

// Rotation and keyboard show/hide change the viewport: refit (onResize sends `resize`).
const refit = () => app.fit?.fit();
window.addEventListener("resize", refit);
screen.orientation?.addEventListener?.("change", refit);
// Phone soft keyboards shrink the visual viewport only.
window.visualViewport?.addEventListener("resize", refit);

// Network changes: reconnect at once instead of waiting for the backoff.
const wake = () => {
  if (app.stopped || !app.record) return;
  app.backoff = 1000;
  if (!app.conn?.isOpen) void connect();
};
window.addEventListener("online", wake);
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") wake();
});
setInterval(() => {
  if (app.conn?.isOpen) app.conn.send({ type: "ping" });
}, PING_MS);

// ---- start ----------------------------------------------------------------

async function start(): Promise<void> {
  if (!globalThis.crypto?.subtle) {
    setState("error", "insecure page");
    notice("This page needs a secure origin (https:// or localhost): the browser disables WebCrypto here.");
    return;
  }
  try {
    app.identity = await loadIdentity();
  } catch (e) {
    setState("error", "unsupported browser");
    notice(`This browser cannot create an Ed25519 key (${(e as Error).message}). Use a current Chrome, Safari or Firefox.`);
    return;
  }
  markSignaling(false);
  markFast(false);
  showLatency(undefined);
  const stored = await loadPairing();
  app.record = stored === "outdated" ? undefined : stored;
  // The QR URL carries the payload in the fragment, which never reaches the
  // server. A valid payload pairs at once (no tap); the fragment then leaves
  // the address bar, so a reload does not pair again. A QR URL opened later in
  // this tab arrives as `hashchange`.
  let fromQr = "none" as FragmentAction["kind"];
  watchFragment(window, (hash) => {
    fromQr = takeFragment(hash);
  });
  if (fromQr === "pair" || fromQr === "confirm-replace") {
    // Pairing started, or the replace question is up: the current pairing
    // (if any) connects once the user keeps it.
    if (fromQr === "confirm-replace") waitingPage();
    return;
  }
  if (fromQr === "refuse" && !app.record) return;
  if (stored === "outdated") {
    setState("idle", "not paired");
    notice(`This phone was paired by an older muxlink, whose pairing is no longer accepted: ${HOW_TO_PAIR}.`);
    pairingPage();
    return;
  }
  if (app.record) waitingPage();
  await connect();
}
void start();
