// The Admin UI's protocol, spoken by the official client to an instrumented
// server's admin namespace, as the UI speaks it.
// Usage:
//   node admin.mjs auth <url> <readonly url>
//   node admin.mjs activity <url>
//   node admin.mjs cluster <url> <redis url>
// The admin namespace is /admin, with basic authentication admin / secret
// (none in the cluster scenario). Prints one JSON line with what was seen,
// with an "error" field (and exit code 1) on a failure or a timeout.
import { io } from "socket.io-client";

const [scenario, ...args] = process.argv.slice(2);
const result = { scenario };
function finish(code) {
  console.log(JSON.stringify(result));
  setTimeout(() => process.exit(code), 100);
}
setTimeout(() => {
  result.error = result.error || `timed out in phase ${result.phase}`;
  finish(1);
}, 60000);

const opts = { transports: ["websocket"], reconnection: false, forceNew: true };

// Connects; resolves with the socket, or rejects with the connect_error.
const connect = (url, extra = {}) =>
  new Promise((resolve, reject) => {
    const s = io(url, { ...opts, ...extra });
    s.on("connect", () => resolve(s));
    s.on("connect_error", (e) => {
      s.close();
      reject(e);
    });
  });

// An admin socket whose events are all recorded, so that a test waits for
// one that may have come before it started waiting.
function admin(url, auth) {
  const seen = [];
  const waiters = [];
  const s = io(`${url}/admin`, { ...opts, auth });
  s.onAny((event, ...a) => {
    seen.push([event, ...a]);
    for (const w of [...waiters]) {
      if (w.event === event && w.pred(...a)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(a);
      }
    }
  });
  const next = (event, pred = () => true) => {
    const found = seen.find(([e, ...a]) => e === event && pred(...a));
    if (found) return Promise.resolve(found.slice(1));
    return new Promise((resolve) => waiters.push({ event, pred, resolve }));
  };
  const ready = new Promise((resolve, reject) => {
    s.on("connect", () => resolve(s));
    s.on("connect_error", reject);
  });
  return { s, seen, next, ready };
}

const ADMIN = { username: "admin", password: "secret" };

