//! Polling responses compressed as the reference's `httpCompression` does:
//! 1 KiB and more, with the coding the client prefers, and only then.

#![allow(clippy::unwrap_used)]

use std::io::Read;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use socketio_tokio::{Data, NotFound, Socket, SocketIo, SocketIoService};
use tower::ServiceExt;

/// A request to the service: the status, the `Content-Encoding` and the body.
async fn call(
    svc: &SocketIoService<NotFound>,
    method: &str,
    sid: &str,
    accept: Option<&str>,
    body: &str,
) -> (u16, Option<String>, Bytes) {
    let sid = match sid {
        "" => String::new(),
        sid => format!("&sid={sid}"),
    };
    let mut req = http::Request::builder()
        .method(method)
        .uri(format!("/socket.io/?EIO=4&transport=polling{sid}"));
    if let Some(accept) = accept {
        req = req.header("accept-encoding", accept);
    }
    let req = req.body(Full::new(Bytes::from(body.to_owned()))).unwrap();
    let res = svc.clone().oneshot(req).await.unwrap();
    let status = res.status().as_u16();
    let coding = res
        .headers()
        .get("content-encoding")
        .map(|v| v.to_str().unwrap().to_owned());
    (
        status,
        coding,
        res.into_body().collect().await.unwrap().to_bytes(),
    )
}

/// The body as sent, inflated according to its coding.
fn inflate(coding: Option<&str>, body: &[u8]) -> String {
    let mut text = String::new();
    match coding {
        None => text = String::from_utf8(body.to_vec()).unwrap(),
        Some("gzip") => {
            flate2::read::GzDecoder::new(body)
                .read_to_string(&mut text)
                .unwrap();
        }
        Some("deflate") => {
            flate2::read::ZlibDecoder::new(body)
                .read_to_string(&mut text)
                .unwrap();
        }
        Some(other) => panic!("unexpected coding {other}"),
    }
    text
}

/// A connected polling session on a server that answers `give` with a
/// string of the asked length: the service and the session id.
async fn session(io: &SocketIo) -> (SocketIoService<NotFound>, String) {
    io.ns("/", |socket: Socket| async move {
        socket.on("give", |socket: Socket, Data(n): Data<usize>| async move {
            let _ = socket.emit("given", &"a".repeat(n));
        });
    });
    let svc = io.service();
    let (_, _, open) = call(&svc, "GET", "", Some("gzip"), "").await;
    let open: serde_json::Value = serde_json::from_slice(&open[1..]).unwrap();
    let sid = open["sid"].as_str().unwrap().to_owned();
    assert_eq!(call(&svc, "POST", &sid, None, "40").await.0, 200);
    let (_, _, connected) = call(&svc, "GET", &sid, None, "").await;
    assert!(connected.starts_with(b"40{"));
    (svc, sid)
}

/// Asks for a string of `n` bytes, then polls with `accept`.
async fn give(
    svc: &SocketIoService<NotFound>,
    sid: &str,
    n: usize,
    accept: Option<&str>,
) -> (Option<String>, usize, String) {
    let (status, coding, _) =
        call(svc, "POST", sid, Some("gzip"), &format!("42[\"give\",{n}]")).await;
    assert_eq!(status, 200);
    assert_eq!(coding, None, "a POST's `ok` is never compressed");
    let (status, coding, body) = call(svc, "GET", sid, accept, "").await;
    assert_eq!(status, 200);
    let text = inflate(coding.as_deref(), &body);
    (coding, body.len(), text)
}

#[tokio::test]
async fn large_answers_go_out_compressed_in_the_coding_the_client_prefers() {
    let io = SocketIo::new().unwrap();
    let (svc, sid) = session(&io).await;
    let expected = |n: usize| format!("42[\"given\",\"{}\"]", "a".repeat(n));

    let (coding, sent, text) = give(&svc, &sid, 4000, Some("gzip, deflate, br")).await;
    assert_eq!(coding.as_deref(), Some("gzip"));
    assert_eq!(text, expected(4000));
    assert!(sent < 200, "4 KiB of one letter compressed to {sent} bytes");

    let (coding, _, text) = give(&svc, &sid, 4000, Some("deflate, gzip;q=0.5")).await;
    assert_eq!(coding.as_deref(), Some("deflate"));
    assert_eq!(text, expected(4000));

    // Under the threshold (1 KiB): as it is.
    let (coding, _, text) = give(&svc, &sid, 900, Some("gzip")).await;
    assert_eq!(coding, None);
    assert_eq!(text, expected(900));
    // A client that takes neither coding.
    let (coding, _, text) = give(&svc, &sid, 4000, None).await;
    assert_eq!(coding, None);
    assert_eq!(text, expected(4000));
    let (coding, _, _) = give(&svc, &sid, 4000, Some("br, gzip;q=0")).await;
    assert_eq!(coding, None);
}

#[tokio::test]
async fn compression_can_be_turned_off_or_its_threshold_moved() {
    let off = SocketIo::builder().http_compression(None).build().unwrap();
    let (svc, sid) = session(&off).await;
    assert_eq!(give(&svc, &sid, 4000, Some("gzip")).await.0, None);

    let high = SocketIo::builder()
        .http_compression(Some(8192))
        .build()
        .unwrap();
    let (svc, sid) = session(&high).await;
    assert_eq!(give(&svc, &sid, 4000, Some("gzip")).await.0, None);
    let (coding, _, text) = give(&svc, &sid, 9000, Some("gzip")).await;
    assert_eq!(coding.as_deref(), Some("gzip"));
    assert_eq!(text.len(), 9000 + "42[\"given\",\"\"]".len());
}
