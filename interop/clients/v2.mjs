// Scenarios for the old clients: the official `socket.io-client` 2.x
// (Engine.IO v3, Socket.IO v4 protocol), installed as `socket.io-client-v2`,
// against a server that allows EIO3. Usage:
//   node v2.mjs <scenario> <url> [args...]
// Each scenario prints JSON lines; the last one holds the result. On a
// failure or a timeout the result has an "error" field and the exit code is 1.
import { createRequire } from "node:module";
import { emitLine, reporter } from "./report.mjs";
import { io as ioV4 } from "socket.io-client";

const require = createRequire(import.meta.url);
const [scenario, url, ...args] = process.argv.slice(2);
const result = { scenario };

// In node, the 2.x client polls through `xmlhttprequest-ssl`, which has no
// XHR2 (`responseType`), so it asks for base64 payloads (`b64=1`). With
// "xhr2" (or "base64": the same, with `forceBase64`) as the second
// argument, a small XMLHttpRequest with `responseType`
// takes its place, as a browser's would: the client then posts and reads
// binary payloads (`application/octet-stream`). Each payload's content type
// is counted in `result.payloads`.
const payloads = { binarySent: 0, binaryReceived: 0, textSent: 0, textReceived: 0 };
if (args[1] === "xhr2" || args[1] === "base64") {
  const http = require("node:http");
  const clientRequire = createRequire(require.resolve("socket.io-client-v2"));
  const engineRequire = createRequire(clientRequire.resolve("engine.io-client"));
  const xhrPath = engineRequire.resolve("xmlhttprequest-ssl");
  class Xhr2 {
    constructor() {
      this.readyState = 0;
      this.status = 0;
      this.responseType = "";
      this.withCredentials = false;
      this.headers = {};
      this.onreadystatechange = null;
    }
    open(method, uri) {
      this.method = method;
      this.uri = uri;
      this.readyState = 1;
    }
    setRequestHeader(name, value) {
      this.headers[name] = value;
    }
    getResponseHeader(name) {
      return this.res ? this.res.headers[name.toLowerCase()] : null;
    }
    change(state) {
      this.readyState = state;
      if (this.onreadystatechange) this.onreadystatechange();
    }
    send(data) {
      const body = data == null ? null : typeof data === "string" ? Buffer.from(data) : Buffer.from(data);
      if (body) {
        const binary = String(this.headers["Content-type"]).startsWith("application/octet-stream");
        payloads[binary ? "binarySent" : "textSent"] += 1;
      }
      this.req = http.request(this.uri, { method: this.method, headers: this.headers }, (res) => {
        this.res = res;
        this.status = res.statusCode;
        this.change(2);
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => {
          const buf = Buffer.concat(chunks);
          const binary = String(res.headers["content-type"]).startsWith("application/octet-stream");
          if (this.method === "GET") payloads[binary ? "binaryReceived" : "textReceived"] += 1;
          this.responseText = buf.toString("utf8");
          // engine.io-parser 2.x in node reads binary payloads from a Buffer.
          this.response = this.responseType === "arraybuffer" ? buf : this.responseText;
          this.change(4);
        });
      });
      this.req.on("error", () => {
        this.status = 0;
        this.change(4);
      });
      this.req.end(body);
    }
    abort() {
      if (this.req) this.req.destroy();
    }
  }
  require(xhrPath);
  require.cache[xhrPath].exports = Xhr2;
}
const ioV2 = require("socket.io-client-v2");

const finish = reporter(result, 20000);

function once(emitter, event) {
  return new Promise((resolve) => emitter.once(event, (...a) => resolve(a)));
}

// The 2.x client reports a refused namespace with `error`, a failed
// connection with `connect_error`.
function connected(socket) {
  return new Promise((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("connect_error", (err) => reject(new Error(`connect_error: ${err && err.message}`)));
    socket.once("error", (err) => reject(new Error(`error: ${JSON.stringify(err)}`)));
  });
}

// `emit` with an acknowledgement, as a promise (2.x has no emitWithAck).
function ask(socket, event, ...a) {
  return new Promise((resolve) => socket.emit(event, ...a, (...reply) => resolve(reply)));
}

function bytes(buf) {
  return Array.from(new Uint8Array(buf));
}

// "polling,websocket" [xhr2 | base64]
function options(extra = {}) {
  const transports = (args[0] || "polling,websocket").split(",");
  const forceBase64 = args[1] === "base64";
  return { transports, forceBase64, reconnection: false, forceNew: true, ...extra };
}

async function roundtrip() {
  const opts = options();
  const socket = ioV2(url, opts);
  await connected(socket);
  const engine = socket.io.engine;
  result.b64 = engine.transport.query.b64 ?? null;
  if (opts.transports.length > 1 && engine.transport.name !== "websocket") {
    await once(engine, "upgrade");
  }
  result.transport = engine.transport.name;
  result.protocol = engine.transport.query.EIO;
  // The id the client works out is the server's.
  result.sameId = (await ask(socket, "whoami"))[0] === socket.id;

  // Text and binary, client to server and back.
  let back = once(socket, "echo-back");
  socket.emit("echo", "hello", { n: 1 }, [true, null], "é\u2028\u2029😀");
  result.echo = await back;
  back = once(socket, "echo-back");
  socket.emit("echo", Buffer.from([1, 2, 3]), { nested: Buffer.from([4]) });
  const [b1, obj] = await back;
  result.binaryEcho = [bytes(b1), bytes(obj.nested)];

  // Typed data on the server.
  back = once(socket, "greeting");
  socket.emit("greet", { name: "ana", age: 7 });
  result.greeting = (await back)[0];

  // Server-side binary emit.
  back = once(socket, "bin");
  socket.emit("send-bin");
  const [bin, label] = await back;
  result.serverBinary = [bytes(bin), label];

  // Client to server acks, text and binary.
  result.sum = (await ask(socket, "sum", 1, 2))[0];
  result.ackBinary = bytes((await ask(socket, "bin-ack"))[0]);

  // Server to client acks (the answer carries binary), and one left
  // unanswered until it times out.
  socket.on("question", (q, cb) => cb(`answer to ${q}`, Buffer.from([9, 8])));
  socket.on("silent", () => {});
  result.serverAck = (await ask(socket, "ask-me"))[0];
  result.serverAckTimeout = (await ask(socket, "ask-silent"))[0];

  // Unhandled event: the server's fallback handler answers.
  result.fallback = await ask(socket, "no-such-event", 5);

  const reason = once(socket, "disconnect");
  socket.disconnect();
  result.clientReason = (await reason)[0];
  result.payloads = payloads;
}

