// A short chat session with known counts, for the metrics test: two
// clients over WebSocket join room "r", the first sends three messages
// (each acknowledged, each reaching the second), then the first leaves,
// then the second. Usage: node chat-session.mjs session <url>
// Prints one JSON line, the result; on a failure it has an "error" field.
import { io } from "socket.io-client";
import { reporter } from "./report.mjs";

const [, url] = process.argv.slice(2);
const result = {};
const finish = reporter(result, 20000);

function connect() {
  const socket = io(url, { transports: ["websocket"], reconnection: false, forceNew: true });
  return new Promise((resolve, reject) => {
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", reject);
  });
}

async function run() {
  const a = await connect();
  const b = await connect();
  const joinA = await a.emitWithAck("join", { room: "r", name: "ann" });
  const joinB = await b.emitWithAck("join", { room: "r", name: "bob" });
  result.joined = joinA.ok && joinB.ok;
  const received = [];
  b.on("message", (m) => received.push(m.text));
  for (const text of ["one", "two", "three"]) {
    const ack = await a.emitWithAck("message", { room: "r", text });
    if (!ack.ok) throw new Error(`message refused: ${JSON.stringify(ack)}`);
  }
  while (received.length < 3) await new Promise((r) => setTimeout(r, 20));
  result.received = received;
  const left = new Promise((resolve) => b.once("left", resolve));
  a.disconnect();
  await left;
  b.disconnect();
}

run().then(
  () => finish(0),
  (err) => {
    result.error = String(err?.stack || err);
    finish(1);
  },
);
