//! The WebSocket layer, frame by frame, from a client written here on a raw
//! TCP socket: control frames, fragments, messages split over reads or
//! packed into one, the closing handshake, and the close code of each
//! protocol error (RFC 6455).

#![allow(clippy::unwrap_used)]

#[path = "common/raw.rs"]
mod raw;

use std::time::Duration;

use raw::*;
use socketio_tokio::SocketIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const MASK: [u8; 4] = [0xa1, 0x02, 0x7c, 0x3f];

/// A raw client WebSocket: the stream and the bytes read past the last frame.
struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
}

/// A frame from the server.
#[derive(Debug, PartialEq)]
struct Frame {
    fin: bool,
    opcode: u8,
    payload: Vec<u8>,
}

fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    websocket_frame::encode_client(u8::from(fin) << 7 | opcode, payload, MASK, &mut out);
    out
}

fn text(s: &str) -> Vec<u8> {
    frame(true, 1, s.as_bytes())
}

impl Client {
    /// Upgrades a fresh connection and reads the open packet.
    async fn open(server: &Server) -> Client {
        Client::open_with(server, "", &[]).await
    }

    /// Upgrades a fresh connection whose request carries `headers` and is
    /// followed, in the same write, by `then`; reads the open packet.
    async fn open_with(server: &Server, headers: &str, then: &[u8]) -> Client {
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        let req = format!(
            "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\n\
             Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{headers}\r\n"
        );
        let mut bytes = req.into_bytes();
        bytes.extend_from_slice(then);
        stream.write_all(&bytes).await.unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut b = [0u8; 1];
            assert_eq!(
                stream.read(&mut b).await.unwrap(),
                1,
                "the upgrade is answered"
            );
            head.push(b[0]);
        }
        let head = String::from_utf8(head).unwrap();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        assert!(
            head.to_ascii_lowercase()
                .contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
            "{head}"
        );
        let mut client = Client {
            stream,
            buf: Vec::new(),
        };
        let open = client.next().await.unwrap();
        assert_eq!((open.opcode, open.payload[0]), (1, b'0'));
        client
    }

    /// Opens and joins `/`.
    async fn connect(server: &Server) -> Client {
        let mut client = Client::open(server).await;
        client.send(&text("40")).await;
        let connected = client.next().await.unwrap();
        assert!(
            connected.payload.starts_with(b"40{\"sid\":"),
            "{connected:?}"
        );
        client
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// The next frame, or `None` at the end of the stream.
    async fn next(&mut self) -> Option<Frame> {
        tokio::time::timeout(WAIT, async {
            loop {
                if let Some((f, used)) = parse(&self.buf) {
                    self.buf.drain(..used);
                    return Some(f);
                }
                let mut chunk = [0u8; 65536];
                match self.stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => {
                        assert!(self.buf.is_empty(), "a partial frame: {:?}", self.buf);
                        return None;
                    }
                    Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                }
            }
        })
        .await
        .expect("a frame or the end in time")
    }

    /// The next text frame, answering Engine.IO pings.
    async fn next_text(&mut self) -> String {
        loop {
            let f = self.next().await.expect("a frame");
            assert!(f.fin);
            if f.opcode == 1 {
                if f.payload == b"2" {
                    self.send(&text("3")).await;
                    continue;
                }
                return String::from_utf8(f.payload).unwrap();
            }
        }
    }

    /// Expects a close frame with `code`, then the end of the stream.
    async fn expect_close(&mut self, code: u16) {
        loop {
            let f = self.next().await.expect("a close frame");
            if f.opcode == 8 {
                assert_eq!(&f.payload[..2], code.to_be_bytes(), "{f:?}");
                break;
            }
        }
        assert_eq!(self.next().await, None, "the server closes the socket");
    }
}

/// A server frame at the front of `buf`, and its length.
fn parse(buf: &[u8]) -> Option<(Frame, usize)> {
    let [b0, b1, ..] = *buf else { return None };
    assert_eq!(b1 & 0x80, 0, "server frames are not masked");
    assert_eq!(b0 & 0x70, 0, "no reserved bits");
    let (len, at) = match b1 & 0x7f {
        126 => (
            u16::from_be_bytes(buf.get(2..4)?.try_into().unwrap()) as usize,
            4,
        ),
        127 => (
            u64::from_be_bytes(buf.get(2..10)?.try_into().unwrap()) as usize,
            10,
        ),
        n => (n as usize, 2),
    };
    let payload = buf.get(at..at + len)?.to_vec();
    Some((
        Frame {
            fin: b0 & 0x80 != 0,
            opcode: b0 & 0x0f,
            payload,
        },
        at + len,
    ))
}

#[tokio::test]
async fn frames_sent_with_the_upgrade_request_are_read_after_it() {
    let server = start().await;
    // A short request and a long one (its head longer than the server's
    // first read), each with the CONNECT packet in the same write.
    for pad in [0, 6000] {
        let headers = if pad == 0 {
            String::new()
        } else {
            format!("X-Pad: {}\r\n", "a".repeat(pad))
        };
        let mut client = Client::open_with(&server, &headers, &text("40")).await;
        let connected = client.next_text().await;
        assert!(connected.starts_with("40{\"sid\":"), "{pad}: {connected}");
    }
}

