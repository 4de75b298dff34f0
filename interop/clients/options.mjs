// Scenarios for the server's HTTP options (allow_request, generate_id,
// request extensions, serve_client), driven with the official JavaScript
// client. Usage: node options.mjs <scenario> <url> [args...]
// The last JSON line is the result; on a failure it has an "error" field.
import { io } from "socket.io-client";
import { WebSocket } from "ws";
import { reporter } from "./report.mjs";

const [scenario, url, ...args] = process.argv.slice(2);
const result = { scenario };
const finish = reporter(result, 15000);

function connected(socket) {
  return new Promise((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("connect_error", (err) => reject(new Error(`connect_error: ${err.message}`)));
  });
}

// A handshake the server refuses: what the client's connect_error says.
async function refused() {
  const transports = (args[0] || "polling").split(",");
  const socket = io(url, { transports, reconnection: false });
  const err = await new Promise((resolve) => {
    socket.once("connect", () => resolve(null));
    socket.once("connect_error", (err) => {
      // Over polling, the context is the XMLHttpRequest: the answer's body,
      // read before the client aborts the request.
      result.responseText = err.context && err.context.responseText;
      resolve(err);
    });
  });
  if (err === null) {
    result.error = "connected although the server should refuse";
    return finish(1);
  }
  result.message = err.message;
  result.description = err.description;
  socket.close();
  finish(0);
}

// The engine's id, over the transports given, and the socket's.
async function engineId() {
  const transports = (args[0] || "polling,websocket").split(",");
  const socket = io(url, { transports, reconnection: false });
  await connected(socket);
  if (transports.length > 1 && socket.io.engine.transport.name !== "websocket") {
    await new Promise((resolve) => socket.io.engine.once("upgrade", resolve));
  }
  result.transport = socket.io.engine.transport.name;
  result.engineId = socket.io.engine.id;
  result.socketId = socket.id;
  // The session works after the upgrade: an acknowledged round trip.
  result.echo = await socket.timeout(5000).emitWithAck("echo", "ping");
  socket.disconnect();
  finish(0);
}

// What the server's connect handler read from the request's extensions.
async function extensions() {
  const transports = (args[0] || "polling,websocket").split(",");
  const socket = io(url, { transports, reconnection: false });
  const user = new Promise((resolve) => socket.once("user", resolve));
  await connected(socket);
  result.user = await user;
  socket.disconnect();
  finish(0);
}

// The official browser bundle, loaded from the server and run (with `ws`
// as the browser's WebSocket): it connects and makes a round trip.
async function bundle() {
  const file = args[0] || "socket.io.min.js";
  const res = await fetch(new URL(`/socket.io/${file}`, url));
  result.status = res.status;
  result.etag = res.headers.get("etag");
  const code = await res.text();
  // Run as a browser runs a script: in the global scope, where it defines
  // `io`, with `ws` as the browser's WebSocket (in this realm, so that the
  // ArrayBuffers of binary frames are the bundle's own).
  globalThis.WebSocket = WebSocket;
  (0, eval)(code);
  if (typeof globalThis.io !== "function") {
    result.error = "the bundle defines no io()";
    return finish(1);
  }
  const socket = globalThis.io(url, { transports: ["websocket"], reconnection: false });
  await connected(socket);
  result.transport = socket.io.engine.transport.name;
  result.echo = await new Promise((resolve) => socket.emit("echo", "from the bundle", resolve));
  socket.disconnect();
  finish(0);
}

const scenarios = { refused, "engine-id": engineId, extensions, bundle };
const run = scenarios[scenario];
if (!run) {
  result.error = `unknown scenario ${scenario}`;
  finish(1);
} else {
  run().catch((e) => {
    result.error = String(e && e.stack ? e.stack : e);
    finish(1);
  });
}
