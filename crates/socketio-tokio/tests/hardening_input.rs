//! Bad input over raw HTTP and raw WebSocket: each case gets the
//! reference server's answer (HTTP status and JSON error, or which close
//! and disconnect reason), nothing panics, and a healthy client connected
//! throughout still gets its echo.

#![allow(clippy::unwrap_used)]

#[path = "common/raw.rs"]
mod raw;

use futures_util::SinkExt;
use raw::*;
use socketio_tokio::SocketIo;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data as OpData, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{Frame, FrameHeader};

/// A server and a healthy client on `/`.
async fn setup() -> (Server, Ws) {
    setup_with(SocketIo::builder()).await
}

async fn setup_with(builder: socketio_tokio::SocketIoBuilder) -> (Server, Ws) {
    let server = start_with(builder).await;
    let (mut healthy, _, _) = ws_connect(&server).await;
    assert_echo(&mut healthy, "before").await;
    (server, healthy)
}

/// The healthy client still works, and nothing panicked.
async fn healthy_after(healthy: &mut Ws) {
    assert_echo(healthy, "after").await;
    assert_eq!(panics(), 0, "a panic happened (see the output above)");
}

// ----- the handshake -----

#[tokio::test]
async fn missing_or_wrong_eio_is_an_unsupported_protocol_version() {
    let (server, mut healthy) = setup().await;
    for q in [
        "transport=polling",
        "EIO=5&transport=polling",
        "EIO=3&transport=polling",
        "EIO=abc&transport=polling",
    ] {
        get(server.addr, q)
            .await
            .assert_error(400, 5, "Unsupported protocol version");
    }
    let refused = ws_open(&server.ws_url("EIO=5&transport=websocket")).await;
    assert_eq!(refused.err(), Some(400));
    healthy_after(&mut healthy).await;
}

#[tokio::test]
async fn missing_or_unknown_transport() {
    let (server, mut healthy) = setup().await;
    for q in ["EIO=4", "EIO=4&transport=flash", "EIO=4&transport="] {
        get(server.addr, q)
            .await
            .assert_error(400, 0, "Transport unknown");
    }
    healthy_after(&mut healthy).await;
}

#[tokio::test]
async fn unknown_sid() {
    let (server, mut healthy) = setup().await;
    let q = "EIO=4&transport=polling&sid=nosuchsession";
    get(server.addr, q)
        .await
        .assert_error(400, 1, "Session ID unknown");
    post(server.addr, q, b"40")
        .await
        .assert_error(400, 1, "Session ID unknown");
    let refused = ws_open(&server.ws_url("EIO=4&transport=websocket&sid=nosuchsession")).await;
    assert_eq!(refused.err(), Some(400));
    healthy_after(&mut healthy).await;
}

#[tokio::test]
async fn wrong_methods() {
    let (server, mut healthy) = setup().await;
    // A handshake must be a GET.
    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        request(server.addr, method, "EIO=4&transport=polling", "", b"x")
            .await
            .assert_error(400, 2, "Bad handshake method");
    }
    // Other methods on a session: the reference's polling transport
    // answers 500 and keeps the session.
    let sid = polling_connect(server.addr).await;
    let q = format!("EIO=4&transport=polling&sid={sid}");
    for method in ["PUT", "DELETE"] {
        let r = request(server.addr, method, &q, "", b"x").await;
        assert_eq!(r.status, 500, "{method}: {r:?}");
    }
    assert_eq!(post(server.addr, &q, b"42[\"echo\",1]").await.body, "ok");
    assert_eq!(get(server.addr, &q).await.body, "42[\"echo-back\",1]");
    healthy_after(&mut healthy).await;
}

// ----- polling -----

