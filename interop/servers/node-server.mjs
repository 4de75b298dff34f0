// The reference Node.js socket.io server the Rust client's interop tests run against.
// Usage: node node-server.mjs <port> [--recovery] [--tls <dir with key.pem and cert.pem>]
// Port 0 picks a free port; prints {"ready":port} once listening.
//
// Namespaces: "/" and "/admin" accept everyone; "/private" accepts auth.token === "secret"
// and refuses others with the message "not authorized" and data {"code":403}.
// On connection a socket receives "welcome" with its auth (pid and offset left out) and
// whether it was recovered. Events:
//   "echo" (...args)            -> emits "echo-back" with the same arguments (buffers too)
//   "ack" (...args, cb)          -> cb(...args)
//   "ask" (n)                    -> emits "question" (n) with an ack, then "answered" with the answer
//   "count" (...args)            -> counted; "get-count" (cb) -> cb(count of the socket's "count" events)
//   "kick"                       -> the server disconnects the socket
//   "ticks" (n, ms)              -> io.emit("tick", i) for i in 1..=n, one every ms
//   "log" (...)                  -> printed as {"log":[...]}
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { createServer as createTlsServer } from "node:https";
import { join } from "node:path";
import { Server } from "socket.io";

const args = process.argv.slice(2);
const port = Number(args[0] ?? 0);
const recovery = args.includes("--recovery");

const tlsAt = args.indexOf("--tls");
const httpServer = tlsAt >= 0
  ? createTlsServer({
      key: readFileSync(join(args[tlsAt + 1], "key.pem")),
      cert: readFileSync(join(args[tlsAt + 1], "cert.pem")),
    })
  : createServer();
const io = new Server(httpServer, {
  pingInterval: 2000,
  pingTimeout: 1500,
  maxHttpBufferSize: 1e6,
  ...(recovery ? { connectionStateRecovery: { maxDisconnectionDuration: 60000, skipMiddlewares: true } } : {}),
});

const print = (o) => process.stdout.write(JSON.stringify(o) + "\n");

function setup(nsp) {
  nsp.on("connection", (socket) => {
    const { pid, offset, ...auth } = socket.handshake.auth ?? {};
    let count = 0;
    if (!socket.recovered) {
      socket.emit("welcome", auth, socket.recovered, nsp.name);
    }
    socket.on("echo", (...a) => socket.emit("echo-back", ...a));
    socket.on("ack", (...a) => {
      const cb = a.pop();
      if (typeof cb === "function") cb(...a);
    });
    socket.on("ask", async (n) => {
      try {
        const answer = await socket.timeout(5000).emitWithAck("question", n);
        socket.emit("answered", answer);
      } catch (e) {
        socket.emit("answered", "error: " + e.message);
      }
    });
    socket.on("count", () => { count += 1; });
    socket.on("get-count", (cb) => cb(count));
    socket.on("kick", () => socket.disconnect());
    socket.on("ticks", (n, ms) => {
      let i = 0;
      const timer = setInterval(() => {
        i += 1;
        nsp.emit("tick", i);
        if (i >= n) clearInterval(timer);
      }, ms);
    });
    socket.on("log", (...a) => print({ log: a }));
  });
}

setup(io.of("/"));
setup(io.of("/admin"));
const priv = io.of("/private");
priv.use((socket, next) => {
  if (socket.handshake.auth?.token === "secret") return next();
  const err = new Error("not authorized");
  err.data = { code: 403 };
  next(err);
});
setup(priv);

httpServer.listen(port, "127.0.0.1", () => print({ ready: httpServer.address().port }));