async function namespaces() {
  const ok = ioV2(`${url}/legacy`, options({ query: { token: "good" } }));
  const hello = once(ok, "hello");
  await connected(ok);
  result.accepted = (await hello)[0];
  result.acceptedTransport = ok.io.engine.transport.name;
  ok.close();

  const bad = ioV2(`${url}/legacy`, options({ query: { token: "bad" } }));
  result.rejected = (await once(bad, "error"))[0];
  bad.close();

  const none = ioV2(`${url}/nowhere`, options());
  result.unknownNamespace = (await once(none, "error"))[0];
  none.close();

  const dyn = ioV2(`${url}/dyn-42`, options());
  const dynHello = once(dyn, "hello");
  await connected(dyn);
  const [dynName, dynId] = await dynHello;
  result.dynamic = dynName;
  result.dynamicSameId = dynId === dyn.id && dyn.id === `/dyn-42#${dyn.io.engine.id}`;
  dyn.close();

  // Two namespaces over one connection (the manager multiplexes them).
  const manager = new ioV2.Manager(url, options());
  const root = manager.socket("/");
  const dyn7 = manager.socket("/dyn-7");
  const dyn7Hello = once(dyn7, "hello");
  await Promise.all([connected(root), connected(dyn7)]);
  result.multiplexed = [(await dyn7Hello)[0], (await ask(root, "sum", 20, 22))[0]];
  root.close();
  dyn7.close();
}

// Old and current clients in one room: every broadcast reaches each in its
// own protocol.
async function mixed() {
  const opts = options();
  const clients = [
    ["v2", ioV2(url, { ...opts })],
    ["v2-polling", ioV2(url, { ...opts, transports: ["polling"] })],
    ["v4", ioV4(url, { transports: ["websocket"], reconnection: false, forceNew: true })],
    ["v4-polling", ioV4(url, { transports: ["polling"], reconnection: false, forceNew: true })],
  ];
  for (const [, s] of clients) {
    s.received = [];
    for (const event of ["shout", "shout-bin", "all"]) {
      s.on(event, (...a) => s.received.push([event, ...a.map((x) => (Buffer.isBuffer(x) || x instanceof ArrayBuffer ? bytes(x) : x))]));
    }
  }
  await Promise.all(clients.map(([, s]) => connected(s)));
  // All but the last join room-mix; the last one speaks.
  await Promise.all(clients.slice(0, 3).map(([, s]) => ask(s, "join", "room-mix")));
  const speaker = clients[3][1];
  await speaker.emitWithAck("shout", "room-mix", "to the room");
  await speaker.emitWithAck("shout-bin", "room-mix", "with bytes");
  await ask(clients[0][1], "everyone", "to all");
  const expected = [3, 3, 3, 1];
  const deadline = Date.now() + 5000;
  while (clients.some(([, s], i) => s.received.length < expected[i]) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
  }
  // A grace period for anything that should not come.
  await new Promise((r) => setTimeout(r, 200));
  result.received = Object.fromEntries(clients.map(([name, s]) => [name, s.received]));
  result.protocols = Object.fromEntries(clients.map(([name, s]) => [name, s.io.engine.transport.query.EIO]));
  for (const [, s] of clients) s.close();
}

async function reasons() {
  const a = ioV2(url, options());
  await connected(a);
  let r = once(a, "disconnect");
  a.emit("kick-me");
  result.serverDisconnect = (await r)[0];

  const b = ioV2(url, options());
  await connected(b);
  r = once(b, "disconnect");
  b.emit("close-me");
  result.serverClose = (await r)[0];
}

async function restart() {
  // Reports every connection and disconnection as a line; stops after the
  // second connection.
  const socket = ioV2(url, {
    ...options(),
    reconnection: true,
    reconnectionDelay: 100,
    reconnectionDelayMax: 300,
    randomizationFactor: 0,
  });
  let connects = 0;
  result.events = [];
  await new Promise((resolve) => {
    socket.on("connect", () => {
      connects += 1;
      result.events.push("connect");
      emitLine({ event: "connect", id: socket.id, transport: socket.io.engine.transport.name });
      if (connects === 2) resolve();
    });
    socket.on("disconnect", (reason) => {
      result.events.push(`disconnect: ${reason}`);
      emitLine({ event: "disconnect", reason });
    });
  });
  result.afterReconnect = (await ask(socket, "sum", 4, 5))[0];
  socket.close();
}

const scenarios = { roundtrip, namespaces, mixed, reasons, restart };
if (!scenarios[scenario]) {
  result.error = `unknown scenario ${scenario}`;
  finish(1);
}
try {
  await scenarios[scenario]();
  finish(0);
} catch (e) {
  result.error = String(e && e.stack ? e.stack : e);
  finish(1);
}