#[tokio::test]
async fn polling_post_over_max_payload_gets_413_and_closes_the_session() {
    let (server, mut healthy) = setup_with(SocketIo::builder().max_payload(1000)).await;
    let sid = polling_connect(server.addr).await;
    let q = format!("EIO=4&transport=polling&sid={sid}");
    let body = format!("42[\"echo\",\"{}\"]", "a".repeat(2000));
    let r = post(server.addr, &q, body.as_bytes()).await;
    assert_eq!(r.status, 413, "{r:?}");
    server.log.wait_for("disconnect / transport error").await;
    get(server.addr, &q)
        .await
        .assert_error(400, 1, "Session ID unknown");
    // Without a session: refused before the body is read, as the
    // reference's handshake check refuses a POST.
    post(server.addr, "EIO=4&transport=polling", body.as_bytes())
        .await
        .assert_error(400, 2, "Bad handshake method");
    // Naming no live session: refused before the body is read too.
    post(
        server.addr,
        "EIO=4&transport=polling&sid=nosuch",
        body.as_bytes(),
    )
    .await
    .assert_error(400, 1, "Session ID unknown");
    healthy_after(&mut healthy).await;
}

#[tokio::test]
async fn polling_binary_body_in_v4_is_refused() {
    let (server, mut healthy) = setup().await;
    let sid = polling_connect(server.addr).await;
    let q = format!("EIO=4&transport=polling&sid={sid}");
    let r = request(
        server.addr,
        "POST",
        &q,
        "Content-Type: application/octet-stream\r\n",
        b"\x04abc",
    )
    .await;
    assert_eq!(r.status, 400, "{r:?}");
    server.log.wait_for("disconnect / transport error").await;
    healthy_after(&mut healthy).await;
}

#[tokio::test]
async fn unknown_engine_packet_type_over_polling_is_a_parse_error() {
    let (server, mut healthy) = setup().await;
    let sid = polling_connect(server.addr).await;
    let q = format!("EIO=4&transport=polling&sid={sid}");
    let r = post(server.addr, &q, b"9hello").await;
    assert_eq!(r.status, 400, "{r:?}");
    server.log.wait_for("disconnect / parse error").await;
    healthy_after(&mut healthy).await;
}

#[tokio::test]
async fn ping_from_a_v4_client_over_polling_closes() {
    let (server, mut healthy) = setup().await;
    let sid = polling_connect(server.addr).await;
    let q = format!("EIO=4&transport=polling&sid={sid}");
    let _ = post(server.addr, &q, b"2").await;
    server.log.wait_for("disconnect / transport error").await;
    healthy_after(&mut healthy).await;
}

#[tokio::test]
async fn overlapping_polling_gets() {
    let (server, mut healthy) = setup().await;
    let sid = polling_connect(server.addr).await;
    let q = format!("EIO=4&transport=polling&sid={sid}");
    let addr = server.addr;
    let (q1, q2) = (q.clone(), q.clone());
    let first = tokio::spawn(async move { get(addr, &q1).await });
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let second = tokio::spawn(async move { get(addr, &q2).await });
    let (a, b) = (first.await.unwrap(), second.await.unwrap());
    // Whichever came second: 400; the held one gets a close packet.
    let (held, overlap) = if a.status == 400 { (b, a) } else { (a, b) };
    assert_eq!(overlap.status, 400, "{overlap:?}");
    assert_eq!(held.status, 200, "{held:?}");
    assert_eq!(held.body, "1", "the held GET gets a close packet");
    server.log.wait_for("disconnect / transport error").await;
    healthy_after(&mut healthy).await;
}

