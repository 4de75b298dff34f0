// The chat example end to end in headless Chromium (playwright-core).
//
// Usage: node chat.mjs <url> <screenshot.png> <proxy url>
//
// Two pages chat in one room and see each other's messages, presence and
// typing; a third page in another room sees none of it; leaving, rejoining
// and reloading a page work; a fourth page, whose connection goes through a
// proxy that cuts it, comes back with every message it missed, once, and
// without joining again; when the server goes away every page shows the
// reconnecting banner and, once it is back, rejoins its rooms.
//
// Prints JSON lines. Three of them ask the process that started the server
// for something, and wait for a line on stdin before going on:
//   {"step":"cut"}           cut every connection through the proxy
//   {"step":"stop-server"}   stop the server (the pages must see it gone)
//   {"step":"start-server"}  start it again at the same address
// The last line is the result; on a failure or a timeout it has an "error"
// field and the exit code is 1.
import { chromium } from "playwright-core";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

const [url, screenshot, proxyUrl] = process.argv.slice(2);
if (!url || !screenshot || !proxyUrl) {
  console.error("usage: node chat.mjs <url> <screenshot.png> <proxy url>");
  process.exit(2);
}

const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const WAIT = 15000;
const result = { ok: false, checks: [] };
let context = null;
const userDataDir = mkdtempSync(join(tmpdir(), "chat-browser-"));

function line(obj) {
  console.log(JSON.stringify(obj));
}

