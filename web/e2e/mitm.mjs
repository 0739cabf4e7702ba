// The web client in headless Chromium behind a hostile signaling server: the
// Rust test `web_client_refuses_a_man_in_the_middle_in_chromium`
// (tests/hostile_server.rs) runs the real server, a relay in front of it that
// serves the genuine page and plays man in the middle on the DataChannel, and
// the real agent. This script only drives the browser: it opens the QR URL
// through the relay, pairs, and then waits for the page to refuse the channel
// (terminal-protocol.md §12): it must say the computer "could not prove the
// pairing key" and never show a session list or a terminal. With
// EXPECT=no-channel (a relay whose description Chromium refuses outright) it
// watches the page for OBSERVE_MS instead and only checks that nothing of the
// host ever appears. It prints MITM_REFUSED or MITM_FAILED.
// Env: RELAY_URL, PAYLOAD, HMAC_SECRET (request signing, optional), EXPECT
// (unverified | no-channel), CHROMIUM (default /usr/bin/chromium), SHOTS
// (screenshot dir, optional). Modelled on e2e/browser.mjs.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const RELAY_URL = process.env.RELAY_URL ?? "";
const PAYLOAD = process.env.PAYLOAD ?? "";
const HMAC_SECRET = process.env.HMAC_SECRET ?? "";
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const SHOTS = process.env.SHOTS;
const EXPECT = process.env.EXPECT ?? "unverified";
const OBSERVE_MS = 20_000;
const STEP_MS = 30_000;
// The relay connects after pairing; the phone then waits 10 s for auth_ok.
const REFUSAL_MS = 60_000;

function step(text) {
  console.log(`==> ${text}`);
}

async function main(browser) {
  if (!RELAY_URL || !PAYLOAD) throw new Error("RELAY_URL and PAYLOAD are required");
  const ctx = await browser.newContext({ viewport: { width: 375, height: 740 }, hasTouch: true });
  const page = await ctx.newPage();
  page.on("console", (m) => process.env.E2E_VERBOSE && console.log(`    [page] ${m.text()}`));
  const shot = async (name) => {
    if (SHOTS) {
      mkdirSync(SHOTS, { recursive: true });
      await page.screenshot({ path: join(SHOTS, name) });
    }
  };

  step("chromium opens the QR URL through the relay and pairs");
  // The page pairs from the QR URL by itself; a server with a signing secret
  // first makes it ask for the secret, and it pairs once that is entered.
  await page.goto(`${RELAY_URL}/#${PAYLOAD}`);
  if (HMAC_SECRET) {
    await page.waitForSelector('#pairing[data-need-secret="missing"] #hmac', { timeout: STEP_MS });
    await page.fill("#hmac", HMAC_SECRET);
    await page.press("#hmac", "Enter");
  }
  console.log("BROWSER_PAIRING");

  step(`the relay sits in the middle of the channel: the page must refuse it (${EXPECT})`);
  // Polled on every frame: a session list or a terminal would mean the page
  // trusted the channel, however briefly.
  const watch = (pattern) => page.waitForFunction((p) => {
    if (document.querySelector("[data-session], .xterm")) window.__mitmLeak = true;
    return p !== null && new RegExp(p).test(document.body.innerText);
  }, pattern, { timeout: EXPECT === "no-channel" ? OBSERVE_MS : REFUSAL_MS }).then(() => true, () => false);
  const refused = EXPECT === "no-channel"
    ? !(await watch(null))
    : await watch("could not prove the pairing key");
  const state = (await page.textContent("#state")) ?? "";
  const notice = (await page.textContent("#notice")) ?? "";
  const leak = await page.evaluate(() => window.__mitmLeak === true || document.querySelector("[data-session], .xterm") !== null);
  await shot(`mitm-${EXPECT}.png`);
  if (!refused) throw new Error(`no refusal within ${REFUSAL_MS} ms; state ${state}: ${notice}\n${await page.evaluate(() => document.body.innerText)}`);
  if (leak) throw new Error(`the page showed sessions or a terminal (state ${state}: ${notice})`);
  console.log(`MITM_REFUSED state=${state} notice=${notice}`);
}

let code = 0;
let browser;
try {
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
      "--no-first-run", "--disable-component-update", "--disable-sync", "--allow-loopback-in-peer-connection",
      "--disable-features=WebRtcHideLocalIpsWithMdns"],
  });
  await main(browser);
} catch (e) {
  console.log(`MITM_FAILED ${String(e.stack ?? e).replaceAll("\n", " | ")}`);
  code = 1;
} finally {
  try { await browser?.close(); } catch { /* best effort */ }
}
process.exit(code);
