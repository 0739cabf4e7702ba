// A probe the browser e2e test installs in the page before it loads
// (`BrowserContext.addInitScript`, outside the page's CSP): it watches the
// stream v2 fast channel (`terminal-fast`) the page opens and reports on the
// console, so the test sees the channel's options and its traffic without
// the page putting anything on `window`. The page's code is not changed:
// the probe wraps `createDataChannel` and listens beside the page's handlers.
// It also stands in for a network drop: a `muxlink-e2e-drop` event on
// `document` closes the page's `terminal` channel, as a lost peer would.

/** Runs in the page: reports `muxlink-fast created|open|close|tx|rx …` lines on the console. */
export function fastProbeScript() {
  const Native = window.RTCPeerConnection;
  let terminal;
  window.RTCPeerConnection = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener("datachannel", (e) => {
        if (e.channel.label === "terminal") terminal = e.channel;
      });
    }
  };
  document.addEventListener("muxlink-e2e-drop", () => terminal?.close());

  const create = RTCPeerConnection.prototype.createDataChannel;
  RTCPeerConnection.prototype.createDataChannel = function (label, init) {
    const ch = create.call(this, label, init);
    if (label !== "terminal-fast") return ch;
    console.debug(`muxlink-fast created ordered=${ch.ordered} maxRetransmits=${ch.maxRetransmits}`);
    ch.addEventListener("open", () => console.debug("muxlink-fast open"));
    ch.addEventListener("close", () => console.debug("muxlink-fast close"));
    ch.addEventListener("message", (e) => console.debug(`muxlink-fast rx ${e.data.byteLength ?? e.data.length}`));
    const send = ch.send;
    ch.send = function (data) {
      console.debug(`muxlink-fast tx ${data.byteLength ?? data.length}`);
      return send.call(this, data);
    };
    return ch;
  };
}

/** Counts the probe's reports from a page's console messages. */
export class FastProbe {
  created = [];
  opened = 0;
  closed = 0;
  tx = 0;
  rx = 0;
  /** Feed every console message text of the page here. */
  feed(text) {
    const m = /^muxlink-fast (\w+)(?: (.*))?$/.exec(text);
    if (!m) return;
    if (m[1] === "created") this.created.push(m[2]);
    else if (m[1] === "open") this.opened++;
    else if (m[1] === "close") this.closed++;
    else if (m[1] === "tx") this.tx++;
    else if (m[1] === "rx") this.rx++;
  }
}
