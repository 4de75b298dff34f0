// Official socket.io clients for the cluster tests: logs every event they
// receive. Usage: node clients.mjs <spec JSON>
// where the spec is [{"name":"a1","url":"http://127.0.0.1:PORT","room":"r1"}, ...].
// Prints {"ready":{"a1":"<socket id>",...}} once all are connected, then
// one line per event: {"c":name,"ev":event,"args":[..]} (Buffers as {"$hex"}),
// and {"c":name,"ev":"disconnect","args":[reason]}. An event that asks for
// an acknowledgement is acknowledged with the client's name.
// Reads "quit" on stdin to exit.
import { io } from "socket.io-client";
import { createInterface } from "node:readline";

const spec = JSON.parse(process.argv[2]);
const out = (o) => console.log(JSON.stringify(o));
const enc = (a) => (a instanceof ArrayBuffer || ArrayBuffer.isView(a) ? { $hex: Buffer.from(a).toString("hex") } : a);
const ids = {};
await Promise.all(
  spec.map(
    (c) =>
      new Promise((resolve, reject) => {
        const query = c.room ? { room: c.room } : {};
        const socket = io(c.url, { transports: ["websocket"], query, reconnection: false });
        socket.on("connect", () => {
          ids[c.name] = socket.id;
          resolve();
        });
        socket.on("connect_error", reject);
        socket.onAny((ev, ...args) => {
          // Events that ask for an acknowledgement get the client's name.
          if (typeof args[args.length - 1] === "function") args.pop()(c.name);
          out({ c: c.name, ev, args: args.map(enc) });
        });
        socket.on("disconnect", (reason) => out({ c: c.name, ev: "disconnect", args: [reason] }));
      }),
  ),
);
out({ ready: ids });
createInterface({ input: process.stdin }).on("line", (l) => {
  if (l.trim() === "quit") process.exit(0);
});
setTimeout(() => process.exit(1), 120000);
