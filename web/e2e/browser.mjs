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
import { FastProbe, fastProbeScript } from "./fastprobe.mjs";

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
    "--jwt-secret", "web-e2e-jwt-secret-of-at-least-32-bytes", "--hmac-secret", hmacSecret];
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

  step("chromium at 360×640: a 4-field payload in the QR URL is refused");
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
      "--no-first-run", "--disable-component-update", "--disable-sync", "--allow-loopback-in-peer-connection",
      "--disable-features=WebRtcHideLocalIpsWithMdns"],
  });
  cleanups.unshift(() => browser.close());
  // A small phone: 360 px wide (the layout must fit it; the extra keys scroll sideways).
  const PORTRAIT = { width: 360, height: 640 };
  const ctx = await browser.newContext({ viewport: PORTRAIT, deviceScaleFactor: 2, hasTouch: true, isMobile: true });
  // Stream v2's fast channel, seen from outside the page (options, copies sent and received).
  await ctx.addInitScript(fastProbeScript);
  const fast = new FastProbe();
  // Content-Security-Policy violations (the server's CSP must let the page and xterm.js work).
  const cspViolations = [];
  const watch = (p) => {
    p.on("console", (m) => {
      fast.feed(m.text());
      if (process.env.E2E_VERBOSE && !m.text().startsWith("muxlink-fast ")) console.log(`    [page] ${m.text()}`);
      if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
    });
    return p;
  };
  const noticeMatches = (p, re) => p.waitForFunction((src) => new RegExp(src).test(document.getElementById("notice")?.textContent ?? ""),
    re.source, { timeout: STEP_MS });
  /** The QR URL left the address bar (history.replaceState), so a reload does not pair again. */
  const fragmentGone = async (p) => {
    const u = new URL(p.url());
    if (u.hash !== "" || u.pathname !== "/") fail(`the pairing payload stayed in the address bar: ${p.url()}`);
  };
  let page = watch(await ctx.newPage());
  // A payload without the pairing token (an older muxlink) is refused before anything is sent.
  await page.goto(`${url}/#${payload.split("|").slice(0, 4).join("|")}`);
  await noticeMatches(page, /older muxlink/);
  await fragmentGone(page);
  if ((await page.textContent("#state")) !== "not paired") fail("a 4-field payload got further than the pairing page");

  step("a QR URL opened in the open tab (hashchange) pairs at once; the server wants its signing secret");
  // A code the server does not know: the page pairs at once (no tap), the server
  // asks for a request signature, the page shows the secret field and pairs as
  // soon as the secret is entered; the code then reads as wrong or expired.
  const code = payload.split("|")[0];
  const wrong = payload.replace(code, code === "AAAAAA" ? "BBBBBB" : "AAAAAA");
  await page.evaluate((h) => { location.hash = h; }, wrong);
  await page.waitForSelector('#pairing[data-need-secret="missing"] #hmac', { timeout: STEP_MS });
  await noticeMatches(page, /signing secret/);
  await fragmentGone(page);
  await page.screenshot({ path: join(shots, "secret-needed.png") });
  await page.fill("#hmac", hmacSecret);
  await page.press("#hmac", "Enter");
  await noticeMatches(page, /wrong or expired/);
  await page.close();

  step("chromium opens the QR URL and pairs with no tap");
  // Counted for the whole browser context (any tab, any worker): exactly one
  // pair/complete may reach the server, whichever page sends it.
  const pairRequests = [];
  ctx.on("request", (r) => { if (r.url().includes("/auth/pair/complete")) pairRequests.push(r.url()); });
  page = watch(await ctx.newPage());
  // The URL the QR code holds, as the host writes it: the payload's |+/= left raw.
  await page.goto(`${url}/#${payload}`);
  // Nothing is clicked or typed here: the page pairs by itself.
  await pair.wait((l) => l.startsWith("PAIRED "), "PAIRED from `muxlink pair`");
  // The host's PAIRED line can come before Playwright has delivered the
  // browser's request event (two independent channels), so wait for it.
  await until(() => pairRequests.length >= 1, "the pair/complete request event");
  if (pairRequests.length !== 1) fail(`expected one pair/complete request, saw ${pairRequests.length}`);
  await fragmentGone(page);
  // No agent runs yet: the page says the computer is offline (and keeps retrying).
  await page.waitForFunction(() => document.getElementById("state")?.textContent === "computer offline",
    null, { timeout: STEP_MS });
  if (await page.isVisible("#latency")) fail("the latency readout shows while disconnected");
  await page.screenshot({ path: join(shots, "host-offline.png") });

  step("favicon and web app manifest: same origin, installable");
  const appFiles = await page.evaluate(async () => {
    const icon = document.querySelector('link[rel="icon"]')?.href;
    const manifest = document.querySelector('link[rel="manifest"]')?.href;
    const get = async (u) => {
      const r = await fetch(u);
      return { url: u, status: r.status, type: r.headers.get("content-type"), text: await r.text() };
    };
    return { icon: icon && (await get(icon)), manifest: manifest && (await get(manifest)) };
  });
  if (!appFiles.icon || appFiles.icon.status !== 200 || !/^image\/svg\+xml/.test(appFiles.icon.type ?? "") || !new URL(appFiles.icon.url).href.startsWith(`${url}/`))
    fail(`no favicon from the page's origin: ${JSON.stringify(appFiles.icon)}`);
  if (!appFiles.manifest || appFiles.manifest.status !== 200) fail(`no web app manifest: ${JSON.stringify(appFiles.manifest)}`);
  const manifest = JSON.parse(appFiles.manifest.text);
  if (manifest.display !== "standalone" || !manifest.name || !manifest.theme_color || !manifest.icons?.length)
    fail(`incomplete manifest: ${appFiles.manifest.text}`);
  const cdp = await ctx.newCDPSession(page);
  const parsed = await cdp.send("Page.getAppManifest");
  if (parsed.errors?.length) fail(`manifest errors: ${JSON.stringify(parsed.errors)}`);
  const installability = await cdp.send("Page.getInstallabilityErrors").catch((e) => ({ error: String(e) }));
  console.log(`    installability: ${JSON.stringify(installability)}`);
  // Playwright's contexts are incognito ("in-incognito"); any other reason is a fault of the page.
  const notInstallable = (installability.installabilityErrors ?? []).filter((e) => e.errorId !== "in-incognito");
  if (notInstallable.length) fail(`not installable: ${JSON.stringify(notInstallable)}`);
  await cdp.detach();

  step("agent runs; the page lists the sessions");
  const agent = start(MUXLINK, ["run"], env);
  await agent.wait((l) => l.includes("agent ready"), "the agent");
  // The page retries with backoff while the computer is offline.
  await page.waitForSelector('[data-session="web"]', { timeout: STEP_MS });
  // Connected: the latency readout shows (it is hidden while disconnected).
  await page.waitForFunction(() => {
    const l = document.getElementById("latency");
    return l && !l.hidden && /^\d+ ms$/.test(l.textContent ?? "");
  }, null, { timeout: STEP_MS });
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

  step("stream v2: the fast channel is open; typed keys echo exactly once");
  // Chromium's SCTP is the phone side: the page opened `terminal-fast` after
  // auth_ok and the host took it; every key goes as a fast copy and
  // reliably, every small output comes both ways, and the screen must still
  // show each byte once.
  await page.waitForSelector('#state[data-fast="open"]', { state: "attached", timeout: STEP_MS })
    .catch(() => fail(`the fast channel did not open: ${JSON.stringify(fast)}`));
  if (!fast.created.includes("ordered=false maxRetransmits=0"))
    fail(`no unordered, unretransmitted fast channel: ${JSON.stringify(fast.created)}`);
  const [tx0, rx0] = [fast.tx, fast.rx];
  const rows = () => page.evaluate(() =>
    [...document.querySelectorAll(".xterm-rows > div")].map((r) => (r.textContent ?? "").replace(/\u00a0/g, " ").trimEnd()));
  const fastCmd = "printf 'fast-%s\\n' once";
  /** A command line as sh shows it: its prompt (`$ `, or `# ` as root), then the command. */
  const prompted = (line, cmd) => line === `$ ${cmd}` || line === `# ${cmd}`;
  await page.focus(".xterm-helper-textarea");
  await page.keyboard.type(fastCmd);
  await page.keyboard.press("Enter");
  // The command's output comes after its echo on the ordered stream: once it shows, so has every echoed key.
  await page.waitForFunction(() => [...document.querySelectorAll(".xterm-rows > div")]
    .some((r) => (r.textContent ?? "").replace(/\u00a0/g, " ").trim() === "fast-once"), null, { timeout: STEP_MS })
    .catch(async () => fail(`printf's output never showed; screen:\n${(await rows()).join("\n")}`));
  const afterFast = await rows();
  const typed = afterFast.filter((l) => l.includes("fast-%s"));
  if (typed.length !== 1 || !prompted(typed[0], fastCmd))
    fail(`the typed line did not echo exactly once: ${JSON.stringify(typed)}; screen:\n${afterFast.join("\n")}`);
  if (afterFast.filter((l) => l === "fast-once").length !== 1) fail(`printf's output shows more than once:\n${afterFast.join("\n")}`);
  await until(() => fast.tx - tx0 >= fastCmd.length + 1, `a fast copy of each of the ${fastCmd.length + 1} keys (saw ${fast.tx - tx0})`);
  await until(() => fast.rx > rx0, "output copies from the host on the fast channel");
  if ((await page.getAttribute("#state", "data-fast")) !== "open") fail("the fast channel closed during typing");
  console.log(`    fast channel: ${fast.tx - tx0} input copies sent, ${fast.rx - rx0} output copies received`);

  step("stream v2: a dropped peer comes back and resumes the pane's stream (no redraw, nothing twice)");
  // The probe closes the page's `terminal` channel, as a lost peer would; the
  // page reconnects and re-attaches with resumeFrom, the host answers `resumed`.
  const opened0 = fast.opened;
  await page.evaluate(() => document.dispatchEvent(new Event("muxlink-e2e-drop")));
  await page.waitForSelector('#term-wrap[data-resumed="true"]', { state: "attached", timeout: STEP_MS * 2 })
    .catch(async () => fail(`the re-attach did not resume; state ${await page.textContent("#state")}, notice ${await page.textContent("#notice")}`));
  await page.waitForSelector('#state[data-fast="open"]', { state: "attached", timeout: STEP_MS });
  if (fast.opened <= opened0) fail("the new peer has no fast channel");
  const resumeCmd = "printf 'resumed-%s\\n' ok";
  await page.focus(".xterm-helper-textarea");
  await page.keyboard.type(resumeCmd);
  await page.keyboard.press("Enter");
  await page.waitForFunction(() => [...document.querySelectorAll(".xterm-rows > div")]
    .some((r) => (r.textContent ?? "").replace(/\u00a0/g, " ").trim() === "resumed-ok"), null, { timeout: STEP_MS })
    .catch(async () => fail(`printf's output never showed after the resume; screen:\n${(await rows()).join("\n")}`));
  const afterResume = await rows();
  // The screen kept what it showed (a resume is no redraw) and nothing came twice.
  for (const [is, what] of [[(l) => prompted(l, fastCmd), "the earlier command"], [(l) => l === "fast-once", "the earlier output"],
    [(l) => prompted(l, resumeCmd), "the command typed after the resume"], [(l) => l === "resumed-ok", "its output"]])
    if (afterResume.filter(is).length !== 1) fail(`${what} is not on screen exactly once:\n${afterResume.join("\n")}`);

  step("360 px: the page does not overflow sideways; the extra keys row scrolls");
  const layout = await page.evaluate(() => {
    const k = document.getElementById("keys");
    return { page: document.documentElement.scrollWidth, view: innerWidth, keys: k.scrollWidth, keysView: k.clientWidth,
      labels: [...k.querySelectorAll("button")].map((b) => b.textContent) };
  });
  if (layout.page > layout.view) fail(`the page is wider than the 360 px screen: ${JSON.stringify(layout)}`);
  for (const l of ["PgUp", "PgDn", "^B"]) if (!layout.labels.includes(l)) fail(`no ${l} key: ${layout.labels}`);
  if (layout.keys > layout.keysView) {
    await page.$eval("#keys", (k) => { k.scrollLeft = k.scrollWidth; });
    await page.screenshot({ path: join(shots, "terminal-keys-scrolled.png") });
  }

  step("extra keys: ^B sends 0x02, PgUp and PgDn their escape sequences");
  await page.keyboard.type("cat -v");
  await page.keyboard.press("Enter");
  await until(() => tmux("display-message", "-p", "-t", pane, "#{pane_current_command}") === "cat", "cat to start");
  await page.click('#keys button:text-is("^B")');
  await page.click('#keys button:text-is("PgUp")');
  await page.click('#keys button:text-is("PgDn")');
  await page.focus(".xterm-helper-textarea");
  await page.keyboard.press("Enter");
  // cat -v prints the bytes it got: Ctrl-B as ^B, ESC as ^[.
  await until(() => tmux("capture-pane", "-p", "-t", pane).split("\n").some((l) => l === "^B^[[5~^[[6~"),
    "cat -v to print ^B^[[5~^[[6~");
  await page.click('#keys button:text-is("Ctrl")');
  await page.keyboard.type("c");
  await until(() => tmux("display-message", "-p", "-t", pane, "#{pane_current_command}") === "sh", "Ctrl-C to end cat");

  step("extra keys: Ctrl then c interrupts a running command");
  await page.keyboard.type("sleep 30");
  await page.keyboard.press("Enter");
  await until(() => tmux("display-message", "-p", "-t", pane, "#{pane_current_command}") === "sleep", "sleep to start");
  await page.click('#keys button:text-is("Ctrl")');
  await page.keyboard.type("c");
  await until(() => tmux("display-message", "-p", "-t", pane, "#{pane_current_command}") === "sh", "Ctrl-C to reach the pane");

  step("rotate: the resize reaches tmux");
  const before = tmux("display-message", "-p", "-t", pane, "#{pane_width}");
  await page.setViewportSize({ width: PORTRAIT.height, height: PORTRAIT.width });
  await page.waitForFunction((w) => {
    const c = document.getElementById("term")?.dataset.cols;
    return c !== undefined && c !== w;
  }, before);
  const cols = Number(await page.getAttribute("#term", "data-cols"));
  await until(() => tmux("display-message", "-p", "-t", pane, "#{pane_width}") === String(cols),
    `tmux pane width ${cols} (was ${before})`);
  await page.screenshot({ path: join(shots, "terminal-landscape.png") });
  await page.setViewportSize(PORTRAIT);

  step("reload: reconnects without pairing again");
  await page.reload();
  await page.waitForSelector('[data-session="web"]', { timeout: STEP_MS });
  await page.screenshot({ path: join(shots, "phone.png") });

  step("a QR URL for another computer: one question before replacing the pairing");
  const home2 = mkdtempSync(join(tmpdir(), "muxlink-web-e2e-2-"));
  cleanups.push(() => rmSync(home2, { recursive: true, force: true }));
  const env2 = { ...env, MUXLINK_HOME: home2, MUXLINK_HOST_NAME: "web-e2e-other" };
  execFileSync(MUXLINK, ["init"], { env: { ...process.env, ...env2 } });
  const pair2 = start(MUXLINK, ["pair", "--yes", "--payload-only"], env2);
  const payload2 = (await pair2.wait((l) => l.startsWith("PAIRING_PAYLOAD "), "the second pairing payload")).slice("PAIRING_PAYLOAD ".length);
  await page.evaluate((h) => { location.hash = h; }, encodeURIComponent(payload2));
  await page.waitForSelector("#replace", { timeout: STEP_MS });
  await fragmentGone(page);
  await page.screenshot({ path: join(shots, "replace-question.png") });
  await page.click("#replace-no");
  await page.waitForSelector("#replace", { state: "detached", timeout: STEP_MS });
  if (pair2.lines.some((l) => l.startsWith("PAIRED "))) fail("the other computer was paired although the user kept the pairing");
  await page.waitForSelector('[data-session="web"]', { timeout: STEP_MS });
  if ((await page.textContent("#state")) !== "connected") fail("keeping the pairing lost the connection");
  pair2.child.kill("SIGTERM");

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
  if (await page.isVisible("#latency")) fail("the latency readout shows while not connected");
  const notice = await page.textContent("#notice");
  if (state !== "not verified" || !/could not prove the pairing key/.test(notice ?? ""))
    fail(`expected the could-not-prove message, got ${state}: ${notice}`);
  if (await page.$(".xterm")) fail("a terminal is still on screen after the key check failed");
  await page.screenshot({ path: join(shots, "wrong-key.png") });

  step("the other computer's QR URL again: replacing the pairing pairs with it");
  // A new `muxlink pair` there: the server restart above dropped the earlier pairing code.
  const pair3 = start(MUXLINK, ["pair", "--yes", "--payload-only"], env2);
  const payload3 = (await pair3.wait((l) => l.startsWith("PAIRING_PAYLOAD "), "the third pairing payload")).slice("PAIRING_PAYLOAD ".length);
  await page.evaluate((h) => { location.hash = h; }, payload3);
  await page.waitForSelector("#replace", { timeout: STEP_MS });
  await page.click("#replace-yes");
  await pair3.wait((l) => l.startsWith("PAIRED "), "PAIRED from the second computer's `muxlink pair`");
  await page.waitForFunction(() => /web-e2e-other/.test(document.querySelector("#waiting h2")?.textContent ?? ""), null, { timeout: STEP_MS });
  await fragmentGone(page);
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