#[tokio::test]
async fn overlapping_polling_posts() {
    use tokio::io::AsyncWriteExt;
    let (server, mut healthy) = setup().await;
    let sid = polling_connect(server.addr).await;
    let q = format!("EIO=4&transport=polling&sid={sid}");
    // A POST whose body is slow to come.
    let mut slow = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let body = b"42[\"echo\",\"slow\"]";
    slow.write_all(
        format!(
            "POST /socket.io/?{q} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
             Content-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    slow.write_all(&body[..4]).await.unwrap();
    // Wait until the server is reading it: a second POST then overlaps.
    let mut second = post(server.addr, &q, b"42[\"echo\",2]").await;
    for _ in 0..100 {
        if second.status == 400 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        second = post(server.addr, &q, b"42[\"echo\",2]").await;
    }
    assert_eq!(second.status, 400, "{second:?}");
    server.log.wait_for("disconnect / transport error").await;
    // The slow POST ends on a closing session: as the reference's, its
    // packets are dropped, whatever the answer.
    slow.write_all(&body[4..]).await.unwrap();
    let first = tokio::time::timeout(WAIT, read_reply(&mut slow))
        .await
        .unwrap();
    assert!(matches!(first.status, 200 | 400), "{first:?}");
    // The next poll gets the close packet, and the session is gone.
    let r = get(server.addr, &q).await;
    assert!(r.body == "1" || r.status == 400, "{r:?}");
    assert!(!r.body.contains("slow"), "{r:?}");
    get(server.addr, &q)
        .await
        .assert_error(400, 1, "Session ID unknown");
    healthy_after(&mut healthy).await;
}

// ----- WebSocket frames -----

#[tokio::test]
async fn websocket_message_over_max_payload_closes() {
    let (server, mut healthy) = setup_with(SocketIo::builder().max_payload(1000)).await;
    let (mut ws, _, _) = ws_connect(&server).await;
    let big = format!("42[\"echo\",\"{}\"]", "a".repeat(5000));
    ws.send(Message::text(big)).await.unwrap();
    let texts = expect_closed(&mut ws).await;
    assert!(texts.is_empty(), "{texts:?}");
    server.log.wait_for("disconnect / transport error").await;
    healthy_after(&mut healthy).await;
}

#[tokio::test]
async fn invalid_utf8_in_a_text_frame_closes() {
    let (server, mut healthy) = setup().await;
    let (mut ws, _, _) = ws_connect(&server).await;
    let payload = b"42[\"echo\",\"\xff\xfe\"]".to_vec();
    let frame = Frame::from_payload(
        FrameHeader {
            is_final: true,
            opcode: OpCode::Data(OpData::Text),
            ..FrameHeader::default()
        },
        payload.into(),
    );
    ws.send(Message::Frame(frame)).await.unwrap();
    expect_closed(&mut ws).await;
    server.log.wait_for("disconnect / transport error").await;
    healthy_after(&mut healthy).await;
}

#[tokio::test]
async fn unknown_engine_packet_type_over_websocket_is_a_parse_error() {
    let (server, mut healthy) = setup().await;
    let (mut ws, _, _) = ws_connect(&server).await;
    ws.send(Message::text("9")).await.unwrap();
    expect_closed(&mut ws).await;
    server.log.wait_for("disconnect / parse error").await;
    healthy_after(&mut healthy).await;
}

#[tokio::test]
async fn ping_from_a_v4_client_over_websocket_closes() {
    let (server, mut healthy) = setup().await;
    let (mut ws, _, _) = ws_connect(&server).await;
    ws.send(Message::text("2")).await.unwrap();
    expect_closed(&mut ws).await;
    server.log.wait_for("disconnect / transport error").await;
    healthy_after(&mut healthy).await;
}

// ----- Socket.IO packets -----

/// Sends `frames` on a fresh connection joined to `/`, expects the
/// connection closed with "forced close", as the reference's decoder
/// errors and invalid states do.
async fn forced_close(server: &Server, frames: Vec<Message>) {
    let (mut ws, _, _) = ws_connect(server).await;
    for f in frames {
        ws.send(f).await.unwrap();
    }
    let texts = expect_closed(&mut ws).await;
    assert!(
        !texts.iter().any(|t| t.starts_with("42")),
        "no event may be delivered: {texts:?}"
    );
    server.log.wait_for("disconnect / forced close").await;
}

fn text(s: &str) -> Message {
    Message::text(s.to_owned())
}

#[tokio::test]
async fn malformed_socketio_packets_and_json() {
    let (server, mut healthy) = setup().await;
    for bad in [
        "4x",
        "49",
        "42[\"echo\",",
        "42{\"not\":\"an array\"}",
        "42[]",
        "42[{}]",
        "42abc[\"echo\"]",
        "43",
        "40/admin,[1]",
        "41\"data\"",
    ] {
        let before = server.log.lines().len();
        forced_close(&server, vec![text(bad)]).await;
        assert!(server.log.lines().len() > before, "{bad}");
    }
    healthy_after(&mut healthy).await;
}

#[tokio::test]
async fn json_nested_100k_deep_is_refused_without_a_stack_overflow() {
    let (server, mut healthy) = setup().await;
    let depth = 100_000;
    let deep = format!("42[\"echo\",{}{}]", "[".repeat(depth), "]".repeat(depth));
    forced_close(&server, vec![Message::text(deep)]).await;
    let deep_obj = format!(
        "42[\"echo\",{}1{}]",
        "{\"a\":".repeat(depth),
        "}".repeat(depth)
    );
    forced_close(&server, vec![Message::text(deep_obj)]).await;
    healthy_after(&mut healthy).await;
}

#[tokio::test]
async fn an_array_of_a_million_elements_within_max_payload() {
    let (server, mut healthy) = setup_with(SocketIo::builder().max_payload(4_000_000)).await;
    let (mut ws, _, _) = ws_connect(&server).await;
    let items = vec!["0"; 1_000_000].join(",");
    ws.send(Message::text(format!("421[\"count\",[{items}]]")))
        .await
        .unwrap();
    assert_eq!(recv_text(&mut ws).await, "431[1000000]");
    assert_echo(&mut ws, "still open").await;
    healthy_after(&mut healthy).await;
}

#[tokio::test]
async fn placeholder_with_a_bad_num() {
    let (server, mut healthy) = setup().await;
    for header in [
        r#"451-["echo",{"_placeholder":true,"num":5}]"#,
        r#"451-["echo",{"_placeholder":true,"num":-1}]"#,
        r#"451-["echo",{"_placeholder":true,"num":"0"}]"#,
    ] {
        forced_close(
            &server,
            vec![text(header), Message::binary(vec![1u8, 2, 3])],
        )
        .await;
    }
    healthy_after(&mut healthy).await;
}

#[tokio::test]
async fn more_attachments_than_allowed() {
    let (server, mut healthy) = setup().await;
    forced_close(
        &server,
        vec![text(r#"4511-["echo",{"_placeholder":true,"num":0}]"#)],
    )
    .await;
    forced_close(&server, vec![text(r#"4599999999999999999999-["echo"]"#)]).await;
    healthy_after(&mut healthy).await;
}

#[tokio::test]
async fn attachments_that_never_arrive_then_a_text_packet() {
    let (server, mut healthy) = setup().await;
    forced_close(
        &server,
        vec![
            text(r#"452-["echo",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#),
            Message::binary(vec![1u8]),
            text(r#"42["echo","text"]"#),
        ],
    )
    .await;
    healthy_after(&mut healthy).await;
}

#[tokio::test]
async fn binary_with_no_header() {
    let (server, mut healthy) = setup().await;
    forced_close(&server, vec![Message::binary(vec![4u8, 1, 2, 3])]).await;
    healthy_after(&mut healthy).await;
}

#[tokio::test]
async fn packets_for_a_namespace_not_joined() {
    let (server, mut healthy) = setup().await;
    forced_close(&server, vec![text(r#"42/admin,["echo","x"]"#)]).await;
    forced_close(&server, vec![text(r#"43/admin,1[]"#)]).await;
    forced_close(&server, vec![text("41/admin,")]).await;
    healthy_after(&mut healthy).await;
}

#[tokio::test]
async fn a_duplicate_connect_and_a_connect_error_from_the_client() {
    let (server, mut healthy) = setup().await;
    forced_close(&server, vec![text("40")]).await;
    forced_close(&server, vec![text(r#"44{"message":"x"}"#)]).await;
    healthy_after(&mut healthy).await;
}

#[tokio::test]
async fn acks_for_unknown_ids_are_ignored() {
    let (server, mut healthy) = setup().await;
    let (mut ws, _, _) = ws_connect(&server).await;
    ws.send(text("3999[\"nobody asked\"]")).await.unwrap();
    ws.send(text("30[]")).await.unwrap();
    assert_echo(&mut ws, "still open").await;
    assert!(
        !server
            .log
            .lines()
            .iter()
            .any(|l| l.starts_with("disconnect")),
        "{:?}",
        server.log.lines()
    );
    healthy_after(&mut healthy).await;
}

#[tokio::test]
async fn reserved_event_names_from_a_client() {
    let (server, mut healthy) = setup().await;
    for name in [
        "connect",
        "disconnect",
        "connect_error",
        "disconnecting",
        "newListener",
        "removeListener",
    ] {
        forced_close(&server, vec![text(&format!("42[\"{name}\",1]"))]).await;
    }
    healthy_after(&mut healthy).await;
}

// ----- the upgrade -----

#[tokio::test]
async fn a_second_probe_is_answered_again() {
    let (server, mut healthy) = setup().await;
    let sid = polling_connect(server.addr).await;
    let mut ws = ws_open(&server.ws_url(&format!("EIO=4&transport=websocket&sid={sid}")))
        .await
        .unwrap();
    ws.send(text("2probe")).await.unwrap();
    assert_eq!(recv_text(&mut ws).await, "3probe");
    ws.send(text("2probe")).await.unwrap();
    assert_eq!(recv_text(&mut ws).await, "3probe");
    ws.send(text("5")).await.unwrap();
    assert_echo(&mut ws, "upgraded").await;
    healthy_after(&mut healthy).await;
}

#[tokio::test]
async fn other_packets_during_the_probe_close_the_new_transport_only() {
    let (server, mut healthy) = setup().await;
    let sid = polling_connect(server.addr).await;
    let q = format!("EIO=4&transport=polling&sid={sid}");
    let mut ws = ws_open(&server.ws_url(&format!("EIO=4&transport=websocket&sid={sid}")))
        .await
        .unwrap();
    ws.send(text("42[\"echo\",1]")).await.unwrap();
    expect_closed(&mut ws).await;
    // The polling session goes on.
    assert_eq!(post(server.addr, &q, b"42[\"echo\",2]").await.body, "ok");
    assert_eq!(get(server.addr, &q).await.body, "42[\"echo-back\",2]");
    healthy_after(&mut healthy).await;
}

#[tokio::test]
async fn an_upgrade_for_a_session_already_upgraded() {
    let (server, mut healthy) = setup().await;
    let sid = polling_connect(server.addr).await;
    let q = format!("EIO=4&transport=polling&sid={sid}");
    let url = server.ws_url(&format!("EIO=4&transport=websocket&sid={sid}"));
    let mut ws = ws_open(&url).await.unwrap();
    ws.send(text("2probe")).await.unwrap();
    assert_eq!(recv_text(&mut ws).await, "3probe");
    ws.send(text("5")).await.unwrap();
    assert_echo(&mut ws, "upgraded").await;
    // Polling requests no longer belong to the session.
    get(server.addr, &q)
        .await
        .assert_error(400, 3, "Bad request");
    // A second WebSocket for the same session is closed at once.
    let mut second = ws_open(&url).await.unwrap();
    second.send(text("2probe")).await.unwrap();
    let texts = expect_closed(&mut second).await;
    assert!(texts.is_empty(), "{texts:?}");
    // The first one is unaffected.
    assert_echo(&mut ws, "still upgraded").await;
    healthy_after(&mut healthy).await;
}

#[tokio::test]
async fn a_websocket_with_the_sid_of_a_websocket_session() {
    let (server, mut healthy) = setup().await;
    let (mut ws, sid, _) = ws_connect(&server).await;
    let url = server.ws_url(&format!("EIO=4&transport=websocket&sid={sid}"));
    let mut second = ws_open(&url).await.unwrap();
    second.send(text("2probe")).await.unwrap();
    let texts = expect_closed(&mut second).await;
    assert!(texts.is_empty(), "{texts:?}");
    assert_echo(&mut ws, "unaffected").await;
    // With another protocol version: refused before the upgrade.
    let refused = ws_open(&server.ws_url(&format!("EIO=3&transport=websocket&sid={sid}"))).await;
    assert_eq!(refused.err(), Some(400));
    healthy_after(&mut healthy).await;
}

#[tokio::test]
async fn a_second_websocket_while_an_upgrade_is_under_way() {
    let (server, mut healthy) = setup().await;
    let sid = polling_connect(server.addr).await;
    let url = server.ws_url(&format!("EIO=4&transport=websocket&sid={sid}"));
    let mut first = ws_open(&url).await.unwrap();
    first.send(text("2probe")).await.unwrap();
    assert_eq!(recv_text(&mut first).await, "3probe");
    // The session is upgrading: another WebSocket is closed at once.
    let mut second = ws_open(&url).await.unwrap();
    second.send(text("2probe")).await.unwrap();
    let texts = expect_closed(&mut second).await;
    assert!(texts.is_empty(), "{texts:?}");
    // The first upgrade completes.
    first.send(text("5")).await.unwrap();
    assert_echo(&mut first, "upgraded").await;
    healthy_after(&mut healthy).await;
}
