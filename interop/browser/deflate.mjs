// WebSocket compression (permessage-deflate) between headless Chromium and
// the server, seen on the wire through a proxy that reads every frame.
//
// Usage: node deflate.mjs <url>
//
// A page loads the official client bundle (socket.io-client's dist build),
// connects over WebSocket through the proxy, sends a large event and waits
// for the server's answers (big-back, big-plain, bcast-plain) and the
// acknowledgement. Prints one JSON line: the result, with what the proxy
// saw; on a failure or a timeout it has an "error" field and the exit code
// is 1.
import { chromium } from "playwright-core";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { startProxy } from "../clients/wsproxy.mjs";

const [url] = process.argv.slice(2);
if (!url) {
  console.error("usage: node deflate.mjs <url>");
  process.exit(2);
}
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const here = dirname(fileURLToPath(import.meta.url));
const bundle = join(here, "../node_modules/socket.io-client/dist/socket.io.min.js");
const result = {};
let context = null;
let proxy = null;
const userDataDir = mkdtempSync(join(tmpdir(), "deflate-browser-"));

async function finish(code) {
  if (proxy) {
    result.seen = proxy.seen;
    proxy.close();
  }
  console.log(JSON.stringify(result));
  try {
    if (context) await Promise.race([context.close(), new Promise((r) => setTimeout(r, 5000))]);
  } catch (_) {
    // The browser is going away anyway.
  }
  rmSync(userDataDir, { recursive: true, force: true });
  process.exit(code);
}

setTimeout(() => {
  result.error = result.error || "timed out";
  finish(1);
}, 60000);

async function main() {
  const target = new URL(url);
  proxy = await startProxy(target.hostname, Number(target.port));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--headless", "--disable-gpu", "--no-first-run"],
  });
  const page = context.pages()[0] || (await context.newPage());
  await page.addScriptTag({ path: bundle });
  result.userAgent = await page.evaluate(() => navigator.userAgent);
  const got = await page.evaluate(async (at) => {
    let text = "";
    for (let i = 0; text.length < 20000; i++) text += `{"user":"u${i % 50}","n":${i}},`;
    text = text.slice(0, 20000);
    const socket = io(at, { transports: ["websocket"], reconnection: false });
    await new Promise((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("connect_error", (e) => reject(new Error(`connect_error: ${e.message}`)));
    });
    const wait = (name) => new Promise((resolve) => socket.once(name, resolve));
    const answers = Promise.all([wait("big-back"), wait("big-plain"), wait("bcast-plain")]);
    const length = await socket.emitWithAck("big", text);
    const [back, plain, bcast] = await answers;
    socket.disconnect();
    return { ackedLength: length, back: back === text, plain: plain === text, bcast: bcast === text };
  }, `http://127.0.0.1:${proxy.port}`);
  Object.assign(result, got);
  await new Promise((r) => setTimeout(r, 200));
  await finish(0);
}

main().catch((e) => {
  result.error = String(e && e.stack ? e.stack : e);
  finish(1);
});
