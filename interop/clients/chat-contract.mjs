// The chat example's event contract, checked with 50 official clients
// across several rooms. Usage: node chat-contract.mjs <url>
//
// Every message reaches exactly the other members of its room, acks arrive,
// refusals carry errors, typing stays in its room, presence (joined, left,
// disconnections, renames) reaches the room, and a joiner gets the last 50
// messages. Prints one JSON line: the result, with an "error" field (and
// exit code 1) on a failure or a timeout.
import { io } from "socket.io-client";

const [url] = process.argv.slice(2);
const CLIENTS = 50;
const ROOMS = 5;
const PER_MEMBERSHIP = 3;
const ACK_TIMEOUT = 10000;
const result = { clients: CLIENTS, rooms: ROOMS };

function finish(code) {
  console.log(JSON.stringify(result));
  setTimeout(() => process.exit(code), 100);
}

setTimeout(() => {
  result.error = result.error || `timed out in phase ${result.phase}`;
  finish(1);
}, 90000);

function fail(what, detail) {
  throw new Error(`${what}${detail === undefined ? "" : `: ${JSON.stringify(detail)}`}`);
}

function assert(cond, what, detail) {
  if (!cond) fail(what, detail);
}

function same(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

async function waitFor(what, cond, ms = 15000) {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) fail(`never saw ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function ack(client, event, payload) {
  return client.socket.timeout(ACK_TIMEOUT).emitWithAck(event, payload);
}

function refused(res, what, mentions) {
  assert(res && res.ok === false, `${what} is refused`, res);
  assert(typeof res.error === "string" && res.error.length > 0, `${what} carries an error`, res);
  if (mentions) assert(res.error.includes(mentions), `${what}'s error mentions ${mentions}`, res);
}

/** A connected client that records every server event it gets. */
async function connect(index) {
  // Half on WebSocket only, half starting with long-polling (then upgrading).
  const transports = index % 2 === 0 ? ["websocket"] : ["polling", "websocket"];
  const socket = io(url, { transports, reconnection: false, forceNew: true });
  const client = { index, socket, events: [], rooms: new Map() };
  for (const event of ["message", "joined", "left", "typing"]) {
    socket.on(event, (payload) => client.events.push({ event, ...payload }));
  }
  await new Promise((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("connect_error", (e) => reject(new Error(`client ${index}: ${e.message}`)));
  });
  return client;
}

function got(client, event, filter = () => true) {
  return client.events.filter((e) => e.event === event && filter(e));
}

async function main() {
  result.phase = "connect";
  const clients = await Promise.all([...Array(CLIENTS).keys()].map(connect));

  // Memberships: every client in one room; the first ten in a second room,
  // under another name (a name is per room).
  const memberships = [];
  for (const c of clients) {
    memberships.push({ client: c, room: `room-${c.index % ROOMS}`, name: `user-${c.index}` });
  }
  for (const c of clients.slice(0, 10)) {
    memberships.push({ client: c, room: `room-${(c.index + 1) % ROOMS}`, name: `user-${c.index}-alt` });
  }

  // Joins, one at a time so that each ack's member list is known exactly.
  result.phase = "join";
  const roomMembers = new Map(); // room -> [membership] in joining order
  for (const m of memberships) {
    const before = roomMembers.get(m.room) || [];
    const res = await ack(m.client, "join", { room: m.room, name: m.name });
    const expected = [...before.map((x) => x.name), m.name];
    assert(res && res.ok === true, `join ${m.room} as ${m.name} is acked ok`, res);
    assert(same(res.members, expected), `the members of ${m.room} as ${m.name} joins`, { got: res.members, expected });
    assert(same(res.history, []), `the history of the new ${m.room}`, res.history);
    roomMembers.set(m.room, [...before, m]);
    m.client.rooms.set(m.room, m.name);
  }
  // Each member is told of the members who joined after it, and of no one else.
  for (const [room, list] of roomMembers) {
    for (const [i, m] of list.entries()) {
      const later = list.slice(i + 1).filter((x) => x.client !== m.client).map((x) => x.name);
      await waitFor(`${m.name} told of ${later.length} joins in ${room}`,
        () => got(m.client, "joined", (e) => e.room === room).length >= later.length);
      const names = got(m.client, "joined", (e) => e.room === room).map((e) => e.name);
      assert(same(names, later), `${m.name}'s joined events in ${room}`, { names, later });
    }
  }
  for (const c of clients) {
    const foreign = c.events.filter((e) => !c.rooms.has(e.room));
    assert(foreign.length === 0, `client ${c.index} got events of rooms it is not in`, foreign);
  }
  result.joins = memberships.length;

  // Refusals.
  result.phase = "refusals";
  const c0 = clients[0];
  const long = (n) => "x".repeat(n);
  refused(await ack(c0, "join", { room: "", name: "ana" }), "an empty room", "room");
  refused(await ack(c0, "join", { room: "   ", name: "ana" }), "a blank room", "room");
  refused(await ack(c0, "join", { room: long(65), name: "ana" }), "a 65-character room", "room");
  refused(await ack(c0, "join", { room: "elsewhere", name: "" }), "an empty name", "name");
  refused(await ack(c0, "join", { room: "elsewhere", name: long(65) }), "a 65-character name", "name");
  refused(await ack(c0, "join", "elsewhere"), "a join without an object");
  refused(await ack(c0, "join", { room: "elsewhere" }), "a join without a name");
  const edge = await ack(c0, "join", { room: long(64), name: long(64) });
  assert(edge && edge.ok === true, "a 64-character room and name are accepted", edge);
  assert(same(edge.members, [long(64)]), "the 64-character member", edge.members);
  const left = await ack(c0, "leave", { room: long(64) });
  assert(left && left.ok === true, "leave is acked", left);
  refused(await ack(c0, "leave", { room: long(64) }), "leaving a room not joined", "not in room");
  refused(await ack(c0, "message", { room: "room-0", text: "" }), "an empty text", "text");
  refused(await ack(c0, "message", { room: "room-0", text: "  \n " }), "a blank text", "text");
  refused(await ack(c0, "message", { room: "room-0", text: long(2001) }), "a 2001-character text", "2000");
  refused(await ack(c0, "message", { room: "room-3", text: "hi" }), "a message to a room not joined", "not in room");
  refused(await ack(c0, "message", { room: "nowhere", text: "hi" }), "a message to no room", "not in room");
  refused(await ack(c0, "message", { text: "hi" }), "a message without a room");
  // No refusal reached anyone.
  await new Promise((r) => setTimeout(r, 200));
  const stray = clients.flatMap((c) => got(c, "message"));
  assert(stray.length === 0, "refused messages reach no one", stray);

  // Messages, all at once: each reaches exactly the other members of its room.
  result.phase = "messages";
  const sent = []; // { id, room, name, text, sender }
  const sends = [];
  for (const m of memberships) {
    for (let k = 0; k < PER_MEMBERSHIP; k++) {
      const text = `${m.name} says ${k} in ${m.room}`;
      sends.push(ack(m.client, "message", { room: m.room, text }).then((res) => {
        assert(res && res.ok === true && typeof res.id === "string" && res.id.length > 0,
          `the ack of "${text}"`, res);
        assert(typeof res.ts === "number", `the ack of "${text}" has ts`, res);
        sent.push({ id: res.id, room: m.room, name: m.name, text, sender: m.client });
      }));
    }
  }
  // One of exactly 2000 characters, accepted.
  const big = long(2000);
  sends.push(ack(c0, "message", { room: "room-0", text: big }).then((res) => {
    assert(res && res.ok === true, "a 2000-character text is accepted", res);
    sent.push({ id: res.id, room: "room-0", name: "user-0", text: big, sender: c0 });
  }));
  await Promise.all(sends);
  assert(new Set(sent.map((s) => s.id)).size === sent.length, "message ids are unique");
  const expectedCount = (c) => sent.filter((s) => s.sender !== c && c.rooms.has(s.room)).length;
  await waitFor("every message at every member", () =>
    clients.every((c) => got(c, "message").length >= expectedCount(c)));
  await new Promise((r) => setTimeout(r, 200));
  let deliveries = 0;
  const byId = new Map(sent.map((s) => [s.id, s]));
  for (const c of clients) {
    const msgs = got(c, "message");
    assert(msgs.length === expectedCount(c), `client ${c.index} got exactly its rooms' messages`,
      { got: msgs.length, expected: expectedCount(c) });
    const ids = new Set();
    for (const e of msgs) {
      const s = byId.get(e.id);
      assert(s, `client ${c.index} got an unknown message`, e);
      assert(!ids.has(e.id), `client ${c.index} got ${e.id} twice`);
      ids.add(e.id);
      assert(s.sender !== c, `client ${c.index} got its own message back`, e);
      assert(c.rooms.has(e.room), `client ${c.index} got a message of ${e.room}`, e);
      assert(e.room === s.room && e.name === s.name && e.text === s.text && typeof e.ts === "number",
        "a message's fields", { got: e, sent: { room: s.room, name: s.name, text: s.text } });
      deliveries += 1;
    }
  }
  result.messages = sent.length;
  result.deliveries = deliveries;

  // Every member sees its room's messages in the room's order: the history
  // a newcomer gets.
  result.phase = "order";
  const observer = await connect(CLIENTS);
  for (let r = 0; r < ROOMS; r++) {
    const room = `room-${r}`;
    const res = await ack(observer, "join", { room, name: "observer" });
    const roomSent = sent.filter((s) => s.room === room);
    assert(res.ok && res.history.length === Math.min(roomSent.length, 50), `the history of ${room}`, res.history.length);
    const order = res.history.map((h) => h.id);
    assert(same([...order].sort(), roomSent.map((s) => s.id).sort()), `${room}'s history holds its messages`);
    for (const c of clients.filter((c) => c.rooms.has(room))) {
      const seen = got(c, "message", (e) => e.room === room).map((e) => e.id);
      const expected = order.filter((id) => seen.includes(id));
      assert(same(seen, expected), `client ${c.index} saw ${room} in order`, { seen, expected });
    }
  }
  observer.socket.disconnect();

  // Typing reaches the other members of the room only.
  result.phase = "typing";
  const room0 = roomMembers.get("room-0");
  c0.socket.emit("typing", { room: "room-0" });
  const typers = room0.filter((m) => m.client !== c0);
  await waitFor("typing at every other member of room-0", () =>
    typers.every((m) => got(m.client, "typing").length >= 1));
  await new Promise((r) => setTimeout(r, 200));
  for (const c of clients) {
    const t = got(c, "typing");
    const member = typers.some((m) => m.client === c);
    assert(t.length === (member ? 1 : 0), `client ${c.index} typing events`, t);
    if (member) assert(t[0].room === "room-0" && t[0].name === "user-0", "the typing event", t[0]);
  }
  // A room not joined: nothing (checked at the end).
  c0.socket.emit("typing", { room: "room-3" });
  const typingAfter = clients.map((c) => got(c, "typing").length);

  // The last 50 messages on joining.
  result.phase = "history";
  const writer = clients[49];
  assert((await ack(writer, "join", { room: "busy", name: "writer" })).ok, "join busy");
  for (let k = 1; k <= 60; k++) {
    const res = await ack(writer, "message", { room: "busy", text: `busy ${k}` });
    assert(res.ok, `busy ${k} is accepted`, res);
  }
  const late = await connect(CLIENTS + 1);
  const busy = await ack(late, "join", { room: "busy", name: "late" });
  assert(busy.ok && same(busy.members, ["writer", "late"]), "busy's members", busy.members);
  assert(same(busy.history.map((h) => h.text), [...Array(50).keys()].map((k) => `busy ${k + 11}`)),
    "a joiner gets the last 50 messages, oldest first", busy.history.map((h) => h.text));
  assert(busy.history.every((h) => h.room === "busy" && h.name === "writer" && typeof h.id === "string" && typeof h.ts === "number"),
    "history entries have the message fields", busy.history[0]);
  await waitFor("the writer told of the late joiner", () =>
    got(writer, "joined", (e) => e.room === "busy" && e.name === "late").length === 1);
  late.socket.disconnect();
  await waitFor("the writer told the late joiner left", () =>
    got(writer, "left", (e) => e.room === "busy" && e.name === "late").length === 1);

  // Leaving: the room is told, and the leaver gets nothing more from it.
  result.phase = "leave";
  const c5 = clients[5];
  assert((await ack(c5, "leave", { room: "room-0" })).ok, "client 5 leaves room-0");
  c5.rooms.delete("room-0");
  const stayers = roomMembers.get("room-0").filter((m) => m.client !== c5);
  await waitFor("room-0 told user-5 left", () =>
    stayers.every((m) => got(m.client, "left", (e) => e.room === "room-0" && e.name === "user-5").length === 1));
  refused(await ack(c5, "message", { room: "room-0", text: "still here?" }), "a message after leaving", "not in room");
  const before5 = got(c5, "message").length;
  const after = await ack(clients[10], "message", { room: "room-0", text: "after user-5 left" });
  assert(after.ok, "a message after the leave", after);
  await waitFor("the message after the leave", () =>
    got(clients[15], "message", (e) => e.text === "after user-5 left").length === 1);
  await new Promise((r) => setTimeout(r, 200));
  assert(got(c5, "message").length === before5, "the leaver gets no more messages of room-0");

  // Renaming: joining again under another name.
  result.phase = "rename";
  const c10 = clients[10];
  const renamed = await ack(c10, "join", { room: "room-0", name: "user-10-renamed" });
  assert(renamed.ok && renamed.members.includes("user-10-renamed") && !renamed.members.includes("user-10"),
    "the rename's ack", renamed.members);
  await waitFor("room-0 told of the rename", () =>
    got(clients[15], "joined", (e) => e.name === "user-10-renamed").length === 1);
  const renameEvents = clients[15].events
    .filter((e) => (e.event === "left" && e.name === "user-10") || (e.event === "joined" && e.name === "user-10-renamed"))
    .map((e) => e.event);
  assert(same(renameEvents, ["left", "joined"]), "a rename is left then joined", renameEvents);
  const again = await ack(c10, "join", { room: "room-0", name: "user-10-renamed" });
  assert(again.ok, "joining again under the same name", again);

  // A disconnection: each of its rooms is told, under its name there.
  result.phase = "disconnect";
  const c4 = clients[4];
  c4.socket.disconnect();
  const room4 = roomMembers.get("room-4").filter((m) => m.client !== c4);
  const rest0 = roomMembers.get("room-0").filter((m) => m.client !== c4 && m.client !== c5);
  await waitFor("room-4 told user-4 left", () =>
    room4.every((m) => got(m.client, "left", (e) => e.room === "room-4" && e.name === "user-4").length === 1));
  await waitFor("room-0 told user-4-alt left", () =>
    rest0.every((m) => got(m.client, "left", (e) => e.room === "room-0" && e.name === "user-4-alt").length === 1));

  // Typing to a room not joined (sent earlier) reached no one.
  const typing = clients.map((c) => got(c, "typing").length);
  assert(same(typing, typingAfter), "typing to a room not joined reaches no one", { typing, typingAfter });

  for (const c of clients) c.socket.disconnect();
  result.ok = true;
}

main().then(
  () => finish(0),
  (e) => {
    result.error = e && e.stack ? e.stack : String(e);
    finish(1);
  },
);
