//! The reference's HTTP options: `serve_client` (the client bundle),
//! `cookie` (the session cookie), an asynchronous `allow_request` refusing
//! with a message, `generate_id` (the session ids), and the request's
//! extensions in the handshake; over plain HTTP and with the official
//! JavaScript client.

#![allow(clippy::unwrap_used)]

use std::io::Read as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::json;
use socketio_tokio::{
    AckSender, BuildError, Cookie, Data, Parser, SameSite, Socket, SocketIo, SocketIoBuilder,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

mod common;

/// One HTTP response, its body as bytes.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends a GET for `path` with the `extra` header lines, reads the answer
/// (by `Content-Length`, or to the end).
async fn get(addr: SocketAddr, path: &str, extra: &str) -> Reply {
    let head = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{extra}\r\n");
    let work = async {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        let end = loop {
            let n = stream.read(&mut chunk).await.unwrap_or_default();
            buf.extend_from_slice(&chunk[..n]);
            let end = buf.windows(4).position(|w| w == b"\r\n\r\n");
            if let Some(end) = end {
                let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                let len = head.lines().find_map(|l| {
                    l.strip_prefix("content-length:")
                        .and_then(|v| v.trim().parse::<usize>().ok())
                });
                let status_line = head.lines().next().unwrap_or_default().to_owned();
                // 101 and 304 have no body.
                if status_line.contains(" 101 ") || status_line.contains(" 304 ") {
                    buf.truncate(end + 4);
                    break end;
                }
                if let Some(len) = len
                    && buf.len() >= end + 4 + len
                {
                    buf.truncate(end + 4 + len);
                    break end;
                }
            }
            if n == 0 {
                break end.unwrap_or(buf.len());
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_lowercase(), v.trim().to_owned()))
            .collect();
        let body = buf.get(end + 4..).unwrap_or_default().to_vec();
        Reply {
            status,
            headers,
            body,
        }
    };
    tokio::time::timeout(Duration::from_secs(20), work)
        .await
        .expect("the server answers")
}

const WS_HEADERS: &str = "Upgrade: websocket\r\nConnection: Upgrade\r\n\
    Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";

/// Serves `io` with an echo application on a free port.
async fn start(io: SocketIo) -> SocketAddr {
    echo_app(&io);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { io.serve(listener).await });
    addr
}

/// `echo` acknowledges its argument.
fn echo_app(io: &SocketIo) {
    io.ns("/", |socket: Socket| async move {
        socket.on(
            "echo",
            |Data(v): Data<serde_json::Value>, ack: AckSender| async move { ack.send(&v) },
        );
    });
}

fn builder() -> SocketIoBuilder {
    SocketIo::builder().ping_interval(Duration::from_millis(500))
}

/// The session id of an open packet `0{"sid":"..",...}`.
fn sid_of(open: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(open.strip_prefix('0').unwrap()).unwrap();
    v["sid"].as_str().unwrap().to_owned()
}

// ----- serve_client -----

fn client_dist() -> PathBuf {
    common::require_node();
    common::workspace().join("interop/node_modules/socket.io-client/dist")
}

