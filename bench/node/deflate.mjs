// The permessage-deflate benchmark: idle memory per connection and server
// CPU per message, with compression off and on, ours beside the Node.js
// reference. The clients are `ws` (from interop/node_modules) speaking
// Engine.IO v4 and Socket.IO v5 by hand, offering permessage-deflate as
// browsers do (`permessage-deflate; client_max_window_bits`); the Rust
// generator's WebSocket client (tokio-tungstenite 0.26) does not speak it.
//
// Usage, from the workspace root, after `cargo build --release -p bench-servers`
// and `npm ci --prefix interop`:
//   taskset -c 1 node bench/node/deflate.mjs [--clients 1000] [--echo-clients 50]
//     [--messages 20000] [--size 4096] [--servers ours,ours-deflate,node,node-deflate]
//
// For each server (started fresh, pinned to CPU 0):
// 1. `--clients` clients connect and join `/`: VmRSS growth per client;
// 2. each sends one `echo_text` of `--size` bytes and reads the answer, then
//    all stay idle: VmRSS growth per client again (a server that keeps
//    deflate state per connection keeps it from here on);
// 3. `--echo-clients` of them send `--messages` `echo_text` messages in all,
//    each client one at a time: server CPU time (utime + stime) per message,
//    and the bytes on the wire per message each way.
// Prints one JSON line per server, then a Markdown table.
//
// BENCH_WRAP, when set, is put before the server's command (for instance
// `valgrind --tool=callgrind --callgrind-out-file=run.cg`, to count its
// instructions; its memory and CPU figures then mean nothing).
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(new URL("../../interop/package.json", import.meta.url));
const WebSocket = require("ws");

function opt(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
}
const CLIENTS = Number(opt("clients", 1000));
const ECHO_CLIENTS = Number(opt("echo-clients", 50));
const MESSAGES = Number(opt("messages", 20000));
const SIZE = Number(opt("size", 4096));
const SERVERS = opt("servers", "ours,ours-deflate,node,node-deflate").split(",");
const COMMANDS = {
  ours: ["target/release/bench-ours"],
  "ours-deflate": ["target/release/bench-ours", "--deflate"],
  node: ["node", "bench/node/server.mjs"],
  "node-deflate": ["node", "bench/node/server.mjs", "--deflate"],
};
const TICK_US = 10_000; // 1 / CLK_TCK (100 on Linux)

// A chat-like JSON text of `n` bytes from `seed`: it compresses as real
// application data does, not as one repeated byte.
function chatText(n, seed) {
  const words = ("the a to of and in is it you that he was for on are with as I his they be at one " +
    "have this from or had by word but what some we can out other were all there when up use your how " +
    "said an each she which do their time if will way about many then them write would like so these").split(" ");
  const rnd = (k) => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % k;
  };
  let s = "";
  for (let id = 1000; s.length < n; id++) {
    const text = Array.from({ length: 5 + rnd(12) }, () => words[rnd(words.length)]).join(" ");
    s += JSON.stringify({ id, user: `user${rnd(500)}`, ts: 1764600000 + rnd(100000), text }) + ",";
  }
  return s.slice(0, n);
}
// 100 different events (and their echoes, byte for byte), alike as the
// messages of one application are: a client sends them in turn.
const MESSAGES_POOL = Array.from(
  { length: 100 },
  (_, i) => `42${JSON.stringify(["echo_text", chatText(SIZE, 7 + i)])}`,
);

function procStatus(pid, field) {
  const line = readFileSync(`/proc/${pid}/status`, "utf8").split("\n").find((l) => l.startsWith(field));
  return Number(line.split(/\s+/)[1]);
}

function cpuTicks(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const running = new Set();
process.on("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => process.exit(1));

function startServer(name) {
  const [cmd, ...args] = COMMANDS[name];
  const wrap = process.env.BENCH_WRAP ? process.env.BENCH_WRAP.split(" ") : [];
  const child = spawn("taskset", ["-c", "0", ...wrap, cmd, ...args, "--port", "0"], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  running.add(child);
  child.on("exit", () => running.delete(child));
  return new Promise((resolve, reject) => {
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/listening on (\S+)/);
      if (m) resolve({ child, addr: m[1] });
    });
    child.on("exit", (code) => reject(new Error(`${name} exited with ${code}`)));
  });
}

// One client: a WebSocket, its messages, and a way to wait for the next.
class Client {
  static count = 0;

