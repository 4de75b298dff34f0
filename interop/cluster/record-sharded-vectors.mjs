// Records what the reference sharded Redis adapter publishes, as hex: one
// JSON line per message, {channel, hex}. Usage: node record-sharded-vectors.mjs <redis url>
//
// A Node socket.io server with `createShardedAdapter` (subscription mode
// "static", so that every message goes to the namespace's channel) on a
// standalone Redis 7 broadcasts a few events, changes rooms, emits to the
// servers, and answers requests made up as if from a node of uid "rust01".
// A spy client subscribes (SSUBSCRIBE) to the channels and prints what
// passed, in order.
import { createClient } from "redis";
import { Server } from "socket.io";
import { createShardedAdapter } from "@socket.io/redis-adapter";

const url = process.argv[2];
const pub = createClient({ url });
const sub = pub.duplicate();
const spy = pub.duplicate();
await Promise.all([pub.connect(), sub.connect(), spy.connect()]);

const seen = [];
const record = (message, channel) => {
  seen.push({ channel: channel.toString(), hex: Buffer.from(message).toString("hex") });
};
for (const channel of ["socket.io#/#", "socket.io#/#rust01#"]) {
  await spy.sSubscribe(channel, record, true);
}

const io = new Server({ adapter: createShardedAdapter(pub, sub, { subscriptionMode: "static" }) });
const adapter = io.of("/").adapter;
// Fix the adapter's uid so that the vectors are stable.
adapter.uid = "node01";
io.of("/").on("ping", (...args) => args.pop()("pong", 1));
await new Promise((r) => setTimeout(r, 100));
const settle = () => new Promise((r) => setTimeout(r, 50));

io.emit("plain", "hello", 1);
await settle();
io.to("room1").emit("room", { a: [1, 2.5, null, true] });
await settle();
io.to(["r1", "r2"]).except("r3").emit("multi");
await settle();
io.volatile.emit("bin", Buffer.from([1, 2, 3]));
await settle();
io.compress(false).emit("nocompress");
await settle();
io.in("a").socketsJoin(["b"]);
await settle();
io.in("a").socketsLeave("b");
await settle();
io.in("a").except("c").disconnectSockets(true);
await settle();
io.serverSideEmit("hello", "world", 2);
await settle();
// Requests of a node "rust01", answered by this one.
const from = (type, data) => adapter.onMessage({ uid: "rust01", nsp: "/", type, data });
from(7, { requestId: "req1", opts: { rooms: ["x"], except: [] } });
await settle();
from(9, { requestId: "req2", packet: ["ping", "a"] });
await settle();
from(3, { requestId: "req3", packet: { type: 2, data: ["ask"] }, opts: { rooms: ["x"], except: [], flags: { timeout: 1000 } } });
await settle();

for (const m of seen) console.log(JSON.stringify(m));
await Promise.all([pub.quit(), sub.quit(), spy.quit()]).catch(() => {});
process.exit(0);
