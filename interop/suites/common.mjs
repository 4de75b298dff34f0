// What the two protocol suites share: the server's address, the heartbeat
// they expect, the chai assertions they use, and a WebSocket client: the
// `ws` package behind the browser's event API, with every `open`, `close`
// and `message` event kept in order until a test asks for it, so that no
// event is lost between two awaits (ws may dispatch the messages of one TCP
// read synchronously, one after the other).
import assert from "node:assert";
import { WebSocket } from "ws";

// The server under test: `SERVER_URL`, http://localhost:3000 by default.
export const URL = (process.env.SERVER_URL || "http://localhost:3000").replace(
  /\/+$/,
  "",
);
export const WS_URL = URL.replace(/^http/, "ws");

export const PING_INTERVAL = 300;
export const PING_TIMEOUT = 200;

// Mocha's default timeout, under which the suites run.
export const TIMEOUT = { timeout: 2000 };
// The heartbeat tests' own timeout.
export const HEARTBEAT_TIMEOUT = { timeout: 5000 };

export function sleep(delay) {
  return new Promise((resolve) => setTimeout(resolve, delay));
}

// chai's `expect(actual).to.startsWith(prefix)`.
export function assertStartsWith(actual, prefix) {
  assert.strictEqual(typeof actual, "string", `${actual} is not a string`);
  assert.ok(
    actual.startsWith(prefix),
    `expected ${JSON.stringify(actual)} to start with ${JSON.stringify(prefix)}`,
  );
}

// chai's `expect(object).to.have.all.keys(...keys)`.
export function assertAllKeys(object, ...keys) {
  assert.deepStrictEqual(Object.keys(object).sort(), [...keys].sort());
}

// chai's `expect(value).to.be.oneOf(values)`.
export function assertOneOf(value, values) {
  assert.ok(
    values.includes(value),
    `expected ${value} to be one of ${JSON.stringify(values)}`,
  );
}

const opened = new Set();

export function createWebSocket(url) {
  const socket = new WebSocket(url);
  opened.add(socket);
  socket._eventBuffer = {};
  socket._pendingPromises = {};
  for (const eventType of ["open", "close", "message"]) {
    socket._eventBuffer[eventType] = [];
    socket._pendingPromises[eventType] = [];
    socket.addEventListener(eventType, (event) => {
      if (socket._pendingPromises[eventType].length) {
        socket._pendingPromises[eventType].shift().resolve(event);
      } else {
        socket._eventBuffer[eventType].push(event);
      }
      if (eventType === "close") {
        socket._closeEvent = event;
        // Nothing else will come: fail whoever still waits, rather than
        // leave node's runner with a promise that never settles (it would
        // cancel every test after this one).
        for (const other of ["open", "message"]) {
          for (const { reject } of socket._pendingPromises[other].splice(0)) {
            reject(closedError(other, event));
          }
        }
      }
    });
  }
  // A refused upgrade is reported as an error, then as a close.
  socket.on("error", () => {});
  socket.on("close", () => opened.delete(socket));
  return socket;
}

function closedError(eventType, event) {
  return new Error(
    `the WebSocket closed (code ${event.code}) while waiting for "${eventType}"`,
  );
}

export function waitFor(socket, eventType) {
  if (socket._eventBuffer[eventType].length) {
    return Promise.resolve(socket._eventBuffer[eventType].shift());
  }
  if (eventType !== "close" && socket._closeEvent) {
    return Promise.reject(closedError(eventType, socket._closeEvent));
  }
  return new Promise((resolve, reject) => {
    socket._pendingPromises[eventType].push({ resolve, reject });
  });
}

// The data of the next `count` messages, Engine.IO pings ("2") left out.
export async function waitForPackets(socket, count) {
  const packets = [];
  while (packets.length < count) {
    const { data } = await waitFor(socket, "message");
    if (data === "2") {
      // ignore PING packets
      continue;
    }
    packets.push(data);
  }
  return packets;
}

// Closes the sockets the tests left open, so that the run ends at once.
export function closeAll() {
  for (const socket of opened) {
    socket.terminate();
  }
  opened.clear();
}