  constructor(addr) {
    this.ws = new WebSocket(`ws://${addr}/socket.io/?EIO=4&transport=websocket`, {
      perMessageDeflate: true,
    });
    this.queue = [];
    this.waiting = [];
    this.sent = Client.count++;
    this.ws.on("message", (data) => {
      const m = data.toString();
      if (m === "2") return this.ws.send("3");
      const w = this.waiting.shift();
      if (w) w(m);
      else this.queue.push(m);
    });
    this.ws.on("error", () => {});
  }
  next() {
    return new Promise((resolve) =>
      this.queue.length ? resolve(this.queue.shift()) : this.waiting.push(resolve),
    );
  }
  async connect() {
    await new Promise((resolve, reject) => {
      this.ws.once("open", resolve);
      this.ws.once("error", reject);
    });
    this.deflate = Object.keys(this.ws._extensions || {}).includes("permessage-deflate");
    const open = await this.next();
    if (!open.startsWith("0{")) throw new Error(`not an open packet: ${open}`);
    this.ws.send("40");
    const connect = await this.next();
    if (!connect.startsWith("40{")) throw new Error(`not a connect: ${connect}`);
  }
  async echo() {
    const message = MESSAGES_POOL[this.sent++ % MESSAGES_POOL.length];
    this.ws.send(message);
    const answer = await this.next();
    if (answer !== message) throw new Error(`a wrong answer of ${answer.length} bytes`);
  }
  wire() {
    const s = this.ws._socket;
    return s ? { read: s.bytesRead, written: s.bytesWritten } : { read: 0, written: 0 };
  }
}

async function inBatches(items, width, f) {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, items.length) }, async () => {
      while (next < items.length) await f(items[next++]);
    }),
  );
}

async function measure(name) {
  const log = (m) => process.env.BENCH_DEBUG && console.error(`${name}: ${m}`);
  const { child, addr } = await startServer(name);
  const pid = child.pid;
  // The server's own pid, under taskset's exec.
  await sleep(1000);
  const rss0 = procStatus(pid, "VmRSS:");
  log("started");
  const clients = Array.from({ length: CLIENTS }, () => null);
  await inBatches([...clients.keys()], 200, async (i) => {
    clients[i] = new Client(addr);
    await clients[i].connect();
  });
  await sleep(2000);
  const rssConnected = procStatus(pid, "VmRSS:");
  log("connected");
  await inBatches(clients, 100, (c) => c.echo());
  await sleep(2000);
  const rssAfterEcho = procStatus(pid, "VmRSS:");
  log("echoed once");
  const echoers = clients.slice(0, ECHO_CLIENTS);
  const wire0 = echoers.map((c) => c.wire());
  const ticks0 = cpuTicks(pid);
  const t0 = process.hrtime.bigint();
  const per = Math.ceil(MESSAGES / ECHO_CLIENTS);
  await Promise.all(
    echoers.map(async (c) => {
      for (let i = 0; i < per; i++) await c.echo();
    }),
  );
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const ticks = cpuTicks(pid) - ticks0;
  const wire1 = echoers.map((c) => c.wire());
  const sent = per * ECHO_CLIENTS;
  const up = wire1.reduce((a, w, i) => a + w.written - wire0[i].written, 0) / sent;
  const down = wire1.reduce((a, w, i) => a + w.read - wire0[i].read, 0) / sent;
  const result = {
    server: name,
    clients: CLIENTS,
    deflate: clients.every((c) => c.deflate),
    kibPerClientConnected: (rssConnected - rss0) / CLIENTS,
    kibPerClientAfterEcho: (rssAfterEcho - rss0) / CLIENTS,
    messages: sent,
    size: SIZE,
    cpuUsPerMessage: (ticks * TICK_US) / sent,
    seconds,
    wireBytesUpPerMessage: up,
    wireBytesDownPerMessage: down,
  };
  for (const c of clients) c.ws.terminate();
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  await Promise.race([exited, sleep(30000)]);
  return result;
}

const results = [];
for (const name of SERVERS) {
  const r = await measure(name);
  console.log(JSON.stringify(r));
  results.push(r);
}
console.log(`\n| server | deflate agreed | KiB/conn connected | KiB/conn after one ${SIZE}-byte echo | CPU µs/message | wire bytes up / down per message |`);
console.log("|---|---|---:|---:|---:|---:|");
for (const r of results) {
  console.log(
    `| ${r.server} | ${r.deflate ? "yes" : "no"} | ${r.kibPerClientConnected.toFixed(2)} | ${r.kibPerClientAfterEcho.toFixed(2)} | ${r.cpuUsPerMessage.toFixed(1)} | ${Math.round(r.wireBytesUpPerMessage)} / ${Math.round(r.wireBytesDownPerMessage)} |`,
  );
}
process.exit(0);
