// Browser end-to-end test of the web client: the real signaling server (with
// the embedded page), a real `muxlink` agent and tmux on a private socket, and
// headless Debian Chromium driven by playwright-core, all on loopback.
// Run: node e2e/browser.mjs  (after `cargo xtask web` and a debug build of
// `muxlink` and `muxlink-signaling-server`). Screenshots go to target/web-e2e/.
// The page keeps its state off `window`: everything here is read from the DOM
// (`#state[data-signaling]`, `#term-wrap[data-attached]`, `#term[data-cols]`, `.xterm-rows`).
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { chromium } from "playwright-core";

const root = resolve(import.meta.dirname, "../..");
const target = process.env.CARGO_TARGET_DIR ?? join(root, "target");
const MUXLINK = process.env.MUXLINK_BIN ?? join(target, "debug/muxlink");
const SERVER = process.env.MUXLINK_SERVER_BIN ?? join(target, "debug/muxlink-signaling-server");
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const STEP_MS = 30_000;
const shots = join(target, "web-e2e");
mkdirSync(shots, { recursive: true });

const cleanups = [];
const fail = (msg) => {
  throw new Error(msg);
};

function step(text) {
  console.log(`==> ${text}`);
}

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

/** Checks a host-side condition (tmux state) until it holds, at most STEP_MS. */
async function until(cond, what) {
  const deadline = Date.now() + STEP_MS;
  while (!cond()) {
    if (Date.now() > deadline) fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function main() {
  step("server, tmux, agent home");
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  // A database file and a fixed JWT secret let the server restart mid-test with devices and pairing kept.
  const db = join(mkdtempSync(join(tmpdir(), "muxlink-web-e2e-db-")), "server.sqlite");
  cleanups.push(() => rmSync(dirname(db), { recursive: true, force: true }));
  // A request-signing secret, so the page must sign its HTTP calls and its
  // WebSocket upgrade (in the query: browsers cannot set WebSocket headers).
  const hmacSecret = "web-e2e-signing-secret";
  const serverArgs = ["--bind", `127.0.0.1:${port}`, "--rate-limits", "false", "--database", db,
    "--jwt-secret", "web-e2e-jwt-secret", "--hmac-secret", hmacSecret];
  let server = start(SERVER, serverArgs);
  await server.wait((l) => l.includes("listening"), "the server");

  const sock = `muxlink-web-e2e-${process.pid}`;
  const tmux = (...a) => execFileSync("tmux", ["-L", sock, ...a]).toString().trim();
  tmux("-f", "/dev/null", "new-session", "-d", "-s", "web", "-x", "100", "-y", "30", "sh");
  cleanups.push(() => { try { tmux("kill-server"); } catch { /* already gone */ } });
  const pane = tmux("display-message", "-p", "-t", "web", "#{pane_id}");

  const home = mkdtempSync(join(tmpdir(), "muxlink-web-e2e-"));
  cleanups.push(() => rmSync(home, { recursive: true, force: true }));
  const env = { MUXLINK_HOME: home, MUXLINK_TMUX_SOCKET: sock, MUXLINK_LOOPBACK_ONLY: "true",
    MUXLINK_HOST_NAME: "web-e2e-host", MUXLINK_SERVER: url, MUXLINK_HMAC_SECRET: hmacSecret };
  execFileSync(MUXLINK, ["init"], { env: { ...process.env, ...env } });
  const pair = start(MUXLINK, ["pair", "--yes", "--payload-only"], env);
  const payload = (await pair.wait((l) => l.startsWith("PAIRING_PAYLOAD "), "the pairing payload")).slice("PAIRING_PAYLOAD ".length);
  // Pairing v2: code|hostKey|hostId|serverUrl|base64(T), all 5 fields required.
  if (payload.split("|").length !== 5) fail(`expected a 5-field pairing payload, got ${payload}`);

  step("chromium opens the QR URL and pairs");
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
      "--no-first-run", "--disable-component-update", "--disable-sync", "--allow-loopback-in-peer-connection",
      "--disable-features=WebRtcHideLocalIpsWithMdns"],
  });
  cleanups.unshift(() => browser.close());
  const ctx = await browser.newContext({ viewport: { width: 375, height: 740 }, deviceScaleFactor: 2, hasTouch: true });
  const page = await ctx.newPage();
  // Content-Security-Policy violations (the server's CSP must let the page and xterm.js work).
  const cspViolations = [];
  page.on("console", (m) => {
    if (process.env.E2E_VERBOSE) console.log(`    [page] ${m.text()}`);
    if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
  });
  await page.goto(`${url}/#${encodeURIComponent(payload)}`);
  await page.waitForSelector("#pair");
  await page.locator("details").evaluate((d) => { d.open = true; });
  await page.fill("#hmac", hmacSecret);
  await page.screenshot({ path: join(shots, "pairing.png") });
  // A payload without the pairing token (an older muxlink) is refused before anything is sent.
  await page.fill("#payload", payload.split("|").slice(0, 4).join("|"));
  await page.click("#pair");
  await page.waitForFunction(() => /older muxlink/.test(document.getElementById("notice")?.textContent ?? ""),
    null, { timeout: STEP_MS });
  // A code the server does not know reads as wrong or expired, and nothing is stored.
  const code = payload.split("|")[0];
  await page.fill("#payload", payload.replace(code, code === "AAAAAA" ? "BBBBBB" : "AAAAAA"));
  await page.click("#pair");
  await page.waitForFunction(() => /wrong or expired/.test(document.getElementById("notice")?.textContent ?? ""),
    null, { timeout: STEP_MS });
  await page.fill("#payload", payload);
  await page.click("#pair");
  await pair.wait((l) => l.startsWith("PAIRED "), "PAIRED from `muxlink pair`");
  // No agent runs yet: the page says the computer is offline (and keeps retrying).
  await page.waitForFunction(() => document.getElementById("state")?.textContent === "computer offline",
    null, { timeout: STEP_MS });
  await page.screenshot({ path: join(shots, "host-offline.png") });

  step("agent runs; the page lists the sessions");
  const agent = start(MUXLINK, ["run"], env);
  await agent.wait((l) => l.includes("agent ready"), "the agent");
  // The page retries with backoff while the computer is offline.
  await page.waitForSelector('[data-session="web"]', { timeout: STEP_MS });
  await page.screenshot({ path: join(shots, "sessions.png") });

  step("attach, type, read back from the xterm buffer");
  await page.click(`[data-pane="${pane}"]`);
  await page.waitForSelector(".xterm-helper-textarea", { state: "attached", timeout: STEP_MS });
  // The host confirmed the attach (`attached` event).
  await page.waitForSelector(`#term-wrap[data-attached="${pane}"]`, { state: "attached", timeout: STEP_MS });
  await page.focus(".xterm-helper-textarea");
  await page.keyboard.type("echo hi-from-browser");
  await page.keyboard.press("Enter");
  // The rows xterm.js renders (its DOM renderer: one div per visible row).
  const screenText = () => page.evaluate(() =>
    [...document.querySelectorAll(".xterm-rows > div")].map((r) => r.textContent ?? "").join("\n"));
  // The command line and its output: the word appears at least twice on the terminal screen.
  const seen = await page.waitForFunction(() => {
    const text = [...document.querySelectorAll(".xterm-rows > div")].map((r) => r.textContent ?? "").join("\n");
    return text.split("hi-from-browser").length >= 3;
  }, null, { timeout: STEP_MS }).then(() => true, () => false);
  if (!seen) fail(`output never came back; screen:\n${await screenText()}\nnotice: ${await page.textContent("#notice")}\ntmux:\n${tmux("capture-pane", "-p", "-t", pane)}`);
  await page.screenshot({ path: join(shots, "terminal-portrait.png") });

  step("extra keys: Ctrl then c interrupts a running command");
  await page.keyboard.type("sleep 30");
  await page.keyboard.press("Enter");
  await until(() => tmux("display-message", "-p", "-t", pane, "#{pane_current_command}") === "sleep", "sleep to start");
  await page.click('#keys button:text-is("Ctrl")');
  await page.keyboard.type("c");
  await until(() => tmux("display-message", "-p", "-t", pane, "#{pane_current_command}") === "sh", "Ctrl-C to reach the pane");

  step("rotate: the resize reaches tmux");
  const before = tmux("display-message", "-p", "-t", pane, "#{pane_width}");
  await page.setViewportSize({ width: 740, height: 375 });
  await page.waitForFunction((w) => {
    const c = document.getElementById("term")?.dataset.cols;
    return c !== undefined && c !== w;
  }, before);
  const cols = Number(await page.getAttribute("#term", "data-cols"));
  await until(() => tmux("display-message", "-p", "-t", pane, "#{pane_width}") === String(cols),
    `tmux pane width ${cols} (was ${before})`);
  await page.screenshot({ path: join(shots, "terminal-landscape.png") });
  await page.setViewportSize({ width: 375, height: 740 });

  step("reload: reconnects without pairing again");
  await page.reload();
  await page.waitForSelector('[data-session="web"]', { timeout: STEP_MS });
  await page.screenshot({ path: join(shots, "phone.png") });

  step("signaling server restarts: the peer stays up, the page reopens its socket");
  const signalingOpen = () => document.getElementById("state")?.dataset.signaling === "open";
  if (!(await page.evaluate(signalingOpen))) fail("the page has no open signaling socket before the restart");
  server.child.kill("SIGTERM");
  await new Promise((r) => server.child.once("exit", r));
  await page.waitForFunction(() => document.getElementById("state")?.dataset.signaling !== "open", null, { timeout: STEP_MS });
  server = start(SERVER, serverArgs);
  await server.wait((l) => l.includes("listening"), "the restarted server");
  await page.waitForFunction(signalingOpen, null, { timeout: STEP_MS * 2 });
  if ((await page.textContent("#state")) !== "connected") fail("the peer did not survive the server restart");
  await page.click('button:text-is("New session")');
  await until(() => tmux("list-sessions", "-F", "#{session_name}").split("\n").length >= 2, "create_session over the surviving channel");

  step("tampered stored secret: the host refuses the proof, the page says the key was not proven");
  await page.evaluate(async () => {
    const key = await crypto.subtle.importKey("raw", crypto.getRandomValues(new Uint8Array(32)),
      { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
    const db = await new Promise((res, rej) => {
      const r = indexedDB.open("muxlink", 1);
      r.onsuccess = () => res(r.result);
      r.onerror = () => rej(r.error);
    });
    const store = () => db.transaction("kv", "readwrite").objectStore("kv");
    const rec = await new Promise((res) => { const r = store().get("pairing"); r.onsuccess = () => res(r.result); });
    rec.secret = key;
    await new Promise((res) => { const r = store().put(rec, "pairing"); r.onsuccess = () => res(); });
  });
  await page.reload();
  await page.waitForFunction(() => document.getElementById("state")?.dataset.state === "error", null, { timeout: STEP_MS });
  const state = await page.textContent("#state");
  const notice = await page.textContent("#notice");
  if (state !== "not verified" || !/could not prove the pairing key/.test(notice ?? ""))
    fail(`expected the could-not-prove message, got ${state}: ${notice}`);
  if (await page.$(".xterm")) fail("a terminal is still on screen after the key check failed");
  await page.screenshot({ path: join(shots, "wrong-key.png") });
  if (cspViolations.length) fail(`Content-Security-Policy violations:\n${cspViolations.join("\n")}`);
  console.log(`ok: web client e2e passed; screenshots in ${shots}`);
}

let code = 0;
try {
  await main();
} catch (e) {
  console.error(`web e2e failed: ${e.stack ?? e}`);
  code = 1;
} finally {
  for (const c of cleanups) {
    try { await c(); } catch { /* best effort */ }
  }
}
process.exit(code);
