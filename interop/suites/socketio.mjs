// The Socket.IO v5 protocol test suite, ported to node's test runner: every
// case of the official suite (`socket.io-protocol` v5 test-suite), with its
// names and assertions. The server under test (pingInterval 300 ms,
// pingTimeout 200 ms, maxPayload 1000000, connectTimeout 1000 ms) emits
// `auth` with the handshake's auth on `/` and `/custom`, answers `message`
// with `message-back` and acknowledges `message-with-ack` with the same
// arguments on `/`. It is reached at SERVER_URL (default
// http://localhost:3000).
//
//   SERVER_URL=http://127.0.0.1:3000 node --test interop/suites/socketio.mjs
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
  assertStartsWith,
  closeAll,
  createWebSocket,
  sleep,
  waitFor,
  waitForPackets,
} from "./common.mjs";

async function initLongPollingSession() {
  const response = await fetch(`${URL}/socket.io/?EIO=4&transport=polling`);
  const content = await response.text();
  return JSON.parse(content.substring(1)).sid;
}

async function initSocketIOConnection() {
  const socket = createWebSocket(
    `${WS_URL}/socket.io/?EIO=4&transport=websocket`,
  );
  socket.binaryType = "arraybuffer";

  await waitFor(socket, "message"); // Engine.IO handshake

  socket.send("40");

  await waitFor(socket, "message"); // Socket.IO handshake
  await waitFor(socket, "message"); // "auth" packet

  return socket;
}

after(closeAll);

