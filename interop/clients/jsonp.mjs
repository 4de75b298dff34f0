// A JSONP long-polling client, as the 2.x client's JSONP transport speaks
// (it needs a DOM, so it cannot run in node): every poll's answer is run as
// a script in a fresh context whose `___eio[j]` collects the payload, and
// every POST is a form with the payload in `d`. Usage:
//   node jsonp.mjs <url> <text>
// Sends <text> to `echo` and reads `echo-back`; prints one JSON line with
// what came back, the answers' content type, and whether any answer ran
// code other than the callback.
import vm from "node:vm";

const [url, text] = process.argv.slice(2);
const result = {};
const base = `${url}/socket.io/?EIO=3&transport=polling&j=4&b64=1`;
let injected = false;

setTimeout(() => {
  result.error = result.error || "timed out";
  console.log(JSON.stringify(result));
  process.exit(1);
}, 15000);

// Runs a poll's answer as a script; returns the payload its callback got.
function run(script) {
  const calls = [];
  const context = {
    ___eio: { 4: (payload) => calls.push(payload) },
    alert: () => {
      injected = true;
    },
  };
  try {
    vm.runInNewContext(script, context, { timeout: 1000 });
  } catch (e) {
    throw new Error(`the answer is not a script (${e}): ${script}`);
  }
  if (calls.length !== 1) throw new Error(`the callback ran ${calls.length} times: ${script}`);
  return calls[0];
}

// The packets of a v3 text payload (lengths in UTF-16 code units, as JS
// strings count).
function packets(payload) {
  const out = [];
  let i = 0;
  while (i < payload.length) {
    const colon = payload.indexOf(":", i);
    const len = Number(payload.slice(i, colon));
    out.push(payload.slice(colon + 1, colon + 1 + len));
    i = colon + 1 + len;
  }
  return out;
}

async function poll(sid) {
  const res = await fetch(sid ? `${base}&sid=${sid}` : base);
  result.contentType = res.headers.get("content-type");
  const body = await res.text();
  result.rawSeparators = result.rawSeparators || /[\u2028\u2029]/.test(body);
  // The answer from the echo's packet on, as written (escaped), to compare
  // servers byte for byte.
  const echo = body.lastIndexOf('42[\\"echo-back');
  if (echo >= 0) result.rawEcho = body.slice(echo);
  return packets(run(body));
}

// The 2.x client's JSONP escaping: a literal `\n` as `\\n`, a newline as `\n`.
function form(payload) {
  const escaped = payload.replace(/\\n/g, "\\\n").replace(/\n/g, "\\n");
  return `d=${encodeURIComponent(escaped)}`;
}

try {
  const open = await poll();
  const sid = JSON.parse(open[0].slice(1)).sid;
  const seen = open.slice(1);
  const packet = `42${JSON.stringify(["echo", text])}`;
  const res = await fetch(`${base}&sid=${sid}`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: form(`${packet.length}:${packet}`),
  });
  result.postAnswer = await res.text();
  while (!seen.some((p) => p.startsWith("42"))) {
    seen.push(...(await poll(sid)));
  }
  const [event, ...args] = JSON.parse(seen.find((p) => p.startsWith("42")).slice(2));
  result.event = event;
  result.args = args;
  result.injected = injected;
  console.log(JSON.stringify(result));
  process.exit(0);
} catch (e) {
  result.error = String(e && e.stack ? e.stack : e);
  console.log(JSON.stringify(result));
  process.exit(1);
}
