// The official client with `socket.io-msgpack-parser` against a server
// whose parser is msgpack: events both ways with binary, acks both ways,
// broadcasts to a room, refused namespaces.
// Usage: node msgpack.mjs <url> <transports>
import { io } from "socket.io-client";
import parser from "socket.io-msgpack-parser";
import { reporter } from "./report.mjs";

const [url, transportsArg] = process.argv.slice(2);
const transports = (transportsArg || "polling,websocket").split(",");
const result = { transports };
const finish = reporter(result, 15000);

const options = { transports, reconnection: false, forceNew: true, parser };

function connected(socket) {
  return new Promise((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("connect_error", (err) => reject(new Error(`connect_error: ${err.message}`)));
  });
}

// Emits with an acknowledgement; resolves with all of its arguments.
function ask(socket, event, ...args) {
  return new Promise((resolve) => socket.emit(event, ...args, (...back) => resolve(back)));
}

function once(socket, event) {
  return new Promise((resolve) => socket.once(event, (...a) => resolve(a)));
}

// Buffers as arrays of numbers, for the JSON result.
function plain(value) {
  if (Buffer.isBuffer(value) || value instanceof ArrayBuffer || ArrayBuffer.isView(value)) {
    return { bytes: Array.from(new Uint8Array(value.buffer ? value.buffer.slice(value.byteOffset, value.byteOffset + value.byteLength) : value)) };
  }
  if (Array.isArray(value)) return value.map(plain);
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  }
  return value;
}

async function open() {
  const socket = io(url, options);
  await connected(socket);
  if (transports.length > 1 && socket.io.engine.transport.name !== "websocket") {
    await once(socket.io.engine, "upgrade");
  }
  socket.received = [];
  socket.onAny((event, ...args) => socket.received.push([event, ...plain(args)]));
  return socket;
}

async function main() {
  const a = await open();
  result.transport = a.io.engine.transport.name;

  // Client to server with binary, acknowledged with the same arguments.
  result.echo = plain(
    await ask(a, "echo", "hi", Buffer.from([1, 2, 3]), { nested: Buffer.from([4]) }, 1.5, null),
  );

  // Server to client with binary.
  const bin = once(a, "bin");
  a.emit("send-bin");
  result.serverBinary = plain(await bin);

  // The server asks, the client acknowledges with binary.
  a.on("question", (q, callback) => callback(`answer to ${q}`, Buffer.from([9, 8])));
  result.serverAck = await a.timeout(5000).emitWithAck("ask");

  // Broadcasts to a room: b is in it, c is not.
  const b = await open();
  const c = await open();
  await a.timeout(5000).emitWithAck("join", "r");
  await b.timeout(5000).emitWithAck("join", "r");
  const shout = once(b, "shout");
  await a.timeout(5000).emitWithAck("shout", "r", "hello room");
  result.shout = plain(await shout);
  const allA = once(a, "all");
  const allB = once(b, "all");
  await c.timeout(5000).emitWithAck("to-room", "r", "to everyone in r");
  result.roomBroadcast = [plain(await allA), plain(await allB)];
  // c, outside the room, got nothing (its own events only).
  result.outsider = c.received;

  // Another namespace over the same connection as a.
  // (The manager connects it at once.)
  const admin = a.io.socket("/admin");
  const hello = once(admin, "hello");
  await connected(admin);
  result.namespace = plain(await hello);
  result.namespaceEcho = plain(await ask(admin, "echo", Buffer.from([5])));
  admin.disconnect();

  // Refused namespaces.
  const nowhere = io(`${url}/nowhere`, options);
  const [err] = await once(nowhere, "connect_error");
  result.unknownNamespace = err.message;
  nowhere.close();
  const refused = io(`${url}/private`, options);
  const [err2] = await once(refused, "connect_error");
  result.refused = { message: err2.message, data: err2.data };
  refused.close();

  for (const s of [a, b, c]) s.disconnect();
  finish(0);
}

main().catch((e) => {
  result.error = String(e && e.stack ? e.stack : e);
  finish(1);
});
