// The reference server (the `socket.io` package) with EIO3 allowed, on a free
// loopback port: `echo` is answered with `echo-back` and the same arguments.
// Prints {"port":N} once listening; runs until killed.
import http from "node:http";
import { Server } from "socket.io";

const server = http.createServer();
const io = new Server(server, { allowEIO3: true });
io.on("connection", (socket) => {
  socket.on("echo", (...args) => socket.emit("echo-back", ...args));
});
server.listen(0, "127.0.0.1", () => {
  console.log(JSON.stringify({ port: server.address().port }));
});