try {
  if (scenario === "auth") {
    const [url, readonlyUrl] = args;
    result.phase = "wrong password";
    try {
      await connect(`${url}/admin`, { auth: { username: "admin", password: "nope" } });
      result.wrongPassword = "accepted";
    } catch (e) {
      result.wrongPassword = e.message;
    }
    try {
      await connect(`${url}/admin`, { auth: {} });
      result.noCredentials = "accepted";
    } catch (e) {
      result.noCredentials = e.message;
    }
    result.phase = "right password";
    const a = admin(url, ADMIN);
    await a.ready;
    const [sessionId] = await a.next("session");
    result.session = sessionId;
    const [config] = await a.next("config");
    result.features = config.supportedFeatures;
    a.s.close();
    result.phase = "session";
    try {
      const again = await connect(`${url}/admin`, { auth: { sessionId } });
      result.sessionAccepted = true;
      again.close();
    } catch (e) {
      result.sessionAccepted = e.message;
    }
    try {
      await connect(`${url}/admin`, { auth: { sessionId: "0123456789abcdef" } });
      result.unknownSessionAccepted = true;
    } catch (e) {
      result.unknownSessionAccepted = e.message;
    }
    result.phase = "readonly";
    const r = admin(readonlyUrl, ADMIN);
    await r.ready;
    const [roConfig] = await r.next("config");
    result.readonlyFeatures = roConfig.supportedFeatures;
    r.s.close();
    finish(0);
  } else if (scenario === "activity") {
    const [url] = args;
    result.phase = "first client";
    const ana = await connect(url);
    await ana.timeout(5000).emitWithAck("join", "lobby");
    result.phase = "admin";
    const a = admin(url, ADMIN);
    await a.ready;
    const [all] = await a.next("all_sockets");
    const anaSeen = all.find((s) => s.id === ana.id);
    result.allSockets = {
      count: all.length,
      ana: anaSeen && {
        nsp: anaSeen.nsp,
        rooms: anaSeen.rooms,
        clientId: anaSeen.clientId,
        transport: anaSeen.transport,
        data: anaSeen.data,
        hasHeaders: typeof anaSeen.handshake?.headers === "object",
        url: anaSeen.handshake?.url,
      },
      admin: all.some((s) => s.nsp === "/admin"),
    };
    result.phase = "second client";
    const bob = await connect(url, { query: { who: "bob" } });
    const [connected, date] = await a.next("socket_connected", (s) => s.id === bob.id);
    result.socketConnected = {
      nsp: connected.nsp,
      clientId: connected.clientId,
      transport: connected.transport,
      query: connected.handshake.query,
      date: !Number.isNaN(Date.parse(date)),
    };
    await bob.timeout(5000).emitWithAck("join", "kitchen");
    const [jNsp, jRoom] = await a.next("room_joined", (n, room, id) => id === bob.id && room === "kitchen");
    result.roomJoined = [jNsp, jRoom];
    bob.emit("hello", "world", 42);
    const [rNsp, , rArgs] = await a.next("event_received", (n, id, ev) => id === bob.id && ev[0] === "hello");
    result.eventReceived = [rNsp, rArgs];
    const [, , sArgs] = await a.next("event_sent", (n, id, ev) => id === bob.id && ev[0] === "joined");
    result.eventSent = sArgs;
    result.phase = "server_stats";
    const [stats] = await a.next("server_stats", (st) =>
      st.namespaces.some((n) => n.name === "/" && n.socketsCount === 2),
    );
    result.stats = {
      serverId: stats.serverId,
      hostname: typeof stats.hostname,
      pid: stats.pid,
      uptime: typeof stats.uptime,
      clientsCount: stats.clientsCount,
      pollingClientsCount: stats.pollingClientsCount,
      namespaces: stats.namespaces,
    };
    // The counters of the connections so far, summed over every server_stats.
    const [later] = await a.next("server_stats", (st) => st !== stats);
    const totals = {};
    for (const [ev, st] of a.seen) {
      if (ev !== "server_stats") continue;
      for (const e of st.aggregatedEvents) totals[e.type] = (totals[e.type] || 0) + e.count;
    }
    result.aggregated = totals;
    result.laterClients = later.clientsCount;
    result.phase = "actions";
    const notice = new Promise((resolve) => ana.once("notice", (...x) => resolve(x)));
    a.s.emit("emit", "/", ana.id, "notice", "hi", { n: 1 });
    result.notice = await notice;
    a.s.emit("join", "/", "extra", ana.id);
    const [, xRoom] = await a.next("room_joined", (n, room, id) => id === ana.id && room === "extra");
    result.joinedByAdmin = xRoom;
    a.s.emit("leave", "/", "extra", ana.id);
    const [, lRoom] = await a.next("room_left", (n, room, id) => id === ana.id && room === "extra");
    result.leftByAdmin = lRoom;
    // The client forgets its id once disconnected.
    const bobId = bob.id;
    const bobGone = new Promise((resolve) => bob.once("disconnect", resolve));
    a.s.emit("_disconnect", "/", false, bobId);
    result.bobReason = await bobGone;
    const [, , reason] = await a.next("socket_disconnected", (n, id) => id === bobId);
    result.disconnectedReason = reason;
    ana.close();
    a.s.close();
    finish(0);
  } else if (scenario === "cluster") {
    const [url, redisUrl] = args;
    result.phase = "node server";
    const { createServer } = await import("node:http");
    const { createClient } = await import("redis");
    const { Server } = await import("socket.io");
    const { createAdapter } = await import("@socket.io/redis-adapter");
    const { instrument } = await import("@socket.io/admin-ui");
    const pub = createClient({ url: redisUrl });
    const sub = pub.duplicate();
    pub.on("error", () => {});
    sub.on("error", () => {});
    await Promise.all([pub.connect(), sub.connect()]);
    const httpServer = createServer();
    const nodeIo = new Server(httpServer, { adapter: createAdapter(pub, sub, { requestsTimeout: 3000 }) });
    instrument(nodeIo, { auth: false, serverId: "node-server", mode: "development" });
    nodeIo.on("connection", () => {});
    await new Promise((resolve) => httpServer.listen(0, "127.0.0.1", resolve));
    const nodeUrl = `http://127.0.0.1:${httpServer.address().port}`;
    result.phase = "clients";
    const onRust = await connect(url);
    const onNode = await connect(nodeUrl);
    result.phase = "rust admin";
    const rust = admin(url, {});
    await rust.ready;
    const servers = new Set();
    await rust.next("server_stats", (st) => {
      servers.add(st.serverId);
      return servers.has("rust-server") && servers.has("node-server");
    });
    result.serversSeenByRust = [...servers].sort();
    const [rustAll] = await rust.next("all_sockets");
    result.rustSeesNodeSocket = rustAll.some((s) => s.id === onNode.id && s.nsp === "/");
    result.phase = "node admin";
    const node = admin(nodeUrl, {});
    await node.ready;
    const nodeServers = new Set();
    await node.next("server_stats", (st) => {
      nodeServers.add(st.serverId);
      return nodeServers.has("rust-server") && nodeServers.has("node-server");
    });
    result.serversSeenByNode = [...nodeServers].sort();
    const [nodeAll] = await node.next("all_sockets");
    const rustSocket = nodeAll.find((s) => s.id === onRust.id);
    result.nodeSeesRustSocket = rustSocket && {
      nsp: rustSocket.nsp,
      clientId: rustSocket.clientId,
      transport: rustSocket.transport,
    };
    // The process exits with the Node.js server and its Redis clients open.
    finish(0);
  } else {
    result.error = `unknown scenario ${scenario}`;
    finish(2);
  }
} catch (e) {
  result.error = `${result.phase}: ${e.message}`;
  finish(1);
}
