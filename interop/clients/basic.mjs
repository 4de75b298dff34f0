// Drives a server with the official JavaScript client and prints one JSON
// line of what it saw. Usage: node basic.mjs <url> <transports>
// where <transports> is "websocket", "polling" or "polling,websocket".
// The server echoes `message` as `message-back` and acknowledges any event
// that asks for it with the event's own arguments.
import { io } from "socket.io-client";

const url = process.argv[2];
const transports = (process.argv[3] || "polling,websocket").split(",");
const result = { transports };

function finish(code) {
  console.log(JSON.stringify(result));
  process.exit(code);
}

setTimeout(() => {
  result.error = "timed out";
  finish(1);
}, 10000);

const socket = io(url, { transports, reconnection: false });
socket.on("connect_error", (err) => {
  result.error = `connect_error: ${err.message}`;
  finish(1);
});

await new Promise((resolve) => socket.once("connect", resolve));
result.id = socket.id;

if (transports.length > 1 && socket.io.engine.transport.name !== "websocket") {
  await new Promise((resolve) => socket.io.engine.once("upgrade", resolve));
}
result.transport = socket.io.engine.transport.name;

const echo = (...args) =>
  new Promise((resolve) => {
    socket.once("message-back", (...back) => resolve(back));
    socket.emit("message", ...args);
  });

result.echo = await echo("hello", { n: 1 });
const [buf] = await echo(Buffer.from([1, 2, 3]));
result.binary = Array.from(new Uint8Array(buf));
result.ack = await new Promise((resolve) =>
  socket.emit("question", "a", 2, (...args) => resolve(args)),
);

socket.disconnect();
finish(0);
