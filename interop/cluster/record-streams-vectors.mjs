// Records what the reference Redis Streams adapter writes: the stream's
// entries (their fields, in order; their ids depend on the clock) as
// {"entry": [[field, value], ...]}, and the messages on the pub/sub
// channels as {channel, hex}. Usage: node record-streams-vectors.mjs <redis url>
//
// A Node socket.io server with @socket.io/redis-streams-adapter (its uid
// fixed to "node01") broadcasts a few events (a plain one, one to two rooms
// except a third, one with a Buffer), makes sockets join a room, emits to
// the servers, and answers a fetchSockets request made up as if from a
// node of uid "rust01".
import { createClient } from "redis";
import { Server } from "socket.io";
import { createAdapter } from "@socket.io/redis-streams-adapter";

const url = process.argv[2];
const client = createClient({ url });
const spy = client.duplicate();
await Promise.all([client.connect(), spy.connect()]);
await client.del("socket.io");

const seen = [];
const record = (message, channel) => {
  seen.push({ channel: channel.toString(), hex: Buffer.from(message).toString("hex") });
};
await spy.subscribe(["socket.io#/#", "socket.io#/#rust01#"], record, true);

const io = new Server({ adapter: createAdapter(client) });
const adapter = io.of("/").adapter;
adapter.uid = "node01";
await new Promise((r) => setTimeout(r, 200));
const settle = () => new Promise((r) => setTimeout(r, 50));

io.emit("plain", "hello", 1);
await settle();
io.to(["r1", "r2"]).except("r3").emit("multi", { a: [1, 2.5, null, true] });
await settle();
io.emit("bin", Buffer.from([1, 2, 3]));
await settle();
io.in("a").socketsJoin(["b"]);
await settle();
io.serverSideEmit("hello", "world", 2);
await settle();
adapter.onMessage({ uid: "rust01", nsp: "/", type: 7, data: { requestId: "req1", opts: { rooms: ["x"], except: [] } } });
await settle();

for (const m of seen) console.log(JSON.stringify(m));
for (const entry of await client.xRange("socket.io", "-", "+")) {
  console.log(JSON.stringify({ entry: Object.entries(entry.message) }));
}
process.exit(0);
