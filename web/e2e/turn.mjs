// The web client through a TURN relay only: the real signaling server binary
// handing out a coturn on loopback (started by tests/turn_relay.rs, which
// passes TURN_PORT, TURN_USER, TURN_PASSWORD), the real `muxlink` agent with
// `relay_only = true`, and headless Chromium whose RTCPeerConnection is forced
// to `iceTransportPolicy: "relay"` by an init script of this test (the page
// itself has no such switch). The page pairs from the QR URL, attaches, types,
// reads the output back, and the selected ICE candidate pair must be relay on
// both sides (from the browser's own getStats).
// Run through `cargo test -p muxlink-e2e --test turn_relay`.
import { spawn, execFileSync } from "node:child_process";
import { appendFileSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";

const root = resolve(import.meta.dirname, "../..");
const target = process.env.CARGO_TARGET_DIR ?? join(root, "target");
const MUXLINK = process.env.MUXLINK_BIN ?? join(target, "debug/muxlink");
const SERVER = process.env.MUXLINK_SERVER_BIN ?? join(target, "debug/muxlink-signaling-server");
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const { TURN_PORT, TURN_USER, TURN_PASSWORD } = process.env;
const STEP_MS = 30_000;

const cleanups = [];
const fail = (msg) => {
  throw new Error(msg);
};
const step = (text) => console.log(`==> ${text}`);

async function freePort() {
  return new Promise((res) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

/** A child process whose output lines are kept and can be waited for. */
function start(cmd, args, env = {}) {
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  const lines = [];
  const waiters = [];
  const feed = (buf) => {
    for (const l of buf.toString().split("\n")) {
      if (!l) continue;
      lines.push(l);
      if (process.env.E2E_VERBOSE) console.log(`    [${cmd.split("/").pop()}] ${l}`);
      for (const w of [...waiters]) if (w.pred(l)) { waiters.splice(waiters.indexOf(w), 1); w.res(l); }
    }
  };
  child.stdout.on("data", feed);
  child.stderr.on("data", feed);
  cleanups.push(() => child.kill("SIGTERM"));
  return {
    child,
    lines,
    wait(pred, what) {
      const hit = lines.find(pred);
      if (hit) return Promise.resolve(hit);
      return new Promise((res, rej) => {
        waiters.push({ pred, res });
        setTimeout(() => rej(new Error(`timed out waiting for ${what}; output:\n${lines.slice(-20).join("\n")}`)), STEP_MS);
      });
    },
  };
}

async function main() {
  if (!TURN_PORT || !TURN_USER || !TURN_PASSWORD) fail("TURN_PORT, TURN_USER and TURN_PASSWORD must name the coturn to use");
  step(`server handing out turn:127.0.0.1:${TURN_PORT}`);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const server = start(SERVER, ["--bind", `127.0.0.1:${port}`, "--rate-limits", "false", "--stun-bind", "off",
    "--turn-urls", `turn:127.0.0.1:${TURN_PORT}?transport=udp`, "--turn-username", TURN_USER,
    "--turn-credential", TURN_PASSWORD]);
  await server.wait((l) => l.includes("listening"), "the server");

  const sock = `muxlink-web-turn-${process.pid}`;
  const tmux = (...a) => execFileSync("tmux", ["-L", sock, ...a]).toString().trim();
  tmux("-f", "/dev/null", "new-session", "-d", "-s", "web", "-x", "100", "-y", "30", "sh");
  cleanups.push(() => { try { tmux("kill-server"); } catch { /* already gone */ } });
  const pane = tmux("display-message", "-p", "-t", "web", "#{pane_id}");

  const home = mkdtempSync(join(tmpdir(), "muxlink-web-turn-"));
  cleanups.push(() => rmSync(home, { recursive: true, force: true }));
  // Not loopback-only: the agent fetches /turn/credentials and, with
  // relay_only, gathers relay candidates only.
  const env = { MUXLINK_HOME: home, MUXLINK_TMUX_SOCKET: sock, MUXLINK_LOOPBACK_ONLY: "false",
    MUXLINK_HOST_NAME: "web-turn-host", MUXLINK_SERVER: url, RUST_LOG: "info" };
  execFileSync(MUXLINK, ["init"], { env: { ...process.env, ...env } });
  appendFileSync(join(home, "config.toml"), "\nrelay_only = true\n");
  const pair = start(MUXLINK, ["pair", "--yes", "--payload-only"], env);
  const payload = (await pair.wait((l) => l.startsWith("PAIRING_PAYLOAD "), "the pairing payload")).slice("PAIRING_PAYLOAD ".length);

  step("chromium, relay-only peer connections, pairs from the QR URL");
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
      "--no-first-run", "--disable-component-update", "--disable-sync", "--allow-loopback-in-peer-connection",
      "--disable-features=WebRtcHideLocalIpsWithMdns"],
  });
  cleanups.unshift(() => browser.close());
  const ctx = await browser.newContext({ viewport: { width: 360, height: 640 }, isMobile: true, hasTouch: true });
  // The test's switch, outside the page's code: every peer connection the page
  // makes uses relay candidates only; the test keeps them to read their stats.
  await ctx.addInitScript(() => {
    const Native = window.RTCPeerConnection;
    const peers = [];
    window.RTCPeerConnection = class extends Native {
      constructor(config = {}) {
        super({ ...config, iceTransportPolicy: "relay" });
        peers.push(this);
      }
    };
    Object.defineProperty(window, "__turnTestPeers", { value: peers });
  });
  const page = await ctx.newPage();
  if (process.env.E2E_VERBOSE) page.on("console", (m) => console.log(`    [page] ${m.text()}`));
  await page.goto(`${url}/#${payload}`);
  await pair.wait((l) => l.startsWith("PAIRED "), "PAIRED from `muxlink pair`");

  step("agent runs (relay only); the page connects through the relay");
  const agent = start(MUXLINK, ["run"], env);
  await agent.wait((l) => l.includes("agent ready"), "the agent");
  await page.waitForSelector('[data-session="web"]', { timeout: STEP_MS * 2 });

  step("attach, type, read back");
  await page.click(`[data-pane="${pane}"]`);
  await page.waitForSelector(`#term-wrap[data-attached="${pane}"]`, { state: "attached", timeout: STEP_MS });
  await page.focus(".xterm-helper-textarea");
  await page.keyboard.type("echo relayed-$((6*7))");
  await page.keyboard.press("Enter");
  const seen = await page.waitForFunction(() => {
    const text = [...document.querySelectorAll(".xterm-rows > div")].map((r) => r.textContent ?? "").join("\n");
    return text.includes("relayed-42");
  }, null, { timeout: STEP_MS }).then(() => true, () => false);
  if (!seen) fail(`output never came back; tmux:\n${tmux("capture-pane", "-p", "-t", pane)}`);

  step("the selected candidate pair is relay on both sides");
  const pairs = await page.evaluate(async () => {
    const out = [];
    for (const pc of window.__turnTestPeers) {
      if (pc.connectionState !== "connected") continue;
      const stats = await pc.getStats();
      const byId = new Map();
      stats.forEach((s) => byId.set(s.id, s));
      stats.forEach((s) => {
        if (s.type === "transport" && s.selectedCandidatePairId) {
          const p = byId.get(s.selectedCandidatePairId);
          out.push({
            local: byId.get(p.localCandidateId)?.candidateType,
            remote: byId.get(p.remoteCandidateId)?.candidateType,
            policy: pc.getConfiguration().iceTransportPolicy,
          });
        }
      });
    }
    return out;
  });
  console.log(`    selected pairs: ${JSON.stringify(pairs)}`);
  if (pairs.length === 0) fail("no connected peer connection with a selected candidate pair");
  for (const p of pairs) {
    if (p.local !== "relay" || p.remote !== "relay" || p.policy !== "relay") fail(`not relayed: ${JSON.stringify(p)}`);
  }
  console.log("ok: web client over TURN passed");
}

let code = 0;
try {
  await main();
} catch (e) {
  console.error(`web turn e2e failed: ${e.stack ?? e}`);
  code = 1;
} finally {
  for (const c of cleanups) {
    try { await c(); } catch { /* best effort */ }
  }
}
process.exit(code);