#[tokio::test]
async fn pings_are_answered_with_the_same_data() {
    let server = start().await;
    let mut c = Client::connect(&server).await;
    c.send(&frame(true, 9, b"are you there")).await;
    let pong = c.next().await.unwrap();
    assert_eq!(
        (pong.opcode, &pong.payload[..]),
        (10, &b"are you there"[..])
    );
    // A pong nobody asked for is ignored.
    c.send(&frame(true, 10, b"x")).await;
    c.send(&text("42[\"echo\",1]")).await;
    assert_eq!(c.next_text().await, "42[\"echo-back\",1]");
}

#[tokio::test]
async fn fragments_with_a_ping_between_make_one_message() {
    let server = start().await;
    let mut c = Client::connect(&server).await;
    let mut bytes = frame(false, 1, b"42[\"ec");
    bytes.extend(frame(true, 9, b"p"));
    bytes.extend(frame(false, 0, b"ho\",\"h\xc3"));
    bytes.extend(frame(true, 0, b"\xa9\"]"));
    c.send(&bytes).await;
    let pong = c.next().await.unwrap();
    assert_eq!(pong.opcode, 10);
    assert_eq!(c.next_text().await, "42[\"echo-back\",\"hé\"]");
}

#[tokio::test]
async fn many_messages_in_one_write_and_one_message_over_many() {
    let server = start().await;
    let mut c = Client::connect(&server).await;
    let mut burst = Vec::new();
    for i in 0..200 {
        burst.extend(text(&format!("42[\"echo\",{i}]")));
    }
    c.send(&burst).await;
    for i in 0..200 {
        assert_eq!(c.next_text().await, format!("42[\"echo-back\",{i}]"));
    }
    // 300 KB, written a few bytes at a time at first, then in pieces.
    let big = "x".repeat(300_000);
    let bytes = text(&format!("42[\"echo\",\"{big}\"]"));
    for b in &bytes[..20] {
        c.send(&[*b]).await;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    for piece in bytes[20..].chunks(7000) {
        c.send(piece).await;
    }
    assert_eq!(c.next_text().await, format!("42[\"echo-back\",\"{big}\"]"));
}

#[tokio::test]
async fn a_client_close_is_answered_with_its_code_then_the_socket_closes() {
    let server = start().await;
    let mut c = Client::connect(&server).await;
    let mut payload = 4000u16.to_be_bytes().to_vec();
    payload.extend_from_slice(b"leaving");
    c.send(&frame(true, 8, &payload)).await;
    c.expect_close(4000).await;
    server.log.wait_for("disconnect / transport close").await;
}

#[tokio::test]
async fn a_close_from_the_server_is_a_closing_handshake() {
    let server = start().await;
    let mut c = Client::connect(&server).await;
    server.io.of("/").close();
    // The Socket.IO DISCONNECT, then Engine.IO's close, over the WebSocket's closing handshake.
    assert_eq!(c.next_text().await, "41");
    let close = loop {
        let f = c.next().await.expect("a close frame");
        if f.opcode == 8 {
            break f;
        }
    };
    assert_eq!(&close.payload[..2], 1000u16.to_be_bytes());
    c.send(&frame(true, 8, &1000u16.to_be_bytes())).await;
    assert_eq!(c.next().await, None);
}

/// Each protocol error is answered with a close frame carrying its code,
/// then the socket closes; the session ends with "transport error".
#[tokio::test]
async fn protocol_errors_get_their_close_codes() {
    let server = start_with(SocketIo::builder().max_payload(1000)).await;
    let mut healthy = Client::connect(&server).await;
    let unmasked = vec![0x81, 0x02, b'4', b'2'];
    let mut rsv = text("3");
    rsv[0] |= 0x40;
    let mut interleaved = frame(false, 1, b"42");
    interleaved.extend(text("3"));
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("unmasked", unmasked, 1002),
        ("reserved bit", rsv, 1002),
        ("reserved opcode", frame(true, 3, b""), 1002),
        ("fragmented ping", frame(false, 9, b""), 1002),
        ("long ping", frame(true, 9, &[0; 126]), 1002),
        ("lone continuation", frame(true, 0, b"x"), 1002),
        ("message inside a message", interleaved, 1002),
        ("one-byte close", frame(true, 8, &[3]), 1002),
        (
            "close code 1005",
            frame(true, 8, &1005u16.to_be_bytes()),
            1002,
        ),
        ("text not UTF-8", frame(true, 1, b"42[\"\xff\"]"), 1007),
        ("over max_payload", text(&"4".repeat(1100)), 1009),
    ];
    for (i, (what, bytes, code)) in cases.into_iter().enumerate() {
        let mut c = Client::connect(&server).await;
        c.send(&bytes).await;
        c.expect_close(code).await;
        eventually(what, || {
            let lines = server.log.lines();
            lines
                .iter()
                .filter(|l| *l == "disconnect / transport error")
                .count()
                == i + 1
        })
        .await;
    }
    healthy.send(&text("42[\"echo\",\"still here\"]")).await;
    assert_eq!(
        healthy.next_text().await,
        "42[\"echo-back\",\"still here\"]"
    );
    assert_eq!(panics(), 0);
}
