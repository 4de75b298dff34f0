//! Interoperability with the old official JavaScript client
//! (`socket.io-client` 2.x: Engine.IO v3, Socket.IO v4 protocol) against a
//! server that allows EIO3; scripts in `interop/clients/v2.mjs`.

#![allow(clippy::unwrap_used)]

mod common;

use serde_json::json;
use socketio_tokio::{ConnectError, ConnectHandler, ConnectRequest, Socket};

const SCRIPT: &str = "v2.mjs";

/// The test application with EIO3 allowed, and `/legacy`, whose middleware
/// reads the token from the namespace query as 2.x clients send it.
async fn start_on(addr: &str) -> common::Server {
    let server = common::start_with(
        common::builder().allow_eio3(true),
        addr,
        common::Log::default(),
    )
    .await;
    let legacy = |socket: Socket| async move {
        let token = socket.handshake().nsp_query().map(str::to_owned);
        socket.emit("hello", &token)
    };
    server.io.ns(
        "/legacy",
        legacy.with(|req: ConnectRequest| async move {
            let query = req.handshake().nsp_query().unwrap_or_default();
            match socketio_tokio::socketio_proto::http::query_param(query, "token").as_deref() {
                Some("good") => Ok(()),
                _ => Err(ConnectError::new("forbidden")),
            }
        }),
    );
    server
}

async fn start() -> common::Server {
    start_on("127.0.0.1:0").await
}

/// How the polling payloads of a run went.
#[derive(Debug, PartialEq)]
enum Payloads {
    /// Not counted (node's own XHR, or WebSocket only).
    Any,
    /// Binary payloads both ways (XHR2, `application/octet-stream`).
    Binary,
    /// Text only, binaries as base64 (`b64=1`).
    Base64,
}

