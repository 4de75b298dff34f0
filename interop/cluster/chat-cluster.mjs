// Two chat instances in one cluster: a client on each joins the same room,
// and presence, messages and typing cross from one instance to the other.
// Usage: node chat-cluster.mjs <url of instance 1> <url of instance 2>
// Prints one JSON line: what each client saw, with an "error" field (and
// exit code 1) on a failure or a timeout.
import { io } from "socket.io-client";

const [url1, url2] = process.argv.slice(2);
const result = {};
function finish(code) {
  console.log(JSON.stringify(result));
  setTimeout(() => process.exit(code), 100);
}
setTimeout(() => {
  result.error = result.error || `timed out in phase ${result.phase}`;
  finish(1);
}, 20000);

const connect = (url) =>
  new Promise((resolve, reject) => {
    const s = io(url, { transports: ["websocket"], reconnection: false });
    s.on("connect", () => resolve(s));
    s.on("connect_error", reject);
  });
const next = (s, ev) => new Promise((resolve) => s.once(ev, resolve));

try {
  result.phase = "connect";
  const ana = await connect(url1);
  const bob = await connect(url2);
  result.phase = "join";
  const joinedAna = await ana.timeout(5000).emitWithAck("join", { room: "lobby", name: "ana" });
  const seenJoin = next(ana, "joined");
  const joinedBob = await bob.timeout(5000).emitWithAck("join", { room: "lobby", name: "bob" });
  result.joined = [joinedAna.ok, joinedBob.ok, await seenJoin];
  result.phase = "message";
  const gotMessage = next(bob, "message");
  const ack = await ana.timeout(5000).emitWithAck("message", { room: "lobby", text: "hi from 1" });
  result.ack = ack.ok;
  result.message = await gotMessage;
  result.phase = "reply";
  const gotReply = next(ana, "message");
  await bob.timeout(5000).emitWithAck("message", { room: "lobby", text: "hi from 2" });
  result.reply = await gotReply;
  result.phase = "typing";
  const gotTyping = next(ana, "typing");
  bob.emit("typing", { room: "lobby" });
  result.typing = await gotTyping;
  result.phase = "left";
  const gotLeft = next(ana, "left");
  bob.disconnect();
  result.left = await gotLeft;
  ana.disconnect();
  finish(0);
} catch (err) {
  result.error = String(err && err.message ? err.message : err);
  finish(1);
}
