// WebSocket compression (permessage-deflate) against the server, seen on the
// wire through a proxy that reads every frame (wsproxy.mjs).
// Usage: node deflate.mjs <scenario> <url> [args...]
// Prints JSON lines; the last one holds the result. On a failure or a
// timeout the result has an "error" field and the exit code is 1.
//
// Scenarios:
//   official   socket.io-client over WebSocket (it offers permessage-deflate
//              by default, through `ws`): a large event each way, the server
//              answering with compress(true) and compress(false), plus small
//              events; the result lists every message seen each way.
//   ws-params  a `ws` client speaking Engine.IO by hand, offering every
//              parameter (no context takeover both ways, both window sizes
//              limited): the extension as the client accepted it, and a large
//              message each way.
import { io } from "socket.io-client";
import WebSocket from "ws";
import { startProxy } from "./wsproxy.mjs";

const [scenario, url, ...args] = process.argv.slice(2);
const result = { scenario };
let proxy = null;

function finish(code) {
  if (proxy) {
    result.seen = proxy.seen;
    proxy.close();
  }
  console.log(JSON.stringify(result));
  setTimeout(() => process.exit(code), 200);
}

setTimeout(() => {
  result.error = result.error || "timed out";
  finish(1);
}, 20000);

function once(emitter, event) {
  return new Promise((resolve) => emitter.once(event, (...a) => resolve(a)));
}

// A large JSON-friendly text that compresses well, and is not all one byte.
function bigText(n) {
  let s = "";
  for (let i = 0; s.length < n; i++) s += `{"user":"u${i % 50}","text":"hello there number ${i}"},`;
  return s.slice(0, n);
}

async function official() {
  const target = new URL(url);
  proxy = await startProxy(target.hostname, Number(target.port));
  const socket = io(`http://127.0.0.1:${proxy.port}`, {
    transports: ["websocket"],
    reconnection: false,
  });
  await new Promise((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("connect_error", (e) => reject(new Error(`connect_error: ${e.message}`)));
  });
  const text = bigText(Number(args[0] || 20000));
  const back = once(socket, "big-back");
  const plain = once(socket, "big-plain");
  const bcast = once(socket, "bcast-plain");
  const acked = socket.emitWithAck("big", text);
  const [[gotBack], [gotPlain], [gotBcast], length] = await Promise.all([back, plain, bcast, acked]);
  result.bigBack = gotBack === text;
  result.bigPlain = gotPlain === text;
  result.bcastPlain = gotBcast === text;
  result.ackedLength = length;
  const small = once(socket, "small-back");
  socket.emit("small", "hi");
  result.small = (await small)[0];
  socket.disconnect();
  finish(0);
}

// Engine.IO and Socket.IO spoken by hand over `ws`.
async function wsParams() {
  const target = new URL(url);
  proxy = await startProxy(target.hostname, Number(target.port));
  const ws = new WebSocket(`ws://127.0.0.1:${proxy.port}/socket.io/?EIO=4&transport=websocket`, {
    perMessageDeflate: {
      serverNoContextTakeover: true,
      clientNoContextTakeover: true,
      serverMaxWindowBits: Number(args[0] || 10),
      clientMaxWindowBits: Number(args[1] || 9),
      threshold: 1024,
    },
  });
  const incoming = [];
  const waiting = [];
  ws.on("message", (data, isBinary) => {
    const m = isBinary ? data : data.toString();
    if (m === "2") return ws.send("3");
    const w = waiting.shift();
    if (w) w(m);
    else incoming.push(m);
  });
  const next = () =>
    new Promise((resolve) => (incoming.length ? resolve(incoming.shift()) : waiting.push(resolve)));
  await once(ws, "open");
  result.extensions = ws._extensions ? Object.keys(ws._extensions) : [];
  result.response = proxy.seen.response;
  const open = await next();
  if (!open.startsWith("0{")) throw new Error(`not an open packet: ${open}`);
  ws.send("40");
  const connect = await next();
  if (!connect.startsWith("40{")) throw new Error(`not a connect: ${connect}`);
  const text = bigText(Number(args[2] || 30000));
  ws.send(`421${JSON.stringify(["big", text])}`);
  const got = [];
  while (got.length < 4) got.push(await next());
  const events = got.filter((m) => m.startsWith("42")).map((m) => JSON.parse(m.slice(2)));
  result.events = events.map(([name, data]) => [name, data === text]);
  result.ack = got.find((m) => m.startsWith("431"));
  ws.close(1000);
  await once(ws, "close");
  finish(0);
}

const scenarios = { official, "ws-params": wsParams };
const run = scenarios[scenario];
if (!run) {
  result.error = `unknown scenario ${scenario}`;
  finish(2);
} else {
  run().catch((e) => {
    result.error = String(e && e.stack ? e.stack : e);
    finish(1);
  });
}
