// A Node socket.io server in a Redis cluster, driven over stdin.
// Usage: node node-server.mjs <redis url> <port> [sharded|sharded-static|sharded-dynamic|sharded-dynamic-private|postgres|streams] [recovery]
// With "recovery", connection state recovery is on (the reference's defaults).
// With "sharded", the Redis URL lists the nodes of a Redis Cluster
// (comma-separated) and the adapter is createShardedAdapter with no
// subscription mode given (the reference's default, "dynamic");
// "sharded-static", "sharded-dynamic" and "sharded-dynamic-private" give
// it. The emitter is then unavailable.
// With "postgres", the URL is a Postgres connection string, the adapter
// @socket.io/postgres-adapter and the emitter @socket.io/postgres-emitter.
// With "streams", the adapter is @socket.io/redis-streams-adapter (no emitter).
//
// Sockets join the room named by their `room` query parameter. Commands are
// JSON lines on stdin, answers JSON lines on stdout:
//   {"op":"emit","to":[..],"except":[..],"local":bool,"event":e,"args":[..]}
//   {"op":"emitter","to":[..],"nsp":"/","event":e,"args":[..]}  (@socket.io/redis-emitter)
//   {"op":"fetch","to":[..]}      -> {"fetched":[{id, rooms, handshake, data}]}
//   {"op":"rooms"}                -> {"rooms":[..]}               (adapter.allRooms())
//   {"op":"join","to":[..],"rooms":[..]}                          (socketsJoin)
//   {"op":"leave","to":[..],"rooms":[..]}                         (socketsLeave)
//   {"op":"disconnect","to":[..],"close":bool}                    (disconnectSockets)
//   {"op":"emit-ack","to":[..],"event":e,"args":[..]} -> {"acks":[..]}  (timeout(3000).emitWithAck)
//   {"op":"count"}                -> {"count":n}                  (serverCount)
//   {"op":"resubscribe"}          (sharded: SSUBSCRIBE the adapter's channels again, rooms' too)
//   {"op":"sse","event":e,"args":[..]}                            (serverSideEmit)
//   {"op":"sse-ack","event":e,"args":[..]} -> {"responses":[..]}  (serverSideEmitWithAck)
// The server answers the server-side emit "ping" with "pong-node", and
// prints other server-side emits as {"serverSide":[event, ...args]}.
// Each command is answered with at least {"done": op} or {"error": msg}.
// Prints {"ready":port} once listening.
import { createServer } from "node:http";
import { createInterface } from "node:readline";
import { createClient, createCluster } from "redis";
import { Server } from "socket.io";
import { createAdapter, createShardedAdapter } from "@socket.io/redis-adapter";
import { Emitter } from "@socket.io/redis-emitter";
import { createAdapter as createPostgresAdapter } from "@socket.io/postgres-adapter";
import { Emitter as PostgresEmitter } from "@socket.io/postgres-emitter";
import pg from "pg";
import { createAdapter as createStreamsAdapter } from "@socket.io/redis-streams-adapter";

const [url, port, mode, recovery] = process.argv.slice(2);
const sharded = typeof mode === "string" && mode.startsWith("sharded");
const shardedOpts = sharded && mode !== "sharded" ? { subscriptionMode: mode.slice("sharded-".length) } : {};
let adapter, emitter, sub;
if (mode === "postgres") {
  const pool = new pg.Pool({ connectionString: url });
  pool.on("error", () => {});
  // The adapter's listening client has no "error" listener: when Postgres
  // restarts, its error would end the process (and the client would never
  // say "end", on which the adapter connects again).
  pool.on("connect", (client) => client.on("error", () => {}));
  await pool.query(
    "CREATE TABLE IF NOT EXISTS socket_io_attachments (id bigserial UNIQUE, created_at timestamptz DEFAULT NOW(), payload bytea)",
  );
  adapter = createPostgresAdapter(pool, { heartbeatInterval: 1000, heartbeatTimeout: 3000 });
  emitter = new PostgresEmitter(pool);
} else if (mode === "streams") {
  const client = createClient({ url });
  client.on("error", () => {});
  await client.connect();
  adapter = createStreamsAdapter(client);
} else {
  const pub = sharded
    ? createCluster({ rootNodes: url.split(",").map((url) => ({ url })) })
    : createClient({ url });
  sub = pub.duplicate();
  pub.on("error", () => {});
  sub.on("error", () => {});
  await Promise.all([pub.connect(), sub.connect()]);
  adapter = sharded
    ? createShardedAdapter(pub, sub, shardedOpts)
    : createAdapter(pub, sub, { requestsTimeout: 3000 });
  emitter = sharded ? null : new Emitter(pub);
}

