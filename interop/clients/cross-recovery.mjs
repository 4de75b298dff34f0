// Connection state recovery across the servers of a cluster, with the
// official JavaScript client.
// Usage: node cross-recovery.mjs <url of the first server>
//
// The client connects over WebSocket, in the room "r" (the `room` query
// parameter), and prints a JSON line for each connection (with
// socket.recovered and the socket id), each disconnection, each "tick"
// event it gets ({"tick": n, "offset": its last argument}), and any other
// event ({"ev": name, "args": [..]}).
// Commands are lines on stdin:
//   cut            the WebSocket is torn down at once (no close frame)
//   connect <url>  connects again, to the server at <url>
//   connect-nsp <url> <nsp>
//                  connects to namespace <nsp> of the server at <url>,
//                  asking for the session of the first socket (its pid
//                  and offset)
//   quit           the script ends
// It does not reconnect by itself: the test says when and where.
import { createInterface } from "node:readline";
import { io } from "socket.io-client";
import { emitLine } from "./report.mjs";

const [url] = process.argv.slice(2);

const socket = io(url, {
  transports: ["websocket"],
  query: { room: "r" },
  reconnection: false,
});

socket.onAny((event, ...args) => {
  if (event === "tick") emitLine({ tick: args[0], offset: args[args.length - 1] });
  else emitLine({ ev: event, args });
});
socket.on("connect", () => emitLine({ event: "connect", id: socket.id, recovered: socket.recovered }));
socket.on("disconnect", (reason) => emitLine({ event: "disconnect", reason }));
socket.on("connect_error", (err) => emitLine({ event: "connect_error", message: err.message }));

createInterface({ input: process.stdin }).on("line", (line) => {
  const [cmd, arg, arg2] = line.trim().split(" ");
  if (cmd === "cut") {
    // The `ws` WebSocket under the engine's transport: destroyed, as a
    // network failure would.
    socket.io.engine.transport.ws.terminate();
  } else if (cmd === "connect") {
    // The manager opens its next engine on its `uri`.
    socket.io.uri = arg;
    socket.connect();
  } else if (cmd === "connect-nsp") {
    socket.io.uri = arg;
    const other = socket.io.socket(arg2);
    other._pid = socket._pid;
    other._lastOffset = socket._lastOffset;
    other.on("connect", () =>
      emitLine({ event: "connect", nsp: arg2, id: other.id, recovered: other.recovered }),
    );
    other.on("connect_error", (err) =>
      emitLine({ event: "connect_error", nsp: arg2, message: err.message }),
    );
    other.connect();
  } else if (cmd === "quit") {
    socket.disconnect();
    setTimeout(() => process.exit(0), 100);
  }
});
