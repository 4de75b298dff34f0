// The application API of socketio-tokio, seen from the official JavaScript
// client: extractors, middlewares given at registration, the argument
// convention, several listeners per event, disconnecting, error events,
// upgrades, fetched sockets acted on, broadcast acknowledgements awaited
// whole, and a dynamic namespace's parent broadcast.
// Usage: node api.mjs all|child <url>. Prints one JSON line, the result.
import { io } from "socket.io-client";
import { reporter } from "./report.mjs";

const [scenario, url] = process.argv.slice(2);
const result = { scenario };
const finish = reporter(result, 20000);

function once(emitter, event) {
  return new Promise((resolve) => emitter.once(event, (...a) => resolve(a)));
}

function connect(nsp, opts) {
  const socket = io(url + nsp, { reconnection: false, forceNew: true, ...opts });
  return new Promise((resolve, reject) => {
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", (err) => reject(Object.assign(err, { socket })));
  });
}

async function all() {
  // A middleware given with the namespace refuses a client.
  try {
    await connect("/api", { auth: { name: "mallory" }, transports: ["websocket"] });
    result.refused = "accepted";
  } catch (err) {
    result.refused = err.message;
    err.socket.close();
  }

  // Extractors in the connect handler: the middleware's extension, the
  // state, the auth object, the transport; then an upgrade is reported.
  // Both listeners are there from the start: the two events may come in
  // one read, dispatched before an await after the first one returns.
  const ann = io(url + "/api", { reconnection: false, forceNew: true, auth: { name: "ann" } });
  const welcome = once(ann, "welcome");
  const upgraded = once(ann, "upgraded");
  result.welcome = await welcome;
  result.upgraded = (await upgraded)[0];

  // The argument convention, both ways.
  result.oneArray = await ann.emitWithAck("one-array", [1, 2, 3]);
  result.pair = await new Promise((resolve) =>
    ann.emit("pair", "x", 2, (...a) => resolve(a)),
  );
  result.singleTuple = await ann.emitWithAck("single-tuple", "solo");
  result.tryData = await ann.emitWithAck("try-data", 1, 2);
  const extractError = once(ann, "error-event");
  ann.emit("typed", "not a number");
  result.extractError = (await extractError)[0];
  const refused = once(ann, "error-event");
  ann.emit("forbidden");
  result.middlewareError = (await refused)[0];

  // Several listeners, once, off.
  ann.emit("multi");
  ann.emit("multi");
  ann.emit("gone");
  result.listeners = await ann.emitWithAck("listener-counts");

  // Disconnecting sees the rooms; disconnect, none.
  const bob = await connect("/api", { auth: { name: "bob" }, transports: ["websocket"] });
  await bob.emitWithAck("join", "r1");
  const bye = once(ann, "bye");
  const gone = once(ann, "gone");
  bob.disconnect();
  result.disconnecting = (await bye)[0];
  result.disconnected = (await gone)[0];

  // Fetched sockets are acted on: emitted to, joined to a room.
  const fetched = once(ann, "fetched");
  const inRoom = once(ann, "in-room");
  result.fetchCount = await ann.emitWithAck("fetch");
  result.fetched = (await fetched)[0] === ann.id;
  result.inRoom = (await inRoom)[0];

  // A broadcast's acknowledgements, awaited whole.
  const carl = await connect("/api", { auth: { name: "carl" }, transports: ["websocket"] });
  for (const s of [ann, carl]) {
    s.on("who", (callback) => callback(s === ann ? "ann" : "carl"));
  }
  result.who = (await ann.emitWithAck("who-is-there")).sort();

  // A dynamic namespace's parent broadcasts to its children.
  const g1 = await connect("/game-1", { transports: ["websocket"] });
  const g2 = await connect("/game-2", { transports: ["websocket"] });
  const news = Promise.all([once(g1, "news"), once(g2, "news")]);
  result.namespaces = await ann.emitWithAck("parent-broadcast");
  result.news = (await news).map((a) => a[0]);

  for (const s of [ann, carl, g1, g2]) s.disconnect();
}

// A dynamic namespace's child, joined, left and joined again.
async function child() {
  for (let i = 0; i < 2; i++) {
    const s = await connect("/game-9", { transports: ["websocket"] });
    const gone = once(s, "disconnect");
    await s.emitWithAck("leave-me");
    await gone;
  }
  result.done = true;
}

const scenarios = { all, child };
if (!scenarios[scenario]) {
  result.error = `unknown scenario ${scenario}`;
  finish(1);
} else {
  scenarios[scenario]().then(
    () => finish(0),
    (err) => {
      result.error = String(err?.stack || err);
      finish(1);
    },
  );
}