async fn roundtrip(args: &[&str], transport: &str, payloads: Payloads) {
    let server = start().await;
    let r = common::run_script(SCRIPT, "roundtrip", &server.url(), args).await;
    assert_eq!(r["protocol"], 3, "{r:#}");
    assert_eq!(r["transport"], transport, "{r:#}");
    assert_eq!(r["sameId"], true, "{r:#}");
    assert_eq!(
        r["echo"],
        json!(["hello", {"n": 1}, [true, null], "é\u{2028}\u{2029}😀"])
    );
    assert_eq!(r["binaryEcho"], json!([[1, 2, 3], [4]]));
    assert_eq!(r["greeting"], "hello ana (7)");
    assert_eq!(r["serverBinary"], json!([[7, 7, 7], "label"]));
    assert_eq!(r["sum"], 3);
    assert_eq!(r["ackBinary"], json!([5, 6]));
    assert_eq!(r["serverAck"], "answer to life/[9, 8]");
    assert_eq!(r["serverAckTimeout"], "timeout");
    assert_eq!(r["fallback"], json!(["fallback", "no-such-event", "[5]"]));
    assert_eq!(r["clientReason"], "io client disconnect");
    let p = &r["payloads"];
    let count = |key: &str| p[key].as_u64().unwrap_or(0);
    match payloads {
        Payloads::Any => {}
        Payloads::Binary => {
            assert_eq!(r["b64"], json!(null), "{r:#}");
            assert!(count("binarySent") > 0, "{r:#}");
            assert!(count("binaryReceived") > 0, "{r:#}");
        }
        Payloads::Base64 => {
            assert_eq!(r["b64"], 1, "{r:#}");
            assert_eq!(count("binarySent"), 0, "{r:#}");
            assert_eq!(count("binaryReceived"), 0, "{r:#}");
            assert!(count("textReceived") > 0, "{r:#}");
        }
    }
    common::client_left_after_greeting(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_xhr2_binary_payloads() {
    roundtrip(&["polling", "xhr2"], "polling", Payloads::Binary).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_base64_payloads() {
    roundtrip(&["polling", "base64"], "polling", Payloads::Base64).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_with_nodes_xhr() {
    // `xmlhttprequest-ssl` has no XHR2: the client asks for base64 itself.
    roundtrip(&["polling"], "polling", Payloads::Any).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_only() {
    roundtrip(&["websocket"], "websocket", Payloads::Any).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_then_upgrade() {
    roundtrip(&["polling,websocket", "xhr2"], "websocket", Payloads::Any).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn base64_polling_then_upgrade() {
    roundtrip(&["polling,websocket", "base64"], "websocket", Payloads::Any).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_query_auth_and_errors() {
    let server = start().await;
    for transports in ["polling", "websocket"] {
        let r = common::run_script(SCRIPT, "namespaces", &server.url(), &[transports]).await;
        assert_eq!(r["accepted"], "token=good", "{r:#}");
        assert_eq!(r["acceptedTransport"], transports, "{r:#}");
        assert_eq!(r["rejected"], "forbidden", "{r:#}");
        // An unknown namespace is refused with an object, to old clients
        // too, as the reference does (a middleware's refusal of a 2.x
        // client is a bare message, as `rejected` shows).
        assert_eq!(
            r["unknownNamespace"],
            json!({ "message": "Invalid namespace" }),
            "{r:#}"
        );
        assert_eq!(r["dynamic"], "/dyn-42", "{r:#}");
        assert_eq!(r["dynamicSameId"], true, "{r:#}");
        assert_eq!(r["multiplexed"], json!(["/dyn-7", 42]), "{r:#}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_and_current_clients_share_rooms() {
    let server = start().await;
    let r = common::run_script(SCRIPT, "mixed", &server.url(), &["polling,websocket"]).await;
    assert_eq!(
        r["protocols"],
        json!({"v2": 3, "v2-polling": 3, "v4": 4, "v4-polling": 4})
    );
    let in_room = json!([
        ["shout", "to the room"],
        ["shout-bin", "with bytes", [1, 2, 3]],
        ["all", "to all"]
    ]);
    for name in ["v2", "v2-polling", "v4"] {
        assert_eq!(r["received"][name], in_room, "{name}: {r:#}");
    }
    assert_eq!(r["received"]["v4-polling"], json!([["all", "to all"]]));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_reasons() {
    let server = start().await;
    for transports in ["polling", "websocket"] {
        let r = common::run_script(SCRIPT, "reasons", &server.url(), &[transports]).await;
        assert_eq!(r["serverDisconnect"], "io server disconnect", "{r:#}");
        assert_eq!(r["serverClose"], "io server disconnect", "{r:#}");
    }
    server.stop().await;
}

async fn restart_then_automatic_reconnect(transports: &str) {
    let first = start().await;
    let (result, second) = common::restart_scenario(SCRIPT, transports, first, |addr| async move {
        start_on(&addr).await
    })
    .await;
    assert!(result.get("error").is_none(), "{result:#}");
    assert_eq!(
        result["events"],
        json!([
            "connect",
            "disconnect: transport close",
            "connect",
            "disconnect: io client disconnect"
        ])
    );
    assert_eq!(result["afterReconnect"], 9);
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_then_automatic_reconnect_websocket() {
    restart_then_automatic_reconnect("websocket").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_then_automatic_reconnect_polling() {
    restart_then_automatic_reconnect("polling").await;
}

/// A message that tries every way out of a JavaScript string literal.
const SCRIPT_TEXT: &str = "</script><script>alert(1)</script>\");alert(2);(\"'\u{2028}\u{2029}\\n\n\\\\n`${alert(3)}`\u{1}\u{1f}\u{7f} é😀";

/// Runs `interop/clients/jsonp.mjs` against `url` with `text`; returns its
/// result, which must have no error.
async fn run_jsonp(url: &str, text: &str) -> serde_json::Value {
    common::require_node();
    let mut child = tokio::process::Command::new("node")
        .arg(common::workspace().join("interop/clients/jsonp.mjs"))
        .arg(url)
        .arg(text)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("node starts");
    let out = common::lines(&mut child, |_| {}).await;
    let _ = child.wait().await;
    let r = out.last().cloned().unwrap_or_default();
    assert!(r.get("error").is_none(), "{r:#}");
    r
}

/// JSONP polling over HTTP: each answer, run as a script, calls only the
/// callback, with the payload intact, whatever the message holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jsonp_polling_carries_any_text_and_runs_no_other_code() {
    let server = start().await;
    let r = run_jsonp(&server.url(), SCRIPT_TEXT).await;
    assert_eq!(r["contentType"], "text/javascript; charset=UTF-8", "{r:#}");
    assert_eq!(r["postAnswer"], "ok", "{r:#}");
    assert_eq!(r["rawSeparators"], false, "{r:#}");
    assert_eq!(r["injected"], false, "{r:#}");
    assert_eq!(r["event"], "echo-back", "{r:#}");
    assert_eq!(r["args"], json!([SCRIPT_TEXT]), "{r:#}");
    server.stop().await;
}

/// The same exchange with the reference server (`socket.io` with
/// `allowEIO3`): the echo's packet is written byte for byte alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jsonp_answers_are_written_as_the_reference_writes_them() {
    use tokio::io::AsyncBufReadExt;

    common::require_node();
    let mut reference = tokio::process::Command::new("node")
        .arg(common::workspace().join("interop/reference/eio3-echo.mjs"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("node starts");
    let stdout = reference.stdout.take().expect("stdout");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let first = tokio::time::timeout(std::time::Duration::from_secs(10), lines.next_line())
        .await
        .expect("the reference server starts")
        .expect("its output")
        .expect("a line");
    let port: serde_json::Value = serde_json::from_str(&first).expect("{\"port\":N}");
    let reference_url = format!("http://127.0.0.1:{}", port["port"]);
    let theirs = run_jsonp(&reference_url, SCRIPT_TEXT).await;
    let server = start().await;
    let ours = run_jsonp(&server.url(), SCRIPT_TEXT).await;
    assert_eq!(theirs["args"], json!([SCRIPT_TEXT]), "{theirs:#}");
    assert_eq!(theirs["injected"], false, "{theirs:#}");
    assert!(theirs["rawEcho"].is_string(), "{theirs:#}");
    assert_eq!(ours["rawEcho"], theirs["rawEcho"]);
    server.stop().await;
    // Stopped on drop as well, should an assertion fail first.
    let _ = reference.kill().await;
}