async function finish(code) {
  line(result);
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

const watchdog = setTimeout(() => {
  result.error = result.error || `timed out; last check: ${result.checks.at(-1) ?? "none"}`;
  finish(1);
}, 240000);

function check(what, cond, detail) {
  if (!cond) throw new Error(`${what}${detail === undefined ? "" : `: ${JSON.stringify(detail)}`}`);
  result.checks.push(what);
  line({ passed: what });
}

// stdin, one line per answer.
const answers = [];
const waiting = [];
createInterface({ input: process.stdin }).on("line", (l) => {
  const w = waiting.shift();
  if (w) w(l);
  else answers.push(l);
});
function ask(step) {
  line({ step });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer to ${step}`)), 30000);
    const done = (l) => {
      clearTimeout(timer);
      resolve(l);
    };
    if (answers.length) done(answers.shift());
    else waiting.push(done);
  });
}

// ----- page helpers -----

/** A page, with what its Socket.IO connection received (WebSocket frames
 * and long-polling responses) recorded as text. */
async function openPage(label, at = url) {
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  page.received = [];
  page.sent = [];
  page.websockets = 0;
  page.errors = [];
  // Uncaught exceptions only: failed requests while the server is away are
  // expected and logged by the browser as console errors.
  page.on("pageerror", (e) => page.errors.push(e.message));
  page.on("websocket", (ws) => {
    page.websockets += 1;
    ws.on("framereceived", (f) => page.received.push(String(f.payload)));
    ws.on("framesent", (f) => page.sent.push(String(f.payload)));
  });
  // What it sends over long-polling, too.
  page.on("request", (req) => {
    if (req.url().includes("/socket.io/?") && req.method() === "POST") page.sent.push(req.postData() || "");
  });
  page.on("response", async (res) => {
    if (res.url().includes("/socket.io/?") && res.request().method() === "GET") {
      try {
        page.received.push(await res.text());
      } catch (_) {
        // A response that went away with its page.
      }
    }
  });
  page.label = label;
  await page.goto(at);
  return page;
}

async function login(page, name, room) {
  await page.fill("#name-input", name);
  await page.fill("#room-input", room);
  await page.click("#login-submit");
  await page.waitForSelector(`#rooms li[data-room="${room}"]`);
  await page.waitForSelector(`#members li[data-name="${name}"]`);
}

async function members(page) {
  return page.$$eval("#members li", (lis) => lis.map((li) => li.dataset.name));
}

/** Waits until the member list shows exactly `names` (any order). */
async function waitMembers(page, names) {
  const want = [...names].sort();
  try {
    await page.waitForFunction(
      (want) => {
        const got = [...document.querySelectorAll("#members li")].map((li) => li.dataset.name).sort();
        return JSON.stringify(got) === JSON.stringify(want);
      },
      want,
      { timeout: WAIT },
    );
  } catch (_) {
    throw new Error(`${page.label}: members ${JSON.stringify(await members(page))}, expected ${JSON.stringify(want)}`);
  }
}

async function texts(page) {
  return page.$$eval("#messages li.message", (lis) =>
    lis.map((li) => ({ name: li.dataset.name, text: li.querySelector(".text").textContent, status: li.dataset.status })),
  );
}

async function waitText(page, name, text) {
  try {
    await page.waitForFunction(
      ([name, text]) =>
        [...document.querySelectorAll("#messages li.message")].some(
          (li) => li.dataset.name === name && li.querySelector(".text").textContent === text,
        ),
      [name, text],
      { timeout: WAIT },
    );
  } catch (_) {
    throw new Error(`${page.label} never showed ${name}: ${text}; it shows ${JSON.stringify(await texts(page))}`);
  }
}

/** Records the statuses each own message goes through, from its insertion. */
async function watchStatuses(page) {
  await page.evaluate(() => {
    window.__statuses = {};
    const note = (li) => {
      if (!li.classList || !li.classList.contains("own")) return;
      const seq = li.dataset.seq;
      const seen = (window.__statuses[seq] ||= []);
      if (seen.at(-1) !== li.dataset.status) seen.push(li.dataset.status);
    };
    new MutationObserver((records) => {
      for (const r of records) {
        if (r.type === "attributes") note(r.target);
        for (const n of r.addedNodes || []) note(n);
      }
    }).observe(document.getElementById("messages"), {
      childList: true,
      subtree: true,
      attributes: true,
      attributeFilter: ["data-status"],
    });
  });
}

async function send(page, text) {
  await page.fill("#composer-input", text);
  await page.press("#composer-input", "Enter");
  try {
    await page.waitForFunction(
      (text) =>
        [...document.querySelectorAll("#messages li.message.own")].some(
          (li) => li.querySelector(".text").textContent === text && li.dataset.status === "sent" && li.dataset.id,
        ),
      text,
      { timeout: WAIT },
    );
  } catch (_) {
    throw new Error(`${page.label}: "${text}" never turned sent; it shows ${JSON.stringify(await texts(page))}`);
  }
}

async function typingText(page) {
  return page.$eval("#typing", (el) => el.textContent);
}

async function bannerVisible(page) {
  return page.$eval("#banner", (el) => !el.hidden && el.getBoundingClientRect().height > 0);
}

async function waitBanner(page, visible) {
  try {
    await page.waitForFunction(
      (visible) => {
        const el = document.getElementById("banner");
        return !el.hidden === visible;
      },
      visible,
      { timeout: 30000 },
    );
  } catch (_) {
    throw new Error(`${page.label}: the banner is ${visible ? "not shown" : "still shown"}`);
  }
}

// ----- the scenario -----

const ANA = "Ana Lima";
const BO = "Bo Chen";
const CY = "Cy Park";
const DI = "Di Okafor";

async function main() {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--headless",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    viewport: { width: 1280, height: 800 },
    locale: "en-US",
    timezoneId: "UTC",
  });

  // Names and rooms; presence.
  const a = await openPage("ana");
  await login(a, ANA, "general");
  const b = await openPage("bo");
  await login(b, BO, "general");
  const c = await openPage("cy");
  await login(c, CY, "random");
  await waitMembers(a, [ANA, BO]);
  await waitMembers(b, [ANA, BO]);
  await waitMembers(c, [CY]);
  check("presence: both members of general see each other, random sees its own", true);

  // Typing.
  await a.type("#composer-input", "Hi Bo", { delay: 20 });
  await b.waitForFunction((n) => document.getElementById("typing").textContent.includes(n), ANA, {
    timeout: WAIT,
  });
  check("typing: Bo sees Ana typing", (await typingText(b)).includes(`${ANA} is typing`), await typingText(b));
  check("typing: Ana does not see herself typing", (await typingText(a)) === "", await typingText(a));
  await a.fill("#composer-input", "");

  // Messages: sending, then sent; the other member sees them.
  await watchStatuses(a);
  const m1 = "Hi Bo! Is the new build ready to try?";
  await send(a, m1);
  const statuses = Object.values(await a.evaluate(() => window.__statuses));
  result.statuses = statuses;
  check("ack: the message is shown sending, then sent", statuses.length === 1 &&
    JSON.stringify(statuses[0]) === JSON.stringify(["sending", "sent"]), statuses);
  await waitText(b, ANA, m1);
  check("Bo receives Ana's message", true);
  check("typing: Bo's indicator goes when Ana's message comes", (await typingText(b)) === "", await typingText(b));
  const m2 = "Yes, it went out this morning. Try reloading the page.";
  await send(b, m2);
  await waitText(a, BO, m2);
  check("Ana receives Bo's message", true);

  // Another room: Cy's message stays there.
  const m3 = "Anyone around in random?";
  await send(c, m3);
  await b.type("#composer-input", "one more thing", { delay: 20 });
  await a.waitForFunction((n) => document.getElementById("typing").textContent.includes(n), BO, {
    timeout: WAIT,
  });
  await b.fill("#composer-input", "");
  // Let anything that would wrongly reach Cy arrive before looking.
  await c.waitForTimeout(500);
  const cyTexts = (await texts(c)).map((m) => m.text);
  check("isolation: Cy shows only random's messages", JSON.stringify(cyTexts) === JSON.stringify([m3]), cyTexts);
  check("isolation: Cy shows no one typing", (await typingText(c)) === "", await typingText(c));
  const leaked = c.received.filter((f) => f.includes("general") || f.includes(m1) || f.includes(m2));
  check("isolation: nothing of general reached Cy's connection", leaked.length === 0, leaked);
  const leakedBack = [...a.received, ...b.received].filter((f) => f.includes(m3) || f.includes("random"));
  check("isolation: nothing of random reached Ana or Bo", leakedBack.length === 0, leakedBack);

  // Leave and join again.
  await b.click("#leave-button");
  await waitMembers(a, [ANA]);
  await a.waitForFunction((n) => [...document.querySelectorAll("#messages li.notice")]
    .some((li) => li.textContent === `${n} left`), BO, { timeout: WAIT });
  check("leave: Ana sees Bo leave", true);
  await b.fill("#join-input", "general");
  await b.click("#join-submit");
  await waitMembers(a, [ANA, BO]);
  await waitMembers(b, [ANA, BO]);
  await waitText(b, ANA, m1);
  await waitText(b, BO, m2);
  check("join: Bo is back and gets the room's last messages", true);

  // Reloading a page reconnects it, with its name, rooms and history.
  await b.reload();
  await b.waitForSelector('#rooms li[data-room="general"]');
  await waitMembers(b, [ANA, BO]);
  await waitText(b, ANA, m1);
  check("reload: Bo's page comes back in general with the history", (await b.$eval("#me-name", (e) => e.textContent)) === BO);
  await waitMembers(a, [ANA, BO]);
  const m4 = "Reloaded, and the history is still here.";
  await send(b, m4);
  await waitText(a, BO, m4);
  check("reload: Ana receives Bo's message from the reloaded page", true);

  // A page's connection is cut for a moment (through a proxy) while the
  // room goes on: it comes back in the same session, with what it missed.
  const d = await openPage("di", proxyUrl);
  await login(d, DI, "general");
  await waitMembers(a, [ANA, BO, DI]);
  for (let i = 0; d.websockets === 0 && i < 100; i++) await d.waitForTimeout(100);
  check("recovery: Di's page is on a WebSocket through the proxy", d.websockets > 0, d.websockets);
  await d.waitForTimeout(300);
  const sentBefore = d.sent.length;
  await ask("cut");
  await waitBanner(d, true);
  const missed = ["Di, you dropped off for a second.", "These came while you were away."];
  for (const text of missed) await send(a, text);
  await waitBanner(d, false);
  for (const text of missed) await waitText(d, ANA, text);
  await d.waitForFunction(() => [...document.querySelectorAll("#messages li.notice")]
    .some((li) => li.textContent === "Reconnected: missed messages recovered"), null, { timeout: WAIT });
  check("recovery: Di's page says it recovered and shows the messages it missed", true);
  const copies = missed.map((text) => d.received.reduce((n, f) => n + f.split(text).length - 1, 0));
  check("recovery: each missed message reached Di's page once", copies.every((n) => n === 1), copies);
  const joins = d.sent.slice(sentBefore).filter((f) => f.includes('"join"'));
  check("recovery: Di's page did not join again", joins.length === 0, joins);
  await waitMembers(a, [ANA, BO, DI]);
  const m6 = "Back, and nothing lost.";
  await send(d, m6);
  await waitText(a, DI, m6);
  check("recovery: Di's messages flow again", true);
  await d.close();
  await waitMembers(a, [ANA, BO]);

  // The server goes away: a banner; it comes back: the pages rejoin.
  const pages = [a, b, c];
  await ask("stop-server");
  for (const p of pages) await waitBanner(p, true);
  check("reconnect: every page shows the reconnecting banner", (await bannerVisible(a)) && (await bannerVisible(c)));
  await ask("start-server");
  for (const p of pages) await waitBanner(p, false);
  await waitMembers(a, [ANA, BO]);
  await waitMembers(b, [ANA, BO]);
  await waitMembers(c, [CY]);
  check("reconnect: the banner goes and the pages rejoin their rooms", true);
  const m5 = "The server restarted and we were back in the room by ourselves.";
  await send(a, m5);
  await waitText(b, ANA, m5);
  check("reconnect: messages flow again", true);

  // The screenshot: a conversation, a third member, a second room with an
  // unread message, and someone typing. Ana's page is reloaded first so that
  // it shows the room as a newcomer would (the history, no notices).
  const conversation = [
    [b, BO, "Nice. Members came back on their own too."],
    [a, ANA, "History lives in memory, so it starts over after a restart."],
    [b, BO, "Fine for a demo. Shall we ship it?"],
  ];
  for (const [page, name, text] of conversation) {
    await send(page, text);
    await waitText(page === a ? b : a, name, text);
  }
  await a.reload();
  await waitMembers(a, [ANA, BO]);
  await waitText(a, BO, conversation[2][2]);
  await c.fill("#join-input", "general");
  await c.click("#join-submit");
  await waitMembers(a, [ANA, BO, CY]);
  const hello = "Hi both! Count me in for the release notes.";
  await send(c, hello);
  await waitText(a, CY, hello);
  await a.fill("#join-input", "random");
  await a.click("#join-submit");
  await waitMembers(a, [ANA, CY]);
  await a.click('#rooms li[data-room="general"] button');
  await waitMembers(a, [ANA, BO, CY]);
  await c.click('#rooms li[data-room="random"] button');
  await send(c, "Lunch at noon?");
  await a.waitForSelector('#rooms li[data-room="random"] .badge');
  await b.type("#composer-input", "Ship", { delay: 20 });
  await a.waitForFunction((n) => document.getElementById("typing").textContent.includes(n), BO, {
    timeout: WAIT,
  });
  await a.evaluate(() => document.activeElement && document.activeElement.blur());
  await a.screenshot({ path: screenshot });
  check("screenshot saved", true);

  const errors = pages.flatMap((p) => p.errors.map((e) => `${p.label}: ${e}`));
  check("no script errors in the pages", errors.length === 0, errors);
  result.ok = true;
}

main().then(
  () => {
    clearTimeout(watchdog);
    finish(0);
  },
  (e) => {
    clearTimeout(watchdog);
    result.error = e && e.stack ? e.stack : String(e);
    finish(1);
  },
);
