//! WebSocket compression (permessage-deflate, RFC 7692): the negotiation
//! answered as the reference's `ws` answers it, the official client and a
//! `ws` client compressing both ways (seen on the wire by a proxy in
//! `interop/clients/deflate.mjs`), and the `compress` flag of an emit.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};
use socketio_tokio::{AckSender, Data, EmitError, PerMessageDeflate, Socket, SocketIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A server whose `big` event is answered three ways: `big-back`
/// (compressed), `big-plain` (`compress(false)`), `bcast-plain` (a
/// broadcast to the socket's own room with `compress(false)`), then
/// acknowledged with the text's length; `small` is echoed as `small-back`.
async fn start(deflate: Option<PerMessageDeflate>) -> (SocketIo, SocketAddr) {
    let io = SocketIo::builder()
        .per_message_deflate(deflate)
        .build()
        .unwrap();
    let io2 = io.clone();
    io.ns("/", move |socket: Socket| {
        let io = io2.clone();
        async move {
            let io = io.clone();
            socket.on(
                "big",
                move |socket: Socket, Data(text): Data<String>, ack: AckSender| {
                    let io = io.clone();
                    async move {
                        socket.emit("big-back", &text)?;
                        socket.compress(false).emit("big-plain", &text)?;
                        io.to(socket.id())
                            .compress(false)
                            .emit("bcast-plain", &text)?;
                        ack.send(&text.len())
                    }
                },
            );
            socket.on(
                "small",
                |socket: Socket, Data(text): Data<String>| async move {
                    socket.emit("small-back", &text)
                },
            );
            Ok::<(), EmitError>(())
        }
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let io3 = io.clone();
    tokio::spawn(async move { io3.serve(listener).await });
    (io, addr)
}

/// The messages one way, as the proxy saw them: (first characters, RSV1,
/// bytes on the wire, bytes inflated).
fn messages(seen: &Value, dir: &str) -> Vec<(String, bool, u64, u64)> {
    seen[dir]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["opcode"] == 1)
        .map(|m| {
            (
                m["text"].as_str().unwrap().to_owned(),
                m["rsv1"].as_bool().unwrap(),
                m["wire"].as_u64().unwrap(),
                m["length"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn find<'a>(
    messages: &'a [(String, bool, u64, u64)],
    prefix: &str,
) -> &'a (String, bool, u64, u64) {
    messages
        .iter()
        .find(|m| m.0.starts_with(prefix))
        .unwrap_or_else(|| panic!("no message starting {prefix} in {messages:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_client_compresses_both_ways() {
    let (io, addr) = start(Some(PerMessageDeflate::new())).await;
    let r = common::run_script("deflate.mjs", "official", &format!("http://{addr}"), &[]).await;
    assert_eq!(
        (&r["bigBack"], &r["bigPlain"], &r["bcastPlain"]),
        (&json!(true), &json!(true), &json!(true))
    );
    assert_eq!(r["ackedLength"], 20000);
    assert_eq!(r["small"], "hi");
    let seen = &r["seen"];
    assert_eq!(
        seen["errors"],
        json!([]),
        "every compressed message inflates"
    );
    let response = seen["response"].as_str().unwrap().to_ascii_lowercase();
    assert!(
        response.contains(
            "sec-websocket-extensions: permessage-deflate; server_no_context_takeover; \
             client_no_context_takeover"
        ),
        "{response}"
    );
    let request = seen["request"].as_str().unwrap().to_ascii_lowercase();
    assert!(request.contains("permessage-deflate"), "{request}");
    // Client to server: the large event went compressed, small ones not.
    let up = messages(seen, "toServer");
    let big = find(&up, "420[\"big\"");
    assert!(big.1 && big.2 * 5 < big.3, "{big:?}");
    assert!(!find(&up, "42[\"small\"").1);
    assert!(!find(&up, "40").1);
    // Server to client: compressed unless the emit said otherwise.
    let down = messages(seen, "toClient");
    let back = find(&down, "42[\"big-back\"");
    assert!(back.1 && back.2 * 5 < back.3, "{back:?}");
    let plain = find(&down, "42[\"big-plain\"");
    assert!(!plain.1 && plain.2 == plain.3, "{plain:?}");
    let bcast = find(&down, "42[\"bcast-plain\"");
    assert!(!bcast.1, "{bcast:?}");
    // Below the threshold of 1024 bytes: as it is.
    assert!(!find(&down, "42[\"small-back\"").1);
    assert!(!find(&down, "0{").1);
    assert!(!find(&down, "430[20000]").1);
    io.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_by_default_the_offer_is_declined() {
    let (io, addr) = start(None).await;
    let r = common::run_script("deflate.mjs", "official", &format!("http://{addr}"), &[]).await;
    assert_eq!(r["bigBack"], true);
    let seen = &r["seen"];
    let response = seen["response"].as_str().unwrap().to_ascii_lowercase();
    assert!(!response.contains("sec-websocket-extensions"), "{response}");
    for dir in ["toServer", "toClient"] {
        assert!(
            messages(seen, dir).iter().all(|m| !m.1),
            "{dir}: {:?}",
            messages(seen, dir)
        );
    }
    io.shutdown().await;
}

/// A `ws` client offering every parameter: windows of 10 bits (the server's)
/// and 9 (the client's), no context takeover either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ws_client_with_every_parameter() {
    let (io, addr) = start(Some(PerMessageDeflate::new())).await;
    for (server_bits, client_bits) in [("10", "9"), ("8", "15"), ("15", "8")] {
        let r = common::run_script(
            "deflate.mjs",
            "ws-params",
            &format!("http://{addr}"),
            &[server_bits, client_bits],
        )
        .await;
        let response = r["response"].as_str().unwrap().to_ascii_lowercase();
        assert!(
            response.contains(&format!(
                "sec-websocket-extensions: permessage-deflate; server_no_context_takeover; \
                 client_no_context_takeover; server_max_window_bits={server_bits}; \
                 client_max_window_bits={client_bits}"
            )),
            "{response}"
        );
        assert_eq!(r["extensions"], json!(["permessage-deflate"]));
        assert_eq!(
            r["events"],
            json!([
                ["big-back", true],
                ["big-plain", true],
                ["bcast-plain", true]
            ])
        );
        assert_eq!(r["ack"], "431[30000]");
        let seen = &r["seen"];
        assert_eq!(seen["errors"], json!([]));
        assert!(find(&messages(seen, "toServer"), "421[\"big\"").1);
        assert!(find(&messages(seen, "toClient"), "42[\"big-back\"").1);
    }
    io.shutdown().await;
}

/// Sends a WebSocket upgrade with these `Sec-WebSocket-Extensions` lines;
/// returns the status and the extensions the answer carries.
async fn upgrade(addr: SocketAddr, offers: &[&str]) -> (u16, Option<String>) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut req = String::from(
        "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\n\
         Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
    );
    for offer in offers {
        req.push_str(&format!("Sec-WebSocket-Extensions: {offer}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        while !head.ends_with(b"\r\n\r\n") {
            let mut b = [0u8; 1];
            if stream.read(&mut b).await.unwrap() == 0 {
                break;
            }
            head.push(b[0]);
        }
    })
    .await
    .unwrap();
    let head = String::from_utf8(head).unwrap();
    let status = head[9..12].parse().unwrap();
    let ext = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("sec-websocket-extensions")
                .then(|| v.trim().to_owned())
        })
        .filter(|_| status == 101);
    (status, ext)
}

/// A negotiation case: the server, the offers, the status and the answer.
type Case<'a> = (SocketAddr, Vec<&'a str>, (u16, Option<String>));

/// Each offer, and what the server answers, as `ws` answers it: the first
/// acceptable offer, confirmed with both no-context-takeover parameters;
/// other extensions passed over; offers that are malformed, have unknown,
/// repeated or invalid parameters, or of which none is acceptable: 400.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn negotiation_cases() {
    const BOTH: &str = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";
    let (io, addr) = start(Some(PerMessageDeflate::new())).await;
    let (limited, limited_addr) = start(Some(
        PerMessageDeflate::new()
            .server_max_window_bits(11)
            .client_max_window_bits(12),
    ))
    .await;
    let (off, off_addr) = start(None).await;
    let ok = |ext: &str| (101, Some(ext.to_owned()));
    let cases: Vec<Case<'_>> = vec![
        (addr, vec![], (101, None)),
        (
            addr,
            vec!["permessage-deflate; client_max_window_bits"],
            ok(BOTH),
        ),
        (
            addr,
            vec!["permessage-deflate; server_max_window_bits=12"],
            ok(&format!("{BOTH}; server_max_window_bits=12")),
        ),
        (
            addr,
            vec!["x-webkit-deflate-frame", "permessage-deflate"],
            ok(BOTH),
        ),
        (addr, vec!["x-webkit-deflate-frame"], (101, None)),
        (addr, vec!["permessage-deflate; foo=1"], (400, None)),
        (
            addr,
            vec!["permessage-deflate; client_max_window_bits=7"],
            (400, None),
        ),
        (
            addr,
            vec!["permessage-deflate; server_no_context_takeover; server_no_context_takeover"],
            (400, None),
        ),
        (addr, vec!["permessage-deflate;"], (400, None)),
        (addr, vec!["permessage-deflate, , foo"], (400, None)),
        // The server's own limits: a client that cannot limit its window,
        // or asks for a smaller server window, is declined.
        (
            limited_addr,
            vec!["permessage-deflate; client_max_window_bits=10"],
            ok(&format!(
                "{BOTH}; server_max_window_bits=11; client_max_window_bits=10"
            )),
        ),
        (limited_addr, vec!["permessage-deflate"], (400, None)),
        (
            limited_addr,
            vec![
                "permessage-deflate; server_max_window_bits=10; client_max_window_bits",
                "permessage-deflate; client_max_window_bits",
            ],
            ok(&format!(
                "{BOTH}; server_max_window_bits=11; client_max_window_bits=12"
            )),
        ),
        // Off: offers of any kind are passed over.
        (off_addr, vec!["permessage-deflate"], (101, None)),
        (off_addr, vec!["permessage-deflate; foo"], (101, None)),
    ];
    for (at, offers, expected) in cases {
        assert_eq!(upgrade(at, &offers).await, expected, "{offers:?}");
    }
    io.shutdown().await;
    limited.shutdown().await;
    off.shutdown().await;
}

/// Headless Chromium (`interop/browser/deflate.mjs`, playwright-core) with
/// the official client bundle: compressed both ways, `compress(false)` not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_compresses_both_ways() {
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists(),
        "/usr/bin/chromium is missing: install Chromium with \
         `apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium`"
    );
    common::require_node();
    let (io, addr) = start(Some(PerMessageDeflate::new())).await;
    let mut child = tokio::process::Command::new("node")
        .arg(common::workspace().join("interop/browser/deflate.mjs"))
        .arg(format!("http://{addr}"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("node starts");
    let out = common::lines(&mut child, |_| {}).await;
    let _ = child.wait().await;
    let r = out.last().cloned().unwrap_or_default();
    assert!(r.get("error").is_none(), "{r:#}");
    assert_eq!(
        (&r["ackedLength"], &r["back"], &r["plain"], &r["bcast"]),
        (&json!(20000), &json!(true), &json!(true), &json!(true))
    );
    let seen = &r["seen"];
    assert_eq!(seen["errors"], json!([]));
    let request = seen["request"].as_str().unwrap().to_ascii_lowercase();
    assert!(
        request.contains("sec-websocket-extensions: permessage-deflate"),
        "{request}"
    );
    let up = messages(seen, "toServer");
    let big = find(&up, "420[\"big\"");
    assert!(big.1 && big.2 * 3 < big.3, "{big:?}");
    let down = messages(seen, "toClient");
    let back = find(&down, "42[\"big-back\"");
    assert!(back.1 && back.2 * 3 < back.3, "{back:?}");
    assert!(!find(&down, "42[\"big-plain\"").1);
    assert!(!find(&down, "42[\"bcast-plain\"").1);
    io.shutdown().await;
}
