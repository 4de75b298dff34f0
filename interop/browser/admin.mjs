// The Socket.IO Admin UI, served by the chat example, in headless Chromium
// (playwright-core).
//
// Usage: node admin.mjs <url of chat 1> <url of chat 2> <screenshot.png> <password>
//
// Both chats are instrumented (server ids "chat-1" and "chat-2") and in one
// Redis cluster; chat 1 serves the UI at /admin/. Official clients join
// chat rooms on both; the UI, logged in as admin, lists their sockets and
// rooms and both servers, and its disconnect button on a socket
// disconnects that client ("io server disconnect" on its side).
//
// Prints JSON lines: {"passed": check} as checks pass, then the result,
// with an "error" field and exit code 1 on a failure or a timeout.
import { chromium } from "playwright-core";
import { io } from "socket.io-client";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const [url1, url2, screenshot, password] = process.argv.slice(2);
if (!url1 || !url2 || !screenshot || !password) {
  console.error("usage: node admin.mjs <url 1> <url 2> <screenshot.png> <password>");
  process.exit(2);
}

const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
// Generous: the machine may be busy.
const WAIT = 30000;
const result = { ok: false, checks: [] };
let context = null;
const clients = [];
const userDataDir = mkdtempSync(join(tmpdir(), "admin-browser-"));

const line = (obj) => console.log(JSON.stringify(obj));

async function finish(code) {
  line(result);
  for (const c of clients) c.close();
  try {
    if (context) await Promise.race([context.close(), new Promise((r) => setTimeout(r, 5000))]);
  } catch (_) {
    // The browser is going away anyway.
  }
  try {
    rmSync(userDataDir, { recursive: true, force: true });
  } catch (_) {
    // A leftover temporary folder is harmless.
  }
  process.exit(code);
}

setTimeout(() => {
  result.error = result.error || `timed out; last check: ${result.checks.at(-1) ?? "none"}`;
  finish(1);
}, 240000);

function check(what, cond, detail) {
  if (!cond) throw new Error(`${what}${detail === undefined ? "" : `: ${JSON.stringify(detail)}`}`);
  result.checks.push(what);
  line({ passed: what });
}

/** An official client that joins chat room `room` as `name`. */
async function chatter(url, room, name) {
  const s = io(url, { transports: ["websocket"], reconnection: false, forceNew: true });
  clients.push(s);
  await new Promise((resolve, reject) => {
    s.once("connect", resolve);
    s.once("connect_error", reject);
  });
  const joined = await s.timeout(WAIT).emitWithAck("join", { room, name });
  if (!joined.ok) throw new Error(`${name} could not join ${room}: ${JSON.stringify(joined)}`);
  s.savedId = s.id;
  return s;
}

/** Waits until the page shows `text` somewhere. */
async function waitText(page, text, what) {
  try {
    await page.waitForFunction((t) => document.body.innerText.includes(t), text, { timeout: WAIT });
  } catch (e) {
    throw new Error(`${what}: "${text}" not shown`);
  }
}

try {
  const ana = await chatter(url1, "lobby", "ana");
  const bob = await chatter(url1, "kitchen", "bob");
  const cleo = await chatter(url2, "lobby", "cleo");
  check("three chat clients joined their rooms on both servers", ana.id && bob.id && cleo.id);

  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 800 },
    args: ["--no-sandbox", "--headless", "--disable-gpu", "--disable-quic", "--no-first-run"],
  });
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  result.pageErrors = errors;
  const offsite = [];
  page.on("request", (req) => {
    const u = new URL(req.url());
    if (u.origin !== new URL(url1).origin) offsite.push(req.url());
  });
  // The UI keeps the server's URL in localStorage: prefilled here, as a
  // user who connected before would find it.
  await page.addInitScript((u) => {
    if (!localStorage.getItem("server_url")) localStorage.setItem("server_url", u);
  }, url1);
  await page.goto(`${url1}/admin/`);
  await page.getByLabel("Username").fill("admin");
  await page.getByLabel("Password").fill("wrong password");
  await page.getByRole("button", { name: "Connect" }).click();
  await waitText(page, "Invalid credentials", "a wrong password is refused");
  check("a wrong password is refused", true);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Connect" }).click();
  await page.getByLabel("Password").waitFor({ state: "hidden" });
  check("logged in as admin", true);

  await page.goto(`${url1}/admin/#/sockets/`);
  for (const [name, s] of [["ana", ana], ["bob", bob], ["cleo", cleo]]) {
    await waitText(page, s.id, `the socket of ${name}`);
  }
  check("the sockets of the chat clients on both servers are listed", true);

  await page.goto(`${url1}/admin/#/rooms/`);
  await waitText(page, "room:lobby", "the lobby");
  await waitText(page, "room:kitchen", "the kitchen");
  check("the chat rooms are listed", true);

  await page.goto(`${url1}/admin/#/servers/`);
  await waitText(page, "chat-1", "the first server");
  await waitText(page, "chat-2", "the second server");
  check("both servers of the cluster are listed", true);

  await page.goto(`${url1}/admin/#/`);
  await page.waitForTimeout(2500); // let the charts draw a few points for the picture
  await page.goto(`${url1}/admin/#/sockets/`);
  await waitText(page, bob.id, "the socket of bob");
  // The page slides in: its transitions done, the picture is sharp.
  await page.waitForFunction(() => document.getAnimations().length === 0, null, { timeout: WAIT });
  await page.screenshot({ path: screenshot, fullPage: true });

  const bobGone = new Promise((resolve) => bob.once("disconnect", resolve));
  const row = page.locator("tr", { hasText: bob.id });
  await row.locator("button").last().click();
  const reason = await Promise.race([
    bobGone,
    new Promise((_, reject) => setTimeout(() => reject(new Error("bob was not disconnected")), WAIT)),
  ]);
  check("the disconnect button disconnects that socket", reason === "io server disconnect", reason);
  // The click also opened the socket's page: back to the list.
  await page.goto(`${url1}/admin/#/sockets/`);
  await waitText(page, ana.id, "the socket of ana");
  await page.waitForFunction((id) => !document.body.innerText.includes(id), bob.savedId, { timeout: WAIT });
  check("the disconnected socket leaves the list", true);
  check("ana and cleo stay connected", ana.connected && cleo.connected);

  check("nothing is loaded from another origin", offsite.length === 0, offsite);
  check("no uncaught error in the page", errors.length === 0, errors);
  result.ok = true;
  await finish(0);
} catch (e) {
  result.error = e.message;
  await finish(1);
}
