// A TCP proxy that passes a WebSocket through and reads its frames on the
// way, in both directions: whether each message was compressed (RSV1), how
// many bytes it took on the wire, and what it says once inflated.
//
// startProxy(host, port) resolves to { port, seen, close }: `seen.request`
// and `seen.response` are the HTTP heads of the upgrade, `seen.toServer` and
// `seen.toClient` the messages, each { opcode, rsv1, wire, length, text }
// (text: the first 60 characters of a text message, inflated).
import net from "node:net";
import zlib from "node:zlib";

const TRAILER = Buffer.from([0x00, 0x00, 0xff, 0xff]);

export function startProxy(host, port) {
  const seen = { request: null, response: null, toServer: [], toClient: [], errors: [] };

  function reader(dir, headKey) {
    let buf = Buffer.alloc(0);
    let inHead = true;
    let msg = null;
    return (data) => {
      buf = Buffer.concat([buf, data]);
      if (inHead) {
        const end = buf.indexOf("\r\n\r\n");
        if (end < 0) return;
        seen[headKey] = buf.subarray(0, end).toString("latin1");
        buf = buf.subarray(end + 4);
        inHead = false;
      }
      for (;;) {
        if (buf.length < 2) return;
        const b0 = buf[0];
        const b1 = buf[1];
        let len = b1 & 0x7f;
        let at = 2;
        if (len === 126) {
          if (buf.length < 4) return;
          len = buf.readUInt16BE(2);
          at = 4;
        } else if (len === 127) {
          if (buf.length < 10) return;
          len = Number(buf.readBigUInt64BE(2));
          at = 10;
        }
        let mask = null;
        if (b1 & 0x80) {
          if (buf.length < at + 4) return;
          mask = buf.subarray(at, at + 4);
          at += 4;
        }
        if (buf.length < at + len) return;
        const payload = Buffer.from(buf.subarray(at, at + len));
        if (mask) for (let i = 0; i < payload.length; i++) payload[i] ^= mask[i & 3];
        buf = buf.subarray(at + len);
        const opcode = b0 & 0x0f;
        const fin = (b0 & 0x80) !== 0;
        const rsv1 = (b0 & 0x40) !== 0;
        if (opcode >= 8) {
          seen[dir].push({ opcode, rsv1, wire: len, length: len, text: null });
          continue;
        }
        if (opcode !== 0) msg = { opcode, rsv1, wire: 0, parts: [] };
        if (!msg) {
          seen.errors.push(`${dir}: a continuation outside a message`);
          continue;
        }
        msg.wire += len;
        msg.parts.push(payload);
        if (!fin) continue;
        let body = Buffer.concat(msg.parts);
        if (msg.rsv1) {
          try {
            body = zlib.inflateRawSync(Buffer.concat([body, TRAILER]), {
              finishFlush: zlib.constants.Z_SYNC_FLUSH,
            });
          } catch (e) {
            seen.errors.push(`${dir}: ${e.message}`);
          }
        }
        seen[dir].push({
          opcode: msg.opcode,
          rsv1: msg.rsv1,
          wire: msg.wire,
          length: body.length,
          text: msg.opcode === 1 ? body.toString("utf8").slice(0, 60) : null,
        });
        msg = null;
      }
    };
  }

  const server = net.createServer((client) => {
    const upstream = net.connect(port, host);
    const toServer = reader("toServer", "request");
    const toClient = reader("toClient", "response");
    client.on("data", (d) => {
      toServer(d);
      upstream.write(d);
    });
    upstream.on("data", (d) => {
      toClient(d);
      client.write(d);
    });
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
    client.on("error", () => upstream.destroy());
    upstream.on("error", () => client.destroy());
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      resolve({ port: server.address().port, seen, close: () => server.close() });
    });
  });
}
