// Records what the reference Postgres adapter and emitter notify: one JSON
// line per notification, {channel, payload}, with the attachment's bytes as
// hex ("attachment") when the payload points at one.
// Usage: node record-postgres-vectors.mjs <postgres url>
//
// A Node socket.io server with @socket.io/postgres-adapter broadcasts a few
// events (a plain one, one to two rooms except a third, one with a Buffer
// and one too large for a notification, both through the attachments
// table), changes rooms, emits to the servers, sends a heartbeat; then
// @socket.io/postgres-emitter emits one. The adapter's uid is fixed to
// "node01" (after its first heartbeat, which is not recorded), and the
// attachments go to a table of their own, made afresh, so that their ids
// are stable.
import pg from "pg";
import { Server } from "socket.io";
import { createAdapter } from "@socket.io/postgres-adapter";
import { Emitter } from "@socket.io/postgres-emitter";

const url = process.argv[2];
const tableName = "socket_io_vectors";
const pool = new pg.Pool({ connectionString: url });
await pool.query(`DROP TABLE IF EXISTS ${tableName}`);
await pool.query(
  `CREATE TABLE ${tableName} (id bigserial UNIQUE, created_at timestamptz DEFAULT NOW(), payload bytea)`,
);

const io = new Server({
  adapter: createAdapter(pool, { tableName, heartbeatInterval: 600000, cleanupInterval: 600000 }),
});
const adapter = io.of("/").adapter;
await new Promise((r) => setTimeout(r, 300));
adapter.uid = "node01";

const spy = new pg.Client({ connectionString: url });
await spy.connect();
const seen = [];
spy.on("notification", (n) => seen.push({ channel: n.channel, payload: n.payload }));
await spy.query(`LISTEN "socket.io#/"`);
const settle = () => new Promise((r) => setTimeout(r, 100));

io.emit("plain", "hello", 1);
await settle();
io.to(["r1", "r2"]).except("r3").emit("multi", { a: [1, 2.5, null, true] });
await settle();
io.emit("bin", Buffer.from([1, 2, 3]));
await settle();
io.emit("big", "x".repeat(9000));
await settle();
io.in("a").socketsJoin(["b"]);
await settle();
io.serverSideEmit("hello", "world", 2);
await settle();
adapter.publish({ type: 2 });
await settle();
const emitter = new Emitter(pool);
emitter.to("room1").emit("from-emitter", "x");
await settle();

for (const m of seen) {
  const header = JSON.parse(m.payload);
  if (header.attachmentId) {
    const result = await pool.query(`SELECT payload FROM ${tableName} WHERE id = $1`, [header.attachmentId]);
    m.attachment = Buffer.from(result.rows[0].payload).toString("hex");
  }
  console.log(JSON.stringify(m));
}
adapter.close();
await spy.end();
await pool.end();
process.exit(0);
