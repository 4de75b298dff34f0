//! A decompression bomb over permessage-deflate: a compressed frame of a few
//! dozen kilobytes that inflates to 64 MB closes the connection with
//! 1009, and the process's peak memory does not grow by anything near what
//! the bomb would inflate to (the inflater stops at `max_payload`). Alone in
//! its test binary, so that nothing else moves the peak.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use flate2::{Compress, Compression, FlushCompress};
use socketio_tokio::{PerMessageDeflate, RawArgs, Socket, SocketIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use websocket_frame::deflate::Inflater;

const MAX_PAYLOAD: usize = 1_000_000;
const MASK: [u8; 4] = [0x11, 0x22, 0x33, 0x44];

/// A field of /proc/self/status, in KiB.
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| {
            l.strip_prefix(field)?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap()
}

/// `n` zero bytes deflated as a client sends them, made from a small buffer
/// so that the test itself never holds them.
fn bomb(n: usize) -> Vec<u8> {
    let zeros = vec![0u8; 64 * 1024];
    let mut c = Compress::new(Compression::best(), false);
    let mut out = Vec::with_capacity(n / 900);
    let mut left = n;
    while left > 0 {
        let take = left.min(zeros.len());
        let before = c.total_in();
        out.reserve(1024);
        c.compress_vec(&zeros[..take], &mut out, FlushCompress::None)
            .unwrap();
        left -= usize::try_from(c.total_in() - before).unwrap();
    }
    loop {
        out.reserve(1024);
        c.compress_vec(&[], &mut out, FlushCompress::Sync).unwrap();
        if out.ends_with(&[0, 0, 0xff, 0xff]) && out.len() < out.capacity() {
            break;
        }
    }
    out.truncate(out.len() - 4);
    out
}

struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    /// A frame from the server: (first byte, payload); `None` at the end.
    async fn next(&mut self) -> Option<(u8, Vec<u8>)> {
        tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                if let [b0, b1, ..] = self.buf[..] {
                    let (len, at) = match b1 {
                        126 if self.buf.len() >= 4 => (
                            usize::from(u16::from_be_bytes([self.buf[2], self.buf[3]])),
                            4,
                        ),
                        127 if self.buf.len() >= 10 => (
                            usize::try_from(u64::from_be_bytes(
                                self.buf[2..10].try_into().unwrap(),
                            ))
                            .unwrap(),
                            10,
                        ),
                        126 | 127 => (usize::MAX - 16, 0),
                        n => (usize::from(n), 2),
                    };
                    if at > 0 && self.buf.len() >= at + len {
                        let payload = self.buf[at..at + len].to_vec();
                        self.buf.drain(..at + len);
                        return Some((b0, payload));
                    }
                }
                let mut chunk = vec![0u8; 65536];
                match self.stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return None,
                    Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                }
            }
        })
        .await
        .unwrap()
    }

    async fn send(&mut self, first: u8, payload: &[u8]) {
        let mut out = Vec::new();
        websocket_frame::encode_client(first, payload, MASK, &mut out);
        self.stream.write_all(&out).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bomb_closes_with_1009_and_allocates_no_more_than_the_limit() {
    let io = SocketIo::builder()
        .max_payload(MAX_PAYLOAD)
        .per_message_deflate(Some(PerMessageDeflate::new()))
        .build()
        .unwrap();
    io.ns("/", |socket: Socket| async move {
        socket.on("echo", |socket: Socket, RawArgs(args): RawArgs| async move {
            socket.emit_raw("echo-back", args)
        });
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let io2 = io.clone();
    tokio::spawn(async move { io2.serve(listener).await });

    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\n\
              Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
              Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n",
        )
        .await
        .unwrap();
    let mut client = Client {
        stream,
        buf: Vec::new(),
    };
    // The head of the answer.
    loop {
        let mut b = [0u8; 1];
        assert_eq!(client.stream.read(&mut b).await.unwrap(), 1);
        client.buf.push(b[0]);
        if client.buf.ends_with(b"\r\n\r\n") {
            break;
        }
    }
    let head = String::from_utf8(std::mem::take(&mut client.buf)).unwrap();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(head.contains("permessage-deflate"), "{head}");
    let (_, open) = client.next().await.unwrap();
    assert!(open.starts_with(b"0{"));
    client.send(0x81, b"40").await;
    let (_, connect) = client.next().await.unwrap();
    assert!(connect.starts_with(b"40{"), "{connect:?}");

    // A compressed message just under the limit goes through, and its
    // answer comes compressed.
    let text = format!("42[\"echo\",\"{}\"]", "abc".repeat(300_000));
    let compressed = {
        let agreed = websocket_frame::deflate::negotiate(
            &websocket_frame::deflate::DeflateConfig::default(),
            ["permessage-deflate"],
        )
        .unwrap()
        .unwrap();
        let mut z = Vec::new();
        assert!(agreed.deflater().compress(text.as_bytes(), &mut z));
        z
    };
    client.send(0xc1, &compressed).await;
    let (first, reply) = client.next().await.unwrap();
    assert_eq!(first, 0xc1, "FIN, RSV1, text");
    let mut inflated = Vec::new();
    Inflater::new()
        .inflate(&reply, true, &mut inflated, 2 * MAX_PAYLOAD)
        .unwrap();
    assert_eq!(
        inflated,
        text.replace("\"echo\"", "\"echo-back\"").as_bytes()
    );

    // The bomb: 64 MB of zeros in about 65 KB.
    let bomb = bomb(64 << 20);
    assert!(bomb.len() < MAX_PAYLOAD, "{}", bomb.len());
    // Peak memory from here on (writing 5 resets the peak to the current
    // size where the kernel allows it).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let before = status_kib("VmRSS:");
    client.send(0xc2, &bomb).await;
    let close = loop {
        match client.next().await {
            Some((0x88, payload)) => break payload,
            Some(_) => {}
            None => panic!("the connection ended with no close frame"),
        }
    };
    assert_eq!(close[..2], 1009u16.to_be_bytes());
    let peak = status_kib("VmHWM:");
    let growth = peak.saturating_sub(before);
    // The limit is 1 MB; the bomb would have been 64 MB.
    assert!(growth < 16 * 1024, "peak memory grew by {growth} KiB");
    assert!(
        client.next().await.is_none(),
        "the server closes the socket"
    );
    io.shutdown().await;
}