fn client_version() -> String {
    let text = std::fs::read_to_string(client_dist().join("../package.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["version"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn serve_client_serves_every_file_of_the_bundle() {
    let dist = client_dist();
    let addr = start(builder().serve_client(&dist).build().unwrap()).await;
    let etag = format!("\"{}\"", client_version());
    let files = [
        ("socket.io.js", "application/javascript; charset=utf-8"),
        ("socket.io.min.js", "application/javascript; charset=utf-8"),
        (
            "socket.io.msgpack.min.js",
            "application/javascript; charset=utf-8",
        ),
        (
            "socket.io.esm.min.js",
            "application/javascript; charset=utf-8",
        ),
        ("socket.io.js.map", "application/json; charset=utf-8"),
        ("socket.io.min.js.map", "application/json; charset=utf-8"),
        (
            "socket.io.msgpack.min.js.map",
            "application/json; charset=utf-8",
        ),
        (
            "socket.io.esm.min.js.map",
            "application/json; charset=utf-8",
        ),
    ];
    for (name, content_type) in files {
        let want = std::fs::read(dist.join(name)).unwrap();
        let r = get(addr, &format!("/socket.io/{name}"), "").await;
        assert_eq!(r.status, 200, "{name}");
        assert_eq!(r.header("content-type"), Some(content_type), "{name}");
        assert_eq!(r.header("cache-control"), Some("public, max-age=0"));
        assert_eq!(r.header("etag"), Some(etag.as_str()));
        assert_eq!(r.header("content-encoding"), None);
        assert!(r.body == want, "{name}: the served bytes are the file's");

        // A query string does not matter; gzip and deflate when accepted.
        let r = get(
            addr,
            &format!("/socket.io/{name}?v=1"),
            "Accept-Encoding: gzip\r\n",
        )
        .await;
        assert_eq!(r.header("content-encoding"), Some("gzip"), "{name}");
        let mut inflated = Vec::new();
        flate2::read::GzDecoder::new(&r.body[..])
            .read_to_end(&mut inflated)
            .unwrap();
        assert!(inflated == want, "{name}: gzip inflates to the file");
        let r = get(
            addr,
            &format!("/socket.io/{name}"),
            "Accept-Encoding: deflate\r\n",
        )
        .await;
        assert_eq!(r.header("content-encoding"), Some("deflate"), "{name}");
        let mut inflated = Vec::new();
        flate2::read::ZlibDecoder::new(&r.body[..])
            .read_to_end(&mut inflated)
            .unwrap();
        assert!(inflated == want, "{name}: deflate inflates to the file");
    }

    // The ETag, strong or weak, gets 304 with no body; another gets the file.
    for tag in [etag.clone(), format!("W/{etag}")] {
        let r = get(
            addr,
            "/socket.io/socket.io.min.js",
            &format!("If-None-Match: {tag}\r\n"),
        )
        .await;
        assert_eq!(r.status, 304, "{tag}");
        assert!(r.body.is_empty());
    }
    let r = get(
        addr,
        "/socket.io/socket.io.min.js",
        "If-None-Match: \"0.0.0\"\r\n",
    )
    .await;
    assert_eq!(r.status, 200);

    // Other names under the path are Engine.IO's, and the protocol goes on.
    let r = get(addr, "/socket.io/socket.io.msgpack.js", "").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.text(), r#"{"code":0,"message":"Transport unknown"}"#);
    let r = get(addr, "/socket.io/?EIO=4&transport=polling", "").await;
    assert_eq!(r.status, 200);
    assert!(r.text().starts_with("0{\"sid\":"));
}

#[tokio::test]
async fn serve_client_answers_404_for_a_file_not_there_and_is_off_by_default() {
    let dir = std::env::temp_dir().join(format!("socketio-serve-client-{}", std::process::id()));
    let dist = dir.join("dist");
    std::fs::create_dir_all(&dist).unwrap();
    std::fs::write(dir.join("package.json"), r#"{"version":"9.9.9"}"#).unwrap();
    std::fs::write(dist.join("socket.io.js"), "/* the bundle */").unwrap();
    let addr = start(builder().serve_client(&dist).build().unwrap()).await;
    let r = get(addr, "/socket.io/socket.io.js", "").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "/* the bundle */");
    assert_eq!(r.header("etag"), Some("\"9.9.9\""));
    let r = get(addr, "/socket.io/socket.io.min.js", "").await;
    assert_eq!(r.status, 404);
    assert!(
        r.text().contains("socket.io.min.js is not in") && r.text().contains("dist"),
        "{}",
        r.text()
    );
    let _ = std::fs::remove_dir_all(&dir);

    // Without the option the bundle's names are Engine.IO requests.
    let addr = start(builder().build().unwrap()).await;
    let r = get(addr, "/socket.io/socket.io.js", "").await;
    assert_eq!(r.status, 400);
}

#[test]
fn serve_client_without_the_bundle_fails_to_build_and_says_how_to_install_it() {
    let missing = std::env::temp_dir().join("socketio-no-such-dir/dist");
    let err = SocketIo::builder()
        .serve_client(&missing)
        .build()
        .unwrap_err();
    assert!(matches!(&err, BuildError::ClientBundle { path, .. } if path == &missing));
    let text = err.to_string();
    assert!(text.contains("socketio-no-such-dir"), "{text}");
    assert!(text.contains("npm install socket.io-client"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_bundle_loaded_from_the_server_connects() {
    let addr = start(builder().serve_client(client_dist()).build().unwrap()).await;
    let url = format!("http://{addr}");
    for file in ["socket.io.js", "socket.io.min.js"] {
        let r = common::run_script("options.mjs", "bundle", &url, &[file]).await;
        assert_eq!(r["status"], 200, "{file}");
        assert_eq!(r["etag"], format!("\"{}\"", client_version()));
        assert_eq!(r["transport"], "websocket", "{file}");
        assert_eq!(r["echo"], "from the bundle", "{file}");
    }
    // The msgpack bundle speaks to a server whose parser is msgpack.
    let io = builder()
        .serve_client(client_dist())
        .parser(Parser::Msgpack)
        .build()
        .unwrap();
    let url = format!("http://{}", start(io).await);
    let file = "socket.io.msgpack.min.js";
    let r = common::run_script("options.mjs", "bundle", &url, &[file]).await;
    assert_eq!(r["echo"], "from the bundle");
}

// ----- cookie -----

#[tokio::test]
async fn the_session_cookie_is_set_on_handshakes_only() {
    let addr = start(builder().cookie(Cookie::new()).build().unwrap()).await;
    let r = get(addr, "/socket.io/?EIO=4&transport=polling", "").await;
    assert_eq!(r.status, 200);
    let sid = sid_of(&r.text());
    assert_eq!(
        r.header("set-cookie"),
        Some(format!("io={sid}; Path=/; HttpOnly; SameSite=Lax").as_str())
    );
    // The session's next request sets none.
    let r = get(
        addr,
        &format!("/socket.io/?EIO=4&transport=polling&sid={sid}"),
        "",
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("set-cookie"), None);

    // A direct WebSocket handshake sets it too.
    let r = get(addr, "/socket.io/?EIO=4&transport=websocket", WS_HEADERS).await;
    assert_eq!(r.status, 101);
    let cookie = r.header("set-cookie").unwrap();
    let (value, attributes) = cookie.split_once("; ").unwrap();
    let ws_sid = value.strip_prefix("io=").unwrap();
    assert_eq!(ws_sid.len(), 20);
    assert_ne!(ws_sid, sid);
    assert_eq!(attributes, "Path=/; HttpOnly; SameSite=Lax");

    // Off by default.
    let addr = start(builder().build().unwrap()).await;
    let r = get(addr, "/socket.io/?EIO=4&transport=polling", "").await;
    assert_eq!(r.header("set-cookie"), None);
}

#[tokio::test]
async fn the_session_cookie_s_attributes_in_the_reference_s_order() {
    let cookie = Cookie::new()
        .name("lb")
        .path(Some("/app"))
        .http_only(false)
        .same_site(SameSite::None)
        .secure(true)
        .max_age(Duration::from_millis(86_400_500))
        .domain("example.com");
    let addr = start(builder().cookie(cookie).build().unwrap()).await;
    let r = get(addr, "/socket.io/?EIO=4&transport=polling", "").await;
    let sid = sid_of(&r.text());
    assert_eq!(
        r.header("set-cookie"),
        Some(
            format!(
                "lb={sid}; Max-Age=86400; Domain=example.com; Path=/app; Secure; SameSite=None"
            )
            .as_str()
        )
    );
    let bare = Cookie::new().path(None).same_site(None).http_only(false);
    let addr = start(builder().cookie(bare).build().unwrap()).await;
    let r = get(addr, "/socket.io/?EIO=4&transport=polling", "").await;
    let sid = sid_of(&r.text());
    assert_eq!(r.header("set-cookie"), Some(format!("io={sid}").as_str()));

    for bad in [
        Cookie::new().name("a b"),
        Cookie::new().name(""),
        Cookie::new().domain("x;y"),
    ] {
        let err = SocketIo::builder().cookie(bad).build().unwrap_err();
        assert!(matches!(err, BuildError::Cookie(_)), "{err}");
    }
}

// ----- allow_request -----

/// Refuses handshakes without `?token=good`, after an await, with a message.
fn token_check(io: SocketIoBuilder) -> SocketIoBuilder {
    io.allow_request(|req| {
        let token = req.uri.query().unwrap_or_default().contains("token=good");
        async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            match token {
                true => Ok(()),
                false => Err("bad \"token\"".to_owned()),
            }
        }
    })
}

#[tokio::test]
async fn allow_request_refuses_with_its_message() {
    let addr = start(token_check(builder()).build().unwrap()).await;
    let r = get(addr, "/socket.io/?EIO=4&transport=polling", "").await;
    assert_eq!(r.status, 403);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.text(), r#"{"code":4,"message":"bad \"token\""}"#);
    let r = get(addr, "/socket.io/?EIO=4&transport=websocket", WS_HEADERS).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.text(), "bad \"token\"");
    let r = get(addr, "/socket.io/?EIO=4&transport=polling&token=good", "").await;
    assert_eq!(r.status, 200);
    let r = get(
        addr,
        "/socket.io/?EIO=4&transport=websocket&token=good",
        WS_HEADERS,
    )
    .await;
    assert_eq!(r.status, 101);
}

#[tokio::test]
async fn a_pending_allow_request_holds_no_session() {
    // One session at most; a handshake whose check is pending takes none.
    let entered = Arc::new(tokio::sync::Notify::new());
    let release = Arc::new(tokio::sync::Notify::new());
    let (e, r) = (entered.clone(), release.clone());
    let io = builder()
        .max_sessions(1)
        .allow_request(move |req| {
            let slow = req.uri.query().unwrap_or_default().contains("slow");
            let (e, r) = (e.clone(), r.clone());
            async move {
                if slow {
                    e.notify_one();
                    r.notified().await;
                }
                Ok(())
            }
        })
        .build()
        .unwrap();
    let addr = start(io).await;
    let slow =
        tokio::spawn(
            async move { get(addr, "/socket.io/?EIO=4&transport=polling&slow", "").await },
        );
    entered.notified().await;
    let quick = get(addr, "/socket.io/?EIO=4&transport=polling", "").await;
    assert_eq!(quick.status, 200, "the pending check held the only session");
    release.notify_one();
    let slow = slow.await.unwrap();
    assert_eq!(slow.status, 403, "over max_sessions once it went on");
    assert_eq!(slow.text(), r#"{"code":4,"message":"Forbidden"}"#);
}

#[tokio::test]
async fn an_allow_request_that_panics_refuses_and_the_server_goes_on() {
    let io = builder()
        .allow_request(|req| {
            let query = req.uri.query().unwrap_or_default().to_owned();
            assert!(!query.contains("sync-boom"), "the hook panics");
            async move {
                assert!(!query.contains("async-boom"), "its future panics");
                Ok(())
            }
        })
        .build()
        .unwrap();
    let addr = start(io).await;
    for boom in ["sync-boom", "async-boom"] {
        let r = get(
            addr,
            &format!("/socket.io/?EIO=4&transport=polling&{boom}"),
            "",
        )
        .await;
        assert_eq!(r.status, 403, "{boom}");
        assert_eq!(r.text(), r#"{"code":4,"message":"Forbidden"}"#);
    }
    let r = get(addr, "/socket.io/?EIO=4&transport=polling", "").await;
    assert_eq!(r.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_client_sees_the_refusal_s_message() {
    let addr = start(token_check(builder()).build().unwrap()).await;
    let url = format!("http://{addr}");
    let r = common::run_script("options.mjs", "refused", &url, &["polling"]).await;
    assert_eq!(r["message"], "xhr poll error");
    assert_eq!(r["description"], 403);
    let body: serde_json::Value =
        serde_json::from_str(r["responseText"].as_str().unwrap()).unwrap();
    assert_eq!(body, json!({ "code": 4, "message": "bad \"token\"" }));
    let r = common::run_script("options.mjs", "refused", &url, &["websocket"]).await;
    assert_eq!(r["message"], "websocket error");
    let r = common::run_script(
        "options.mjs",
        "engine-id",
        &format!("{url}/?token=good"),
        &["polling,websocket"],
    )
    .await;
    assert_eq!(r["echo"], "ping");
}

// ----- generate_id -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_client_gets_the_generated_id() {
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let io = builder()
        .generate_id(move |req| {
            let n = c.fetch_add(1, Ordering::Relaxed);
            let transport = if req.uri.query().unwrap_or_default().contains("websocket") {
                "ws"
            } else {
                "poll"
            };
            format!("custom-{transport}-{n}")
        })
        .build()
        .unwrap();
    let url = format!("http://{}", start(io).await);
    let r = common::run_script("options.mjs", "engine-id", &url, &["polling,websocket"]).await;
    assert_eq!(r["engineId"], "custom-poll-0");
    assert_eq!(
        r["transport"], "websocket",
        "upgraded with the generated id"
    );
    assert_eq!(r["echo"], "ping");
    assert_ne!(
        r["socketId"], r["engineId"],
        "socket ids are the server's own"
    );
    let r = common::run_script("options.mjs", "engine-id", &url, &["websocket"]).await;
    assert_eq!(r["engineId"], "custom-ws-1");
    assert_eq!(r["echo"], "ping");
    assert_eq!(count.load(Ordering::Relaxed), 2, "once per handshake");
}

#[tokio::test]
async fn a_generated_id_that_is_invalid_or_in_use_is_refused() {
    let next = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let n = next.clone();
    let io = builder()
        .generate_id(move |_| {
            let id = n.lock().unwrap().pop().unwrap_or_default();
            assert_ne!(id, "panic", "a hook that panics");
            id
        })
        .build()
        .unwrap();
    let addr = start(io).await;
    let handshake = "/socket.io/?EIO=4&transport=polling";
    let set = |id: &str| next.lock().unwrap().push(id.to_owned());
    set("same");
    let r = get(addr, handshake, "").await;
    assert_eq!(sid_of(&r.text()), "same");
    for bad in ["same", "", "has space", "a&b", &"x".repeat(65)] {
        set(bad);
        let r = get(addr, handshake, "").await;
        assert_eq!(r.status, 400, "{bad:?}");
        assert_eq!(r.text(), r#"{"code":3,"message":"Bad request"}"#, "{bad:?}");
    }
    set("same");
    let r = get(addr, "/socket.io/?EIO=4&transport=websocket", WS_HEADERS).await;
    assert_eq!(r.status, 400, "a WebSocket handshake too");
    // A hook that panics refuses the handshake, as a `generateId` that
    // throws does in the reference.
    set("panic");
    let r = get(addr, handshake, "").await;
    assert_eq!(r.text(), r#"{"code":3,"message":"Bad request"}"#);
    set(&"y".repeat(64));
    let r = get(addr, handshake, "").await;
    assert_eq!(r.status, 200);
    assert_eq!(sid_of(&r.text()), "y".repeat(64));
    // The first session lives on.
    let r = get(addr, "/socket.io/?EIO=4&transport=polling&sid=same", "").await;
    assert_eq!(r.status, 200);
}

// ----- the request's extensions -----

#[derive(Debug, Clone)]
struct User(String);

/// A value the layer inserts that the server is not asked to keep.
#[derive(Debug, Clone)]
struct Unkept;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tower_layer_s_extension_reaches_the_connect_handler() {
    let io = builder().keep_extension::<User>().build().unwrap();
    io.ns("/", |socket: Socket| async move {
        let extensions = socket.handshake().extensions();
        let user = extensions.get::<User>().cloned();
        let _ = socket.emit(
            "user",
            &json!({
                "name": user.map(|u| u.0),
                "remote": socket.handshake().remote_addr().is_some(),
                // Only what the application named: not the layer's other
                // value, nor axum's copy of the URI.
                "unkept": extensions.get::<Unkept>().is_some(),
                "originalUri": extensions.get::<axum::extract::OriginalUri>().is_some(),
                "count": extensions.len(),
            }),
        );
    });
    // An "auth" layer in front: the user from a query parameter.
    let app = axum::Router::new()
        .route("/", axum::routing::get(|| async { "hello" }))
        .layer(io.layer())
        .layer(axum::middleware::from_fn(
            |mut req: axum::extract::Request, next: axum::middleware::Next| async move {
                let query = req.uri().query().unwrap_or_default().to_owned();
                if let Some(name) = query.split('&').find_map(|p| p.strip_prefix("user=")) {
                    req.extensions_mut().insert(User(name.to_owned()));
                }
                req.extensions_mut().insert(Unkept);
                next.run(req).await
            },
        ));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let io2 = io.clone();
    tokio::spawn(async move { io2.http_server().serve(listener, app).await });
    let url = format!("http://{addr}");
    for transports in ["polling,websocket", "websocket"] {
        let r = common::run_script(
            "options.mjs",
            "extensions",
            &format!("{url}/?user=ana"),
            &[transports],
        )
        .await;
        assert_eq!(r["user"]["name"], "ana", "{transports}");
        assert_eq!(r["user"]["remote"], true, "{transports}");
        assert_eq!(r["user"]["unkept"], false, "{transports}");
        assert_eq!(r["user"]["originalUri"], false, "{transports}");
        assert_eq!(r["user"]["count"], 1, "{transports}");
        let r = common::run_script("options.mjs", "extensions", &url, &[transports]).await;
        assert_eq!(r["user"]["name"], serde_json::Value::Null, "{transports}");
        assert_eq!(r["user"]["count"], 0, "{transports}");
    }
}
