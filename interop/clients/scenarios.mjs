// Scenarios for the socketio-tokio interoperability tests, driven with the
// official JavaScript client. Usage: node scenarios.mjs <scenario> <url> [args...]
// Each scenario prints JSON lines; the last one holds the result. On a
// failure or a timeout the result has an "error" field and the exit code is 1.
import { io } from "socket.io-client";
import { emitLine, reporter } from "./report.mjs";

const [scenario, url, ...args] = process.argv.slice(2);
const result = { scenario };

const finish = reporter(result, 15000);

function once(emitter, event) {
  return new Promise((resolve) => emitter.once(event, (...a) => resolve(a)));
}

function connected(socket) {
  return new Promise((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("connect_error", (err) => reject(new Error(`connect_error: ${err.message}`)));
  });
}

function bytes(buf) {
  return Array.from(new Uint8Array(buf));
}

async function roundtrip() {
  const transports = (args[0] || "polling,websocket").split(",");
  result.transports = transports;
  const socket = io(url, { transports, reconnection: false });
  await connected(socket);
  if (transports.length > 1 && socket.io.engine.transport.name !== "websocket") {
    await once(socket.io.engine, "upgrade");
  }
  result.transport = socket.io.engine.transport.name;

  // Text and binary, client to server and back.
  let back = once(socket, "echo-back");
  socket.emit("echo", "hello", { n: 1 }, [true, null]);
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

  // A handler that panics takes nothing down.
  socket.emit("panic");

  // Client to server acks.
  result.sum = await socket.emitWithAck("sum", 1, 2);
  result.ackBinary = bytes(await socket.emitWithAck("bin-ack"));

  // Server to client acks, and one left unanswered until it times out.
  socket.on("question", (q, cb) => cb(`answer to ${q}`, Buffer.from([9, 8])));
  socket.on("silent", () => {});
  result.serverAck = await socket.emitWithAck("ask-me");
  result.serverAckTimeout = await socket.emitWithAck("ask-silent");

  // Unhandled event: the server's fallback handler answers.
  result.fallback = await socket.emitWithAck("no-such-event", 5);

  // Refused by a per-event middleware: no answer, the socket goes on.
  socket.emit("forbidden:thing");
  result.afterRefusal = await socket.emitWithAck("sum", 2, 3);

  const reason = once(socket, "disconnect");
  socket.disconnect();
  result.clientReason = (await reason)[0];
}

async function auth() {
  const ok = io(`${url}/admin`, { auth: { token: "good" }, reconnection: false, forceNew: true });
  const hello = once(ok, "hello");
  await connected(ok);
  result.accepted = (await hello)[0];
  ok.disconnect();

  const bad = io(`${url}/admin`, { auth: { token: "bad" }, reconnection: false, forceNew: true });
  const [err] = await once(bad, "connect_error");
  result.rejected = { message: err.message, data: err.data };
  bad.close();

  const none = io(`${url}/nowhere`, { reconnection: false, forceNew: true });
  const [err2] = await once(none, "connect_error");
  result.unknownNamespace = err2.message;
  none.close();

  const dyn = io(`${url}/dyn-42`, { reconnection: false, forceNew: true });
  const dynHello = once(dyn, "hello");
  await connected(dyn);
  result.dynamic = (await dynHello)[0];
  dyn.disconnect();
}

async function rooms() {
  const n = Number(args[0] || 4);
  const sockets = [];
  for (let i = 0; i < n; i++) {
    const s = io(url, { transports: [i % 2 ? "polling" : "websocket"], reconnection: false, forceNew: true });
    s.received = [];
    s.onAny((event, ...a) => {
      if (event !== "vote") s.received.push([event, ...a]);
    });
    s.on("vote", (cb) => cb(i));
    sockets.push(s);
  }
  await Promise.all(sockets.map(connected));
  await Promise.all(sockets.map((s, i) => s.emitWithAck("join", `room-${i % 2}`)));

  // Sender excluded; only room-0.
  await sockets[0].emitWithAck("shout", "room-0", "hi room 0");
  // Everyone, the sender included.
  await sockets[1].emitWithAck("everyone", "hi all");
  // Broadcast with acknowledgements.
  result.votes = await sockets[0].emitWithAck("collect-votes");
  result.rooms = await sockets[0].emitWithAck("list", "room-1");
  const expected = (i) => (i % 2 === 0 && i !== 0 ? 2 : 1);
  const deadline = Date.now() + 5000;
  while (sockets.some((s, i) => s.received.length < expected(i)) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
  }
  // A grace period for anything that should not come.
  await new Promise((r) => setTimeout(r, 200));
  result.received = sockets.map((s) => s.received);

  // The server disconnects room-1.
  const reasons = sockets.map((s) => once(s, "disconnect"));
  await sockets[0].emitWithAck("kick-room", "room-1");
  result.kicked = await Promise.all(reasons.filter((_, i) => i % 2 === 1)).then((r) => r.map((x) => x[0]));
  for (const [i, s] of sockets.entries()) if (i % 2 === 0) s.disconnect();
}

async function reasons() {
  const a = io(url, { reconnection: false, forceNew: true });
  await connected(a);
  let r = once(a, "disconnect");
  a.emit("kick-me");
  result.serverDisconnect = (await r)[0];

  const b = io(url, { reconnection: false, forceNew: true });
  await connected(b);
  r = once(b, "disconnect");
  b.emit("close-me");
  result.serverClose = (await r)[0];

  const c = io(url, { reconnection: false, forceNew: true });
  await connected(c);
  r = once(c, "disconnect");
  c.disconnect();
  result.clientDisconnect = (await r)[0];
}

async function restart() {
  // Reports every connection and disconnection as a line; stops after the
  // second connection.
  const transports = (args[0] || "polling,websocket").split(",");
  const socket = io(url, {
    transports,
    reconnectionDelay: 100,
    reconnectionDelayMax: 300,
    randomizationFactor: 0,
  });
  let connects = 0;
  result.events = [];
  await new Promise((resolve) => {
    socket.on("connect", () => {
      connects += 1;
      result.events.push(`connect`);
      emitLine({ event: "connect", id: socket.id, transport: socket.io.engine.transport.name });
      if (connects === 2) resolve();
    });
    socket.on("disconnect", (reason) => {
      result.events.push(`disconnect: ${reason}`);
      emitLine({ event: "disconnect", reason });
    });
  });
  socket.disconnect();
}

const scenarios = { roundtrip, auth, rooms, reasons, restart };
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