const httpServer = createServer();
const io = new Server(httpServer, {
  adapter,
  ...(recovery === "recovery" ? { connectionStateRecovery: {} } : {}),
});
io.on("connection", (socket) => {
  const room = socket.handshake.query.room;
  if (room) socket.join(room);
  socket.data = { who: "node" };
});

const out = (o) => console.log(JSON.stringify(o));
io.of("/").on("ping", (...args) => {
  const cb = args.pop();
  if (typeof cb === "function") cb("pong-node");
});
io.of("/").on("hello", (...args) => out({ serverSide: ["hello", ...args] }));
function select(cmd, base = io) {
  let op = base;
  if (cmd.to && cmd.to.length) op = op.to(cmd.to);
  if (cmd.except && cmd.except.length) op = op.except(cmd.except);
  if (cmd.local) op = op.local;
  return op;
}
function decode(args) {
  return (args || []).map((a) => (a && a.$hex !== undefined ? Buffer.from(a.$hex, "hex") : a));
}

createInterface({ input: process.stdin }).on("line", async (line) => {
  let cmd;
  try {
    cmd = JSON.parse(line);
    switch (cmd.op) {
      case "emit":
        select(cmd).emit(cmd.event, ...decode(cmd.args));
        break;
      case "emitter": {
        let op = emitter.of(cmd.nsp || "/");
        if (cmd.to && cmd.to.length) op = op.to(cmd.to);
        op.emit(cmd.event, ...decode(cmd.args));
        break;
      }
      case "fetch": {
        const sockets = await select(cmd).fetchSockets();
        out({ fetched: sockets.map((s) => ({ id: s.id, rooms: [...s.rooms], handshake: s.handshake, data: s.data })) });
        break;
      }
      case "rooms":
        out({ rooms: [...(await io.of("/").adapter.allRooms())] });
        break;
      case "join":
        select(cmd).socketsJoin(cmd.rooms);
        break;
      case "resubscribe": {
        // node-redis 4 loses a sharded subscription for good when the Redis
        // node it lives on restarts (it subscribes again at once, the node
        // refuses while it rejoins the cluster): subscribe again by hand.
        const adapter = io.of("/").adapter;
        const channels = [adapter.channel, adapter.responseChannel];
        for (const room of adapter.rooms.keys()) {
          if (adapter.shouldUseASeparateNamespace(room)) channels.push(adapter.dynamicChannel(room));
        }
        for (const channel of channels) {
          await sub.sUnsubscribe(channel);
          await sub.sSubscribe(channel, (message, channel) => adapter.onRawMessage(message, channel), true);
        }
        break;
      }
      case "leave":
        select(cmd).socketsLeave(cmd.rooms);
        break;
      case "disconnect":
        select(cmd).disconnectSockets(!!cmd.close);
        break;
      case "sse":
        io.serverSideEmit(cmd.event, ...decode(cmd.args));
        break;
      case "sse-ack":
        out({ responses: await io.serverSideEmitWithAck(cmd.event, ...decode(cmd.args)) });
        break;
      case "emit-ack":
        out({ acks: await select(cmd).timeout(3000).emitWithAck(cmd.event, ...decode(cmd.args)) });
        break;
      case "count":
        out({ count: await io.of("/").adapter.serverCount() });
        break;
      default:
        throw new Error(`unknown op ${cmd.op}`);
    }
    out({ done: cmd.op });
  } catch (err) {
    out({ error: String(err && err.message ? err.message : err), op: cmd && cmd.op });
  }
});

httpServer.listen(Number(port), "127.0.0.1", () => out({ ready: Number(port) }));