describe("Engine.IO protocol", () => {
  describe("handshake", () => {
    describe("HTTP long-polling", () => {
      it("should successfully open a session", TIMEOUT, async () => {
        const response = await fetch(
          `${URL}/socket.io/?EIO=4&transport=polling`,
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

      it("should fail with an invalid 'EIO' query parameter", TIMEOUT, async () => {
        const response = await fetch(`${URL}/socket.io/?transport=polling`);

        assert.deepStrictEqual(response.status, 400);

        const response2 = await fetch(
          `${URL}/socket.io/?EIO=abc&transport=polling`,
        );

        assert.deepStrictEqual(response2.status, 400);
      });

      it("should fail with an invalid 'transport' query parameter", TIMEOUT, async () => {
        const response = await fetch(`${URL}/socket.io/?EIO=4`);

        assert.deepStrictEqual(response.status, 400);

        const response2 = await fetch(`${URL}/socket.io/?EIO=4&transport=abc`);

        assert.deepStrictEqual(response2.status, 400);
      });

      it("should fail with an invalid request method", TIMEOUT, async () => {
        const response = await fetch(
          `${URL}/socket.io/?EIO=4&transport=polling`,
          { method: "post" },
        );

        assert.deepStrictEqual(response.status, 400);

        const response2 = await fetch(
          `${URL}/socket.io/?EIO=4&transport=polling`,
          { method: "put" },
        );

        assert.deepStrictEqual(response2.status, 400);
      });
    });

    describe("WebSocket", () => {
      it("should successfully open a session", TIMEOUT, async () => {
        const socket = createWebSocket(
          `${WS_URL}/socket.io/?EIO=4&transport=websocket`,
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

      it("should fail with an invalid 'EIO' query parameter", TIMEOUT, async () => {
        const socket = createWebSocket(
          `${WS_URL}/socket.io/?transport=websocket`,
        );

        await waitFor(socket, "close");

        const socket2 = createWebSocket(
          `${WS_URL}/socket.io/?EIO=abc&transport=websocket`,
        );

        await waitFor(socket2, "close");
      });

      it("should fail with an invalid 'transport' query parameter", TIMEOUT, async () => {
        const socket = createWebSocket(`${WS_URL}/socket.io/?EIO=4`);

        await waitFor(socket, "close");

        const socket2 = createWebSocket(
          `${WS_URL}/socket.io/?EIO=4&transport=abc`,
        );

        await waitFor(socket2, "close");
      });
    });
  });

  describe("heartbeat", () => {
    describe("HTTP long-polling", () => {
      it("should send ping/pong packets", HEARTBEAT_TIMEOUT, async () => {
        const sid = await initLongPollingSession();

        for (let i = 0; i < 3; i++) {
          const pollResponse = await fetch(
            `${URL}/socket.io/?EIO=4&transport=polling&sid=${sid}`,
          );

          assert.deepStrictEqual(pollResponse.status, 200);

          const pollContent = await pollResponse.text();

          assert.deepStrictEqual(pollContent, "2");

          const pushResponse = await fetch(
            `${URL}/socket.io/?EIO=4&transport=polling&sid=${sid}`,
            { method: "post", body: "3" },
          );

          assert.deepStrictEqual(pushResponse.status, 200);
        }
      });

      it("should close the session upon ping timeout", HEARTBEAT_TIMEOUT, async () => {
        const sid = await initLongPollingSession();

        await sleep(PING_INTERVAL + PING_TIMEOUT);

        const pollResponse = await fetch(
          `${URL}/socket.io/?EIO=4&transport=polling&sid=${sid}`,
        );

        assert.deepStrictEqual(pollResponse.status, 400);
      });
    });

    describe("WebSocket", () => {
      it("should send ping/pong packets", HEARTBEAT_TIMEOUT, async () => {
        const socket = createWebSocket(
          `${WS_URL}/socket.io/?EIO=4&transport=websocket`,
        );

        await waitFor(socket, "message"); // handshake

        for (let i = 0; i < 3; i++) {
          const { data } = await waitFor(socket, "message");

          assert.deepStrictEqual(data, "2");

          socket.send("3");
        }

        socket.close();
      });

      it("should close the session upon ping timeout", HEARTBEAT_TIMEOUT, async () => {
        const socket = createWebSocket(
          `${WS_URL}/socket.io/?EIO=4&transport=websocket`,
        );

        await waitFor(socket, "close"); // handshake
      });
    });
  });

  describe("close", () => {
    describe("HTTP long-polling", () => {
      it("should forcefully close the session", TIMEOUT, async () => {
        const sid = await initLongPollingSession();

        const [pollResponse] = await Promise.all([
          fetch(`${URL}/socket.io/?EIO=4&transport=polling&sid=${sid}`),
          fetch(`${URL}/socket.io/?EIO=4&transport=polling&sid=${sid}`, {
            method: "post",
            body: "1",
          }),
        ]);

        assert.deepStrictEqual(pollResponse.status, 200);

        const pullContent = await pollResponse.text();

        assert.deepStrictEqual(pullContent, "6");

        const pollResponse2 = await fetch(
          `${URL}/socket.io/?EIO=4&transport=polling&sid=${sid}`,
        );

        assert.deepStrictEqual(pollResponse2.status, 400);
      });
    });

    describe("WebSocket", () => {
      it("should forcefully close the session", TIMEOUT, async () => {
        const socket = createWebSocket(
          `${WS_URL}/socket.io/?EIO=4&transport=websocket`,
        );

        await waitFor(socket, "message"); // handshake

        socket.send("1");

        await waitFor(socket, "close");
      });
    });
  });

  describe("upgrade", () => {
    it("should successfully upgrade from HTTP long-polling to WebSocket", TIMEOUT, async () => {
      const sid = await initLongPollingSession();

      const socket = createWebSocket(
        `${WS_URL}/socket.io/?EIO=4&transport=websocket&sid=${sid}`,
      );

      await waitFor(socket, "open");

      // send probe
      socket.send("2probe");

      const probeResponse = await waitFor(socket, "message");

      assert.deepStrictEqual(probeResponse.data, "3probe");

      // complete upgrade
      socket.send("5");
    });

    it("should ignore HTTP requests with same sid after upgrade", TIMEOUT, async () => {
      const sid = await initLongPollingSession();

      const socket = createWebSocket(
        `${WS_URL}/socket.io/?EIO=4&transport=websocket&sid=${sid}`,
      );

      await waitFor(socket, "open");
      socket.send("2probe");
      socket.send("5");

      const pollResponse = await fetch(
        `${URL}/socket.io/?EIO=4&transport=polling&sid=${sid}`,
      );

      assert.deepStrictEqual(pollResponse.status, 400);
    });

    it("should ignore WebSocket connection with same sid after upgrade", TIMEOUT, async () => {
      const sid = await initLongPollingSession();

      const socket = createWebSocket(
        `${WS_URL}/socket.io/?EIO=4&transport=websocket&sid=${sid}`,
      );

      await waitFor(socket, "open");
      socket.send("2probe");
      socket.send("5");

      const socket2 = createWebSocket(
        `${WS_URL}/socket.io/?EIO=4&transport=websocket&sid=${sid}`,
      );

      await waitFor(socket2, "close");
    });
  });
});

describe("Socket.IO protocol", () => {
  describe("connect", () => {
    it("should allow connection to the main namespace", TIMEOUT, async () => {
      const socket = createWebSocket(
        `${WS_URL}/socket.io/?EIO=4&transport=websocket`,
      );

      await waitFor(socket, "message"); // Engine.IO handshake

      socket.send("40");

      const { data } = await waitFor(socket, "message");

      assertStartsWith(data, "40");

      const handshake = JSON.parse(data.substring(2));

      assertAllKeys(handshake, "sid");
      assert.strictEqual(typeof handshake.sid, "string");

      const authPacket = await waitFor(socket, "message");

      assert.deepStrictEqual(authPacket.data, '42["auth",{}]');
    });

    it("should allow connection to the main namespace with a payload", TIMEOUT, async () => {
      const socket = createWebSocket(
        `${WS_URL}/socket.io/?EIO=4&transport=websocket`,
      );

      await waitFor(socket, "message"); // Engine.IO handshake

      socket.send('40{"token":"123"}');

      const { data } = await waitFor(socket, "message");

      assertStartsWith(data, "40");

      const handshake = JSON.parse(data.substring(2));

      assertAllKeys(handshake, "sid");
      assert.strictEqual(typeof handshake.sid, "string");

      const authPacket = await waitFor(socket, "message");

      assert.deepStrictEqual(authPacket.data, '42["auth",{"token":"123"}]');
    });

    it("should allow connection to a custom namespace", TIMEOUT, async () => {
      const socket = createWebSocket(
        `${WS_URL}/socket.io/?EIO=4&transport=websocket`,
      );

      await waitFor(socket, "message"); // Engine.IO handshake

      socket.send("40/custom,");

      const { data } = await waitFor(socket, "message");

      assertStartsWith(data, "40/custom,");

      const handshake = JSON.parse(data.substring(10));

      assertAllKeys(handshake, "sid");
      assert.strictEqual(typeof handshake.sid, "string");

      const authPacket = await waitFor(socket, "message");

      assert.deepStrictEqual(authPacket.data, '42/custom,["auth",{}]');
    });

    it("should allow connection to a custom namespace with a payload", TIMEOUT, async () => {
      const socket = createWebSocket(
        `${WS_URL}/socket.io/?EIO=4&transport=websocket`,
      );

      await waitFor(socket, "message"); // Engine.IO handshake

      socket.send('40/custom,{"token":"abc"}');

      const { data } = await waitFor(socket, "message");

      assertStartsWith(data, "40/custom,");

      const handshake = JSON.parse(data.substring(10));

      assertAllKeys(handshake, "sid");
      assert.strictEqual(typeof handshake.sid, "string");

      const authPacket = await waitFor(socket, "message");

      assert.deepStrictEqual(
        authPacket.data,
        '42/custom,["auth",{"token":"abc"}]',
      );
    });

    it("should disallow connection to an unknown namespace", TIMEOUT, async () => {
      const socket = createWebSocket(
        `${WS_URL}/socket.io/?EIO=4&transport=websocket`,
      );

      await waitFor(socket, "message"); // Engine.IO handshake

      socket.send("40/random");

      const { data } = await waitFor(socket, "message");

      assert.deepStrictEqual(data, '44/random,{"message":"Invalid namespace"}');
    });

    it("should disallow connection with an invalid handshake", TIMEOUT, async () => {
      const socket = createWebSocket(
        `${WS_URL}/socket.io/?EIO=4&transport=websocket`,
      );

      await waitFor(socket, "message"); // Engine.IO handshake

      socket.send("4abc");

      await waitFor(socket, "close");
    });

    it("should close the connection if no handshake is received", TIMEOUT, async () => {
      const socket = createWebSocket(
        `${WS_URL}/socket.io/?EIO=4&transport=websocket`,
      );

      await waitFor(socket, "close");
    });
  });

  describe("disconnect", () => {
    it("should disconnect from the main namespace", TIMEOUT, async () => {
      const socket = await initSocketIOConnection();

      socket.send("41");

      const { data } = await waitFor(socket, "message");

      assert.deepStrictEqual(data, "2");
    });

    it("should connect then disconnect from a custom namespace", TIMEOUT, async () => {
      const socket = await initSocketIOConnection();

      await waitFor(socket, "message"); // ping

      socket.send("40/custom");

      await waitFor(socket, "message"); // Socket.IO handshake
      await waitFor(socket, "message"); // auth packet

      socket.send("41/custom");
      socket.send('42["message","message to main namespace"]');

      const { data } = await waitFor(socket, "message");

      assert.deepStrictEqual(
        data,
        '42["message-back","message to main namespace"]',
      );
    });
  });

  describe("message", () => {
    it("should send a plain-text packet", TIMEOUT, async () => {
      const socket = await initSocketIOConnection();

      socket.send('42["message",1,"2",{"3":[true]}]');

      const { data } = await waitFor(socket, "message");

      assert.deepStrictEqual(data, '42["message-back",1,"2",{"3":[true]}]');
    });

    it("should send a packet with binary attachments", TIMEOUT, async () => {
      const socket = await initSocketIOConnection();

      socket.send(
        '452-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]',
      );
      socket.send(Uint8Array.from([1, 2, 3]));
      socket.send(Uint8Array.from([4, 5, 6]));

      const packets = await waitForPackets(socket, 3);

      assert.deepStrictEqual(
        packets[0],
        '452-["message-back",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]',
      );
      assert.deepStrictEqual(packets[1], Uint8Array.from([1, 2, 3]).buffer);
      assert.deepStrictEqual(packets[2], Uint8Array.from([4, 5, 6]).buffer);

      socket.close();
    });

    it("should send a plain-text packet with an ack", TIMEOUT, async () => {
      const socket = await initSocketIOConnection();

      socket.send('42456["message-with-ack",1,"2",{"3":[false]}]');

      const { data } = await waitFor(socket, "message");

      assert.deepStrictEqual(data, '43456[1,"2",{"3":[false]}]');
    });

    it("should send a packet with binary attachments and an ack", TIMEOUT, async () => {
      const socket = await initSocketIOConnection();

      socket.send(
        '452-789["message-with-ack",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]',
      );
      socket.send(Uint8Array.from([1, 2, 3]));
      socket.send(Uint8Array.from([4, 5, 6]));

      const packets = await waitForPackets(socket, 3);

      assert.deepStrictEqual(
        packets[0],
        '462-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]',
      );
      assert.deepStrictEqual(packets[1], Uint8Array.from([1, 2, 3]).buffer);
      assert.deepStrictEqual(packets[2], Uint8Array.from([4, 5, 6]).buffer);

      socket.close();
    });

    it("should close the connection upon invalid format (unknown packet type)", TIMEOUT, async () => {
      const socket = await initSocketIOConnection();

      socket.send("4abc");

      await waitFor(socket, "close");
    });

    it("should close the connection upon invalid format (invalid payload format)", TIMEOUT, async () => {
      const socket = await initSocketIOConnection();

      socket.send("42{}");

      await waitFor(socket, "close");
    });

    it("should close the connection upon invalid format (invalid ack id)", TIMEOUT, async () => {
      const socket = await initSocketIOConnection();

      socket.send('42abc["message-with-ack",1,"2",{"3":[false]}]');

      await waitFor(socket, "close");
    });
  });
});
