// The benchmark server on the reference Node.js implementation (`socket.io`
// from npm, default `ws` engine), with the handlers of the Rust servers.
// Usage: node bench/node/server.mjs [--port N] [--deflate] [--recovery];
// prints `listening on <addr>`. `--deflate` turns on `perMessageDeflate` (the
// reference's defaults: a threshold of 1024 bytes), `--recovery`
// `connectionStateRecovery` (its defaults: sessions kept 2 minutes).
import { createServer } from "node:http";
import { createRequire } from "node:module";

const require = createRequire(new URL("../../interop/package.json", import.meta.url));
const { Server } = require("socket.io");

const portFlag = process.argv.indexOf("--port");
const port = portFlag > 0 ? Number(process.argv[portFlag + 1]) : 0;

const httpServer = createServer();
const io = new Server(httpServer, {
  perMessageDeflate: process.argv.includes("--deflate"),
  ...(process.argv.includes("--recovery") ? { connectionStateRecovery: {} } : {}),
});

io.on("connection", (socket) => {
  socket.on("echo", (...args) => {
    socket.emit("echo", ...args);
  });
  socket.on("echo_text", (text) => {
    socket.emit("echo_text", text);
  });
  socket.on("echo_ack", (...args) => {
    const ack = args.pop();
    ack(...args);
  });
  socket.on("join", (room, ack) => {
    socket.join(room);
    ack();
  });
  socket.on("stats", (ack) => {
    ack(io.engine.clientsCount);
  });
  socket.on("broadcast", (...args) => {
    io.to("bench").emit("bcast", ...args);
  });
});

httpServer.listen(port, "127.0.0.1", () => {
  const { address, port } = httpServer.address();
  console.log(`listening on ${address}:${port}`);
});
