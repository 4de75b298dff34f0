// Records what the reference Redis adapter and emitter publish, as hex:
// one JSON line per message, {channel, hex}. Usage: node record-vectors.mjs <redis url>
//
// A Node socket.io server with @socket.io/redis-adapter broadcasts a few
// events (a plain one, one to a room, one to two rooms except a third, a
// volatile one with a Buffer), then @socket.io/redis-emitter emits one.
import { createClient } from "redis";
import { Server } from "socket.io";
import { createAdapter } from "@socket.io/redis-adapter";
import { Emitter } from "@socket.io/redis-emitter";

const url = process.argv[2];
const pub = createClient({ url });
const sub = pub.duplicate();
const spy = pub.duplicate();
await Promise.all([pub.connect(), sub.connect(), spy.connect()]);

const seen = [];
await spy.pSubscribe("socket.io*", (message, channel) => {
  seen.push({ channel: channel.toString(), hex: Buffer.from(message).toString("hex") });
}, true);

const io = new Server({ adapter: createAdapter(pub, sub) });
// Fix the adapter's uid so that the vectors are stable.
io.of("/").adapter.uid = "node01";
await new Promise((r) => setTimeout(r, 100));

io.emit("plain", "hello", 1);
io.to("room1").emit("room", { a: [1, 2.5, null, true] });
io.to(["r1", "r2"]).except("r3").emit("multi");
io.volatile.emit("bin", Buffer.from([1, 2, 3]));
io.of("/").adapter.addSockets({ rooms: new Set(["a"]), except: new Set(), flags: {} }, ["b"]);
io.of("/").adapter.disconnectSockets({ rooms: new Set(["a"]), except: new Set(["c"]), flags: {} }, true);
const emitter = new Emitter(pub);
emitter.to("room1").emit("from-emitter", "x");
emitter.of("/chat").emit("nsp", 42);

await new Promise((r) => setTimeout(r, 300));
for (const m of seen) console.log(JSON.stringify(m));
await Promise.all([pub.quit(), sub.quit(), spy.quit()]).catch(() => {});
process.exit(0);
