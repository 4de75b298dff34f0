// Connection state recovery with the official JavaScript client.
// Usage: node recovery.mjs <url> <transports> <reconnection delay in ms>
//
// The client joins the room "r" (the "join" event, acknowledged), then
// records every "tick" and "direct" event it gets, in order, until "done".
// It prints a JSON line for each connection (with socket.recovered and the
// socket id) and each disconnection, and the result last: the numbers it
// got. On a failure or a timeout the result has an "error" field.
import { io } from "socket.io-client";
import { emitLine, reporter } from "./report.mjs";

const [url, transportList, delay] = process.argv.slice(2);
const result = { connects: [], ticks: [], direct: [], offsets: 0 };

const finish = reporter(result, 40000);

const socket = io(url, {
  transports: transportList.split(","),
  reconnectionDelay: Number(delay),
  reconnectionDelayMax: Number(delay),
  randomizationFactor: 0,
});

const offsets = new Set();
function record(list) {
  return (n, offset) => {
    list.push(n);
    // Every stored packet carries its offset, each its own.
    if (typeof offset !== "string" || offsets.has(offset)) {
      result.error = `bad offset ${offset} on ${n}`;
    }
    offsets.add(offset);
    result.offsets = offsets.size;
  };
}
socket.on("tick", record(result.ticks));
socket.on("direct", record(result.direct));

socket.on("connect", async () => {
  const line = { event: "connect", id: socket.id, recovered: socket.recovered };
  result.connects.push(line);
  if (!socket.recovered) {
    await socket.emitWithAck("join", "r");
    line.joined = true;
  }
  emitLine(line);
});
socket.on("disconnect", (reason) => emitLine({ event: "disconnect", reason }));
socket.on("done", () => {
  socket.disconnect();
  finish(result.error ? 1 : 0);
});
