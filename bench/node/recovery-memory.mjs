// What connection state recovery costs in memory on the reference server
// (`socket.io` from npm, its in-memory session-aware adapter): the heap one
// stored packet and one saved session hold, with the same packets and
// sessions as crates/socketio-proto/examples/recovery_memory.rs.
//
// Each figure is the difference between two runs of the same steps, with
// recovery on and off, divided by the count.
// Usage: node --expose-gc bench/node/recovery-memory.mjs
import { createRequire } from "node:module";

const require = createRequire(new URL("../../interop/package.json", import.meta.url));
const { Server } = require("socket.io");

const PACKETS = 100_000;
const SESSIONS = 10_000;

function heap() {
  global.gc();
  global.gc();
  return process.memoryUsage().heapUsed;
}

function server(recovery) {
  return new Server(recovery ? { connectionStateRecovery: {} } : {});
}

function message(n) {
  return {
    id: `18c2f-${n}`,
    room: "general",
    name: "Ana Lima",
    text: "Hi Bo! Is the new build ready to try?",
    ts: 1_764_633_600_000 + n,
  };
}

function packets(recovery) {
  const io = server(recovery);
  const messages = Array.from({ length: PACKETS }, (_, n) => message(n));
  const before = heap();
  for (const m of messages) io.to("room:general").emit("message", m);
  const held = heap() - before;
  io.close();
  return held;
}

function sessions(recovery) {
  const io = server(recovery);
  const adapter = io.of("/").adapter;
  const before = heap();
  // What a socket that drops hands the adapter (its ids, its own room and
  // two rooms, no data), as the server's socket does on a recoverable
  // disconnection. The strings are made here, as the socket made them:
  // without recovery they are garbage once it is gone.
  for (let n = 0; n < SESSIONS; n++) {
    const sid = `s${String(n).padStart(19, "0")}`;
    const pid = `p${String(n).padStart(19, "0")}`;
    adapter.persistSession({ sid, pid, rooms: [sid, "room:general", `user:${n}`], data: {} });
  }
  const held = heap() - before;
  io.close();
  return held;
}

if (typeof global.gc !== "function") {
  console.error("run with node --expose-gc");
  process.exit(2);
}
const stored = packets(true) - packets(false);
const saved = sessions(true) - sessions(false);
console.log(
  JSON.stringify({
    bytes_per_stored_packet: Math.round(stored / PACKETS),
    bytes_per_saved_session: Math.round(saved / SESSIONS),
  }),
);
process.exit(0);
