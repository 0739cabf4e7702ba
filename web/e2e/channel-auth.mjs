// Channel authentication v2 in a real browser, no muxlink binaries needed:
// builds e2e/channel-auth/ (the web client's HostConnection plus a stand-in
// host in the same page), serves it under the strictest CSP the page's
// connection code must live with, and checks every outcome in headless
// Chromium. Run: node e2e/channel-auth.mjs (CHROMIUM overrides /usr/bin/chromium).
import { createServer } from "node:http";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { extname, join, normalize, resolve } from "node:path";
import { build } from "vite";
import { chromium } from "playwright-core";

const here = resolve(import.meta.dirname, "channel-auth");
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; frame-ancestors 'none'";

const out = mkdtempSync(join(tmpdir(), "muxlink-channel-auth-"));
let server;
let browser;
let code = 0;
try {
  await build({ root: here, configFile: false, logLevel: "warn", build: { outDir: out, emptyOutDir: true } });
  const types = { ".html": "text/html; charset=utf-8", ".js": "text/javascript" };
  server = createServer((req, res) => {
    const path = new URL(req.url, "http://x").pathname;
    const file = normalize(join(out, path === "/" ? "index.html" : path));
    let body;
    try {
      if (!file.startsWith(out)) throw new Error("outside");
      body = readFileSync(file);
    } catch {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "Content-Type": types[extname(file)] ?? "application/octet-stream", "Content-Security-Policy": CSP });
    res.end(body);
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--allow-loopback-in-peer-connection",
      "--disable-features=WebRtcHideLocalIpsWithMdns"],
  });
  const page = await browser.newPage();
  const csp = [];
  page.on("console", (m) => {
    if (process.env.E2E_VERBOSE) console.log(`    [page] ${m.text()}`);
    if (/Content Security Policy/i.test(m.text())) csp.push(m.text());
  });
  await page.goto(`http://127.0.0.1:${server.address().port}/`);
  await page.waitForFunction(() => document.getElementById("out")?.textContent !== "running", null, { timeout: 120_000 });
  const results = JSON.parse(await page.textContent("#out"));
  if (results.error) throw new Error(`harness failed: ${results.error}`);
  const expect = {
    good: /^connected$/,
    restart_ok: /^connected$/,
    restart_other_cert: /^closed: host_proof .*another DTLS fingerprint/,
    event_before_ok: /^host_proof: expected auth_ok, got pong/,
    wrong_mac: /^host_proof: auth_ok\.mac does not match/,
    v1_auth_ok: /^host_proof: auth_ok\.mac is missing/,
    reflected_mac: /^host_proof: auth_ok\.mac does not match/,
    close_after_response: /^host_proof: /,
    silent: /^host_proof: no auth_ok within 10 s/,
    fast: /^connected$/,
    phone_key_wrong: /^host_proof: /,
  };
  // Stream v2: a connected phone opens one fast channel, after auth_ok; a refused one none.
  const FAST = "terminal-fast ordered=false maxRetransmits=0 after auth_ok";
  const fastOk = (r) => {
    if (!/^connected$|another DTLS fingerprint/.test(r.result)) return r.fast.length === 0;
    if (r.fast.length !== 1 || r.fast[0] !== FAST) return false;
    if (r.mode !== "fast") return true;
    // Each byte shown once whatever channel brought it first; the snapshot jumps; input numbered from 0,
    // every message reliably, those of at most 1024 bytes also as fast copies once the attach is confirmed.
    return r.offsets === true && r.shown === "abcdefghij[snap]kl" && r.reliableIn.join() === "0:3,3:3,6:2,8:1500,1508:1"
      && r.fastIn.length > 0 && r.fastIn.every((f) => f === "6:2" || f === "1508:1");
  };
  const failures = [];
  for (const r of results) {
    // Nothing but auth_response before auth_ok; after a refused auth_ok, nothing at all.
    const after = { good: "list_sessions", restart_ok: "list_sessions,ping", restart_other_cert: "list_sessions",
      fast: "list_sessions,input,attach,input,input,input,input" }[r.mode] ?? "";
    const ok = expect[r.mode]?.test(r.result) && r.beforeOk.length === 0 && r.afterAuth.join(",") === after && fastOk(r);
    const v2 = r.mode === "fast" ? `; showed ${JSON.stringify(r.shown)}, input reliable [${r.reliableIn}] fast [${r.fastIn}]` : "";
    console.log(`${ok ? "ok  " : "FAIL"} ${r.mode.padEnd(22)} ${r.result} (${r.ms} ms; host got before auth_ok: [${r.beforeOk}], after: [${r.afterAuth}]; fast channels [${r.fast}]${v2})`);
    if (!ok) failures.push(r.mode);
  }
  if (results.length !== Object.keys(expect).length) failures.push("missing outcomes");
  if (csp.length) failures.push(`CSP violations: ${csp.join(" | ")}`);
  if (failures.length) throw new Error(`channel-auth check failed: ${failures.join(", ")}`);
  console.log("ok: channel authentication v2 checks passed in Chromium");
} catch (e) {
  console.error(e.stack ?? String(e));
  code = 1;
} finally {
  await browser?.close();
  server?.close();
  rmSync(out, { recursive: true, force: true });
}
process.exit(code);
