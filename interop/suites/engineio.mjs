// The Engine.IO v4 protocol test suite, ported to node's test runner: every
// case of the official suite (`engine.io-protocol` v4 test-suite), with its
// names and assertions. The server under test echoes every message, uses
// pingInterval 300 ms, pingTimeout 200 ms and maxPayload 1000000, and is
// reached at SERVER_URL (default http://localhost:3000).
//
//   SERVER_URL=http://127.0.0.1:3000 node --test interop/suites/engineio.mjs
import { after, describe, it } from "node:test";
import assert from "node:assert";
import {
  HEARTBEAT_TIMEOUT,
  PING_INTERVAL,
  PING_TIMEOUT,
  TIMEOUT,
  URL,
  WS_URL,
  assertAllKeys,
  assertOneOf,
  assertStartsWith,
  closeAll,
  createWebSocket,
  sleep,
  waitFor,
} from "./common.mjs";

async function initLongPollingSession() {
  const response = await fetch(`${URL}/engine.io/?EIO=4&transport=polling`);
  const content = await response.text();
  return JSON.parse(content.substring(1)).sid;
}

after(closeAll);

describe("Engine.IO protocol", () => {
  describe("handshake", () => {
    describe("HTTP long-polling", () => {
      it("successfully opens a session", TIMEOUT, async () => {
        const response = await fetch(
          `${URL}/engine.io/?EIO=4&transport=polling`,
        );

        assert.deepStrictEqual(response.status, 200);

        const content = await response.text();

        assertStartsWith(content, "0");

        const value = JSON.parse(content.substring(1));

        assertAllKeys(
          value,
          "sid",
          "upgrades",
          "pingInterval",
          "pingTimeout",
          "maxPayload",
        );
        assert.strictEqual(typeof value.sid, "string");
        assert.deepStrictEqual(value.upgrades, ["websocket"]);
        assert.deepStrictEqual(value.pingInterval, PING_INTERVAL);
        assert.deepStrictEqual(value.pingTimeout, PING_TIMEOUT);
        assert.deepStrictEqual(value.maxPayload, 1000000);
      });

      it("fails with an invalid 'EIO' query parameter", TIMEOUT, async () => {
        const response = await fetch(`${URL}/engine.io/?transport=polling`);

        assert.deepStrictEqual(response.status, 400);

        const response2 = await fetch(
          `${URL}/engine.io/?EIO=abc&transport=polling`,
        );

        assert.deepStrictEqual(response2.status, 400);
      });

      it("fails with an invalid 'transport' query parameter", TIMEOUT, async () => {
        const response = await fetch(`${URL}/engine.io/?EIO=4`);

        assert.deepStrictEqual(response.status, 400);

        const response2 = await fetch(`${URL}/engine.io/?EIO=4&transport=abc`);

        assert.deepStrictEqual(response2.status, 400);
      });

      it("fails with an invalid request method", TIMEOUT, async () => {
        const response = await fetch(
          `${URL}/engine.io/?EIO=4&transport=polling`,
          { method: "post" },
        );

        assert.deepStrictEqual(response.status, 400);

        const response2 = await fetch(
          `${URL}/engine.io/?EIO=4&transport=polling`,
          { method: "put" },
        );

        assert.deepStrictEqual(response2.status, 400);
      });
    });

    describe("WebSocket", () => {
      it("successfully opens a session", TIMEOUT, async () => {
        const socket = createWebSocket(
          `${WS_URL}/engine.io/?EIO=4&transport=websocket`,
        );

        const { data } = await waitFor(socket, "message");

        assertStartsWith(data, "0");

        const value = JSON.parse(data.substring(1));

        assertAllKeys(
          value,
          "sid",
          "upgrades",
          "pingInterval",
          "pingTimeout",
          "maxPayload",
        );
        assert.strictEqual(typeof value.sid, "string");
        assert.deepStrictEqual(value.upgrades, []);
        assert.deepStrictEqual(value.pingInterval, PING_INTERVAL);
        assert.deepStrictEqual(value.pingTimeout, PING_TIMEOUT);
        assert.deepStrictEqual(value.maxPayload, 1000000);

        socket.close();
      });

      it("fails with an invalid 'EIO' query parameter", TIMEOUT, async () => {
        const socket = createWebSocket(
          `${WS_URL}/engine.io/?transport=websocket`,
        );

        await waitFor(socket, "close");

        const socket2 = createWebSocket(
          `${WS_URL}/engine.io/?EIO=abc&transport=websocket`,
        );

        await waitFor(socket2, "close");
      });

      it("fails with an invalid 'transport' query parameter", TIMEOUT, async () => {
        const socket = createWebSocket(`${WS_URL}/engine.io/?EIO=4`);

        await waitFor(socket, "close");

        const socket2 = createWebSocket(
          `${WS_URL}/engine.io/?EIO=4&transport=abc`,
        );

        await waitFor(socket2, "close");
      });
    });
  });

  describe("message", () => {
    describe("HTTP long-polling", () => {
      it("sends and receives a payload containing one plain text packet", TIMEOUT, async () => {
        const sid = await initLongPollingSession();

        const pushResponse = await fetch(
          `${URL}/engine.io/?EIO=4&transport=polling&sid=${sid}`,
          { method: "post", body: "4hello" },
        );

        assert.deepStrictEqual(pushResponse.status, 200);

        const postContent = await pushResponse.text();

        assert.deepStrictEqual(postContent, "ok");

        const pollResponse = await fetch(
          `${URL}/engine.io/?EIO=4&transport=polling&sid=${sid}`,
        );

        assert.deepStrictEqual(pollResponse.status, 200);

        const pollContent = await pollResponse.text();

        assert.deepStrictEqual(pollContent, "4hello");
      });

      it("sends and receives a payload containing several plain text packets", TIMEOUT, async () => {
        const sid = await initLongPollingSession();

        const pushResponse = await fetch(
          `${URL}/engine.io/?EIO=4&transport=polling&sid=${sid}`,
          { method: "post", body: "4test1\x1e4test2\x1e4test3" },
        );

        assert.deepStrictEqual(pushResponse.status, 200);

        const postContent = await pushResponse.text();

        assert.deepStrictEqual(postContent, "ok");

        const pollResponse = await fetch(
          `${URL}/engine.io/?EIO=4&transport=polling&sid=${sid}`,
        );

        assert.deepStrictEqual(pollResponse.status, 200);

        const pollContent = await pollResponse.text();

        assert.deepStrictEqual(pollContent, "4test1\x1e4test2\x1e4test3");
      });

      it("sends and receives a payload containing plain text and binary packets", TIMEOUT, async () => {
        const sid = await initLongPollingSession();

        const pushResponse = await fetch(
          `${URL}/engine.io/?EIO=4&transport=polling&sid=${sid}`,
          { method: "post", body: "4hello\x1ebAQIDBA==" },
        );

        assert.deepStrictEqual(pushResponse.status, 200);

        const postContent = await pushResponse.text();

        assert.deepStrictEqual(postContent, "ok");

        const pollResponse = await fetch(
          `${URL}/engine.io/?EIO=4&transport=polling&sid=${sid}`,
        );

        assert.deepStrictEqual(pollResponse.status, 200);

        const pollContent = await pollResponse.text();

        assert.deepStrictEqual(pollContent, "4hello\x1ebAQIDBA==");
      });

      it("closes the session upon invalid packet format", TIMEOUT, async () => {
        const sid = await initLongPollingSession();

        try {
          const pushResponse = await fetch(
            `${URL}/engine.io/?EIO=4&transport=polling&sid=${sid}`,
            { method: "post", body: "abc" },
          );

          assert.deepStrictEqual(pushResponse.status, 400);
        } catch (e) {
          // fetch rejects when the request is closed abnormally; a wrong
          // status is still a failure
          if (e instanceof assert.AssertionError) {
            throw e;
          }
        }

        const pollResponse = await fetch(
          `${URL}/engine.io/?EIO=4&transport=polling&sid=${sid}`,
        );

        assert.deepStrictEqual(pollResponse.status, 400);
      });

      it("closes the session upon duplicate poll requests", TIMEOUT, async () => {
        const sid = await initLongPollingSession();

        const pollResponses = await Promise.all([
          fetch(`${URL}/engine.io/?EIO=4&transport=polling&sid=${sid}`),
          sleep(5).then(() =>
            fetch(`${URL}/engine.io/?EIO=4&transport=polling&sid=${sid}&t=burst`),
          ),
        ]);

        assert.deepStrictEqual(pollResponses[0].status, 200);

        const content = await pollResponses[0].text();

        assert.deepStrictEqual(content, "1");

        // the Node.js implementation uses HTTP 500 (Internal Server Error), but HTTP 400 seems more suitable
        assertOneOf(pollResponses[1].status, [400, 500]);

        const pollResponse = await fetch(
          `${URL}/engine.io/?EIO=4&transport=polling&sid=${sid}`,
        );

        assert.deepStrictEqual(pollResponse.status, 400);
      });

      it("closes the session upon cancelled polling request", TIMEOUT, async () => {
        const sid = await initLongPollingSession();
        const controller = new AbortController();

        fetch(`${URL}/engine.io/?EIO=4&transport=polling&sid=${sid}`, {
          signal: controller.signal,
        }).catch(() => {});

        await sleep(5);

        controller.abort();

        const pollResponse = await fetch(
          `${URL}/engine.io/?EIO=4&transport=polling&sid=${sid}`,
        );

        assert.deepStrictEqual(pollResponse.status, 400);
      });
    });

    describe("WebSocket", () => {
      it("sends and receives a plain text packet", TIMEOUT, async () => {
        const socket = createWebSocket(
          `${WS_URL}/engine.io/?EIO=4&transport=websocket`,
        );

        await waitFor(socket, "open");

        await waitFor(socket, "message"); // handshake

        socket.send("4hello");

        const { data } = await waitFor(socket, "message");

        assert.deepStrictEqual(data, "4hello");

        socket.close();
      });

      it("sends and receives a binary packet", TIMEOUT, async () => {
        const socket = createWebSocket(
          `${WS_URL}/engine.io/?EIO=4&transport=websocket`,
        );
        socket.binaryType = "arraybuffer";

        await waitFor(socket, "message"); // handshake

        socket.send(Uint8Array.from([1, 2, 3, 4]));

        const { data } = await waitFor(socket, "message");

        assert.deepStrictEqual(data, Uint8Array.from([1, 2, 3, 4]).buffer);

        socket.close();
      });

      it("closes the session upon invalid packet format", TIMEOUT, async () => {
        const socket = createWebSocket(
          `${WS_URL}/engine.io/?EIO=4&transport=websocket`,
        );

        await waitFor(socket, "message"); // handshake

        socket.send("abc");

        await waitFor(socket, "close");

        socket.close();
      });
    });
  });

  describe("heartbeat", () => {
    describe("HTTP long-polling", () => {
      it("sends ping/pong packets", HEARTBEAT_TIMEOUT, async () => {
        const sid = await initLongPollingSession();

        for (let i = 0; i < 3; i++) {
          const pollResponse = await fetch(
            `${URL}/engine.io/?EIO=4&transport=polling&sid=${sid}`,
          );

          assert.deepStrictEqual(pollResponse.status, 200);

          const pollContent = await pollResponse.text();

          assert.deepStrictEqual(pollContent, "2");

          const pushResponse = await fetch(
            `${URL}/engine.io/?EIO=4&transport=polling&sid=${sid}`,
            { method: "post", body: "3" },
          );

          assert.deepStrictEqual(pushResponse.status, 200);
        }
      });

      it("closes the session upon ping timeout", HEARTBEAT_TIMEOUT, async () => {
        const sid = await initLongPollingSession();

        await sleep(PING_INTERVAL + PING_TIMEOUT);

        const pollResponse = await fetch(
          `${URL}/engine.io/?EIO=4&transport=polling&sid=${sid}`,
        );

        assert.deepStrictEqual(pollResponse.status, 400);
      });
    });

    describe("WebSocket", () => {
      it("sends ping/pong packets", HEARTBEAT_TIMEOUT, async () => {
        const socket = createWebSocket(
          `${WS_URL}/engine.io/?EIO=4&transport=websocket`,
        );

        await waitFor(socket, "message"); // handshake

        for (let i = 0; i < 3; i++) {
          const { data } = await waitFor(socket, "message");

          assert.deepStrictEqual(data, "2");

          socket.send("3");
        }

        socket.close();
      });

      it("closes the session upon ping timeout", HEARTBEAT_TIMEOUT, async () => {
        const socket = createWebSocket(
          `${WS_URL}/engine.io/?EIO=4&transport=websocket`,
        );

        await waitFor(socket, "close"); // handshake
      });
    });
  });

  describe("close", () => {
    describe("HTTP long-polling", () => {
      it("forcefully closes the session", TIMEOUT, async () => {
        const sid = await initLongPollingSession();

        const [pollResponse] = await Promise.all([
          fetch(`${URL}/engine.io/?EIO=4&transport=polling&sid=${sid}`),
          fetch(`${URL}/engine.io/?EIO=4&transport=polling&sid=${sid}`, {
            method: "post",
            body: "1",
          }),
        ]);

        assert.deepStrictEqual(pollResponse.status, 200);

        const pullContent = await pollResponse.text();

        assert.deepStrictEqual(pullContent, "6");

        const pollResponse2 = await fetch(
          `${URL}/engine.io/?EIO=4&transport=polling&sid=${sid}`,
        );

        assert.deepStrictEqual(pollResponse2.status, 400);
      });
    });

    describe("WebSocket", () => {
      it("forcefully closes the session", TIMEOUT, async () => {
        const socket = createWebSocket(
          `${WS_URL}/engine.io/?EIO=4&transport=websocket`,
        );

        await waitFor(socket, "message"); // handshake

        socket.send("1");

        await waitFor(socket, "close");
      });
    });
  });

  describe("upgrade", () => {
    it("successfully upgrades from HTTP long-polling to WebSocket", TIMEOUT, async () => {
      const sid = await initLongPollingSession();

      const socket = createWebSocket(
        `${WS_URL}/engine.io/?EIO=4&transport=websocket&sid=${sid}`,
      );

      await waitFor(socket, "open");

      // send probe
      socket.send("2probe");

      const probeResponse = await waitFor(socket, "message");

      assert.deepStrictEqual(probeResponse.data, "3probe");

      const pollResponse = await fetch(
        `${URL}/engine.io/?EIO=4&transport=polling&sid=${sid}`,
      );

      assert.deepStrictEqual(pollResponse.status, 200);

      const pollContent = await pollResponse.text();

      assert.deepStrictEqual(pollContent, "6"); // "noop" packet to cleanly end the HTTP long-polling request

      // complete upgrade
      socket.send("5");

      socket.send("4hello");

      const { data } = await waitFor(socket, "message");

      assert.deepStrictEqual(data, "4hello");
    });

    it("ignores HTTP requests with same sid after upgrade", TIMEOUT, async () => {
      const sid = await initLongPollingSession();

      const socket = createWebSocket(
        `${WS_URL}/engine.io/?EIO=4&transport=websocket&sid=${sid}`,
      );

      await waitFor(socket, "open");
      socket.send("2probe");
      await waitFor(socket, "message"); // "3probe"
      socket.send("5");

      const pollResponse = await fetch(
        `${URL}/engine.io/?EIO=4&transport=polling&sid=${sid}`,
      );

      assert.deepStrictEqual(pollResponse.status, 400);

      socket.send("4hello");

      const { data } = await waitFor(socket, "message");

      assert.deepStrictEqual(data, "4hello");
    });

    it("ignores WebSocket connection with same sid after upgrade", TIMEOUT, async () => {
      const sid = await initLongPollingSession();

      const socket = createWebSocket(
        `${WS_URL}/engine.io/?EIO=4&transport=websocket&sid=${sid}`,
      );

      await waitFor(socket, "open");
      socket.send("2probe");
      await waitFor(socket, "message"); // "3probe"
      socket.send("5");

      const socket2 = createWebSocket(
        `${WS_URL}/engine.io/?EIO=4&transport=websocket&sid=${sid}`,
      );

      await waitFor(socket2, "close");

      socket.send("4hello");

      const { data } = await waitFor(socket, "message");

      assert.deepStrictEqual(data, "4hello");
    });
  });
});
