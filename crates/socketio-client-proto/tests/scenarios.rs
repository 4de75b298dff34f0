//! Scenarios of the client against a scripted server, in virtual time.

#![allow(clippy::unwrap_used)]

mod harness;

use std::time::Duration;

use bytes::Bytes;
use harness::{Harness, open_packet};
use serde_json::json;
use socketio_client_proto::{
    AckError, Config, ConnectError, Data, DisconnectReason, EmitError, EmitOptions, Event, Method,
    Transmit, TransportKind, Transports,
};

fn polling() -> Config {
    Config {
        transports: Transports::Polling,
        ..Config::default()
    }
}

fn ack() -> EmitOptions {
    EmitOptions {
        ack: true,
        ..EmitOptions::default()
    }
}

fn auth(v: serde_json::Value) -> Option<serde_json::Map<String, serde_json::Value>> {
    match v {
        serde_json::Value::Object(m) => Some(m),
        _ => None,
    }
}

#[test]
fn handshake_connect_with_auth_events_and_acks_both_ways() {
    let mut h = Harness::new(polling());
    h.client
        .connect(h.now, "/", auth(json!({"token": "abc"})))
        .unwrap();
    h.open_polling("s1", &[]);
    assert!(
        matches!(&h.take_events()[..], [Event::Open { sid, transport: TransportKind::Polling }] if sid == "s1")
    );
    assert_eq!(h.posts(), [r#"40{"token":"abc"}"#]);
    let (get, query, _) = h.take_http(Method::Get);
    assert_eq!(query, "/socket.io/?EIO=4&transport=polling&sid=s1");
    // The answer, then an event asking for an ack, in one poll.
    h.respond(
        get,
        "40{\"sid\":\"sock1\"}\x1e427[\"hello\",1,{\"a\":true}]",
    );
    let events = h.take_events();
    assert!(
        matches!(&events[0], Event::Connect { nsp, sid, recovered: false } if nsp == "/" && sid == "sock1")
    );
    let Event::Message(m) = &events[1] else {
        panic!("{events:?}")
    };
    assert_eq!((m.name.as_str(), m.ack_id), ("hello", Some(7)));
    let (n, obj): (u32, serde_json::Value) = m.args().unwrap();
    assert_eq!((n, obj), (1, json!({"a": true})));
    h.client.ack("/", 7, &("fine",)).unwrap();
    assert_eq!(h.posts(), [r#"437["fine"]"#]);
    // The client's emit with an ack, and the server's answer.
    let id = h.client.emit(h.now, "/", "ask", &(2,), ack()).unwrap();
    assert_eq!(id, Some(0));
    assert_eq!(h.posts(), [r#"420["ask",2]"#]);
    let get = h.take_get();
    h.respond(get, "430[\"answer\"]");
    let events = h.take_events();
    let [
        Event::Ack {
            nsp,
            id: 0,
            result: Ok(data),
        },
    ] = &events[..]
    else {
        panic!("{events:?}")
    };
    assert_eq!((nsp.as_str(), data.json().as_str()), ("/", "[\"answer\"]"));
    // An ack fires once: a second answer with the same id is ignored, as is an unknown id.
    let get = h.take_get();
    h.respond(get, "430[\"again\"]\x1e3999[]");
    assert!(h.take_events().is_empty());
}

#[test]
fn several_namespaces_share_one_connection() {
    let mut h = Harness::new(polling());
    h.client.connect(h.now, "/", None).unwrap();
    h.client
        .connect(h.now, "/admin", auth(json!({"k": 1})))
        .unwrap();
    h.open_polling("s1", &[]);
    assert_eq!(h.posts(), ["40\x1e40/admin,{\"k\":1}"]);
    let get = h.take_get();
    h.respond(
        get,
        "40{\"sid\":\"a\"}\x1e40/admin,{\"sid\":\"b\"}\x1e42/admin,[\"x\"]\x1e42[\"y\"]",
    );
    let events = h.take_events();
    let names: Vec<String> = events
        .iter()
        .filter(|e| !matches!(e, Event::Open { .. }))
        .map(|e| match e {
            Event::Connect { nsp, sid, .. } => format!("connect {nsp} {sid}"),
            Event::Message(m) => format!("{} {}", m.nsp, m.name),
            e => format!("{e:?}"),
        })
        .collect();
    assert_eq!(
        names,
        ["connect / a", "connect /admin b", "/admin x", "/ y"]
    );
    assert_eq!(h.client.socket_id("/admin"), Some("b"));
    // Leaving one namespace keeps the connection.
    h.client.disconnect("/admin");
    assert_eq!(h.posts(), ["41/admin,"]);
    assert!(h.client.is_open());
    let events = h.take_events();
    assert!(matches!(
        &events[..],
        [Event::Disconnect {
            reason: DisconnectReason::IoClientDisconnect,
            ..
        }]
    ));
    // Leaving the last one closes it, with nothing left to reconnect.
    h.client.disconnect("/");
    assert_eq!(h.posts(), ["41\x1e1"]);
    assert!(!h.client.is_open());
    h.advance(Duration::from_secs(60));
    assert!(!h.has_http(Method::Get));
}

#[test]
fn connect_error_with_data_and_no_retry_of_that_namespace() {
    let mut h = Harness::new(polling());
    h.client.connect(h.now, "/", None).unwrap();
    h.client.connect(h.now, "/private", None).unwrap();
    h.open_polling("s1", &[]);
    h.posts();
    let get = h.take_get();
    h.respond(
        get,
        "40{\"sid\":\"a\"}\x1e44/private,{\"message\":\"not authorized\",\"data\":{\"code\":403}}",
    );
    let events = h.take_events();
    let Event::ConnectError {
        nsp,
        error: ConnectError::Refused { message, data },
    } = &events[2]
    else {
        panic!("{events:?}")
    };
    assert_eq!(nsp, "/private");
    assert_eq!(message, "not authorized");
    assert_eq!(data.as_deref(), Some(r#"{"code":403}"#));
    // An emit to the refused namespace is buffered until it is joined again.
    h.client
        .emit(h.now, "/private", "x", &(), EmitOptions::default())
        .unwrap();
    assert!(h.posts().is_empty());
    h.client
        .connect(h.now, "/private", auth(json!({"token": "ok"})))
        .unwrap();
    assert_eq!(h.posts(), [r#"40/private,{"token":"ok"}"#]);
    let get = h.take_get();
    h.respond(get, "40/private,{\"sid\":\"p\"}");
    assert_eq!(h.posts(), [r#"42/private,["x"]"#]);
}

#[test]
fn unknown_namespace_refusal_closes_when_it_was_the_only_socket() {
    let mut h = Harness::new(polling());
    h.client.connect(h.now, "/nope", None).unwrap();
    h.open_polling("s1", &[]);
    h.posts();
    let get = h.take_get();
    h.respond(get, "44/nope,{\"message\":\"Invalid namespace\"}");
    let events = h.take_events();
    assert!(
        matches!(
            &events[..],
            [
                Event::Open { .. },
                Event::ConnectError { .. },
                Event::Close {
                    reason: DisconnectReason::ForcedClose
                }
            ]
        ),
        "{events:?}"
    );
    assert_eq!(h.posts(), ["1"]);
    h.advance(Duration::from_secs(30));
    assert!(h.take_events().is_empty());
}

#[test]
fn pings_are_answered_and_a_silent_server_times_out_then_the_client_reconnects() {
    let mut h = Harness::new(polling());
    h.client.connect(h.now, "/", None).unwrap();
    h.connected("s1", "a");
    // A ping every 25 s keeps the connection.
    for _ in 0..3 {
        h.advance(Duration::from_secs(25));
        let get = h.take_get();
        h.respond(get, "2");
        assert_eq!(h.posts(), ["3"]);
    }
    assert!(h.client.is_open());
    // Silence for pingInterval + pingTimeout.
    h.advance(Duration::from_millis(44_999));
    assert!(h.client.is_open());
    h.advance(Duration::from_millis(1));
    let events = h.take_events();
    assert!(
        matches!(
            &events[..],
            [
                Event::Disconnect {
                    reason: DisconnectReason::PingTimeout,
                    ..
                },
                Event::Close {
                    reason: DisconnectReason::PingTimeout
                },
            ]
        ),
        "{events:?}"
    );
    // The pending poll is given up.
    assert!(
        h.transmits
            .iter()
            .any(|t| matches!(t, Transmit::Cancel { .. }))
    );
    // The first attempt comes 0.5 to 1.5 s later.
    h.advance(Duration::from_millis(499));
    assert!(!h.has_http(Method::Get));
    h.advance(Duration::from_millis(1001));
    let events = h.take_events();
    assert!(
        matches!(&events[..], [Event::ReconnectAttempt { attempt: 1 }]),
        "{events:?}"
    );
    h.open_polling("s2", &[]);
    let events = h.take_events();
    assert!(
        matches!(
            &events[..],
            [Event::Open { .. }, Event::Reconnect { attempt: 1 }]
        ),
        "{events:?}"
    );
    assert_eq!(h.posts(), ["40"]);
}

#[test]
fn reconnection_delays_grow_to_the_maximum_and_attempts_are_bounded() {
    let mut h = Harness::new(Config {
        reconnection_attempts: 5,
        randomization_factor: 0.0,
        ..polling()
    });
    h.client.connect(h.now, "/", None).unwrap();
    let mut delays = Vec::new();
    let mut last = h.now;
    for _ in 0..6 {
        let get = h.take_get();
        if !delays.is_empty() || last != h.now {
            delays.push((h.now - last).as_millis());
        }
        h.client.handle_failure(h.now, get);
        h.pump();
        last = h.now;
        // Step in 100 ms until the next request or the end.
        for _ in 0..100 {
            if h.has_http(Method::Get) {
                break;
            }
            h.advance(Duration::from_millis(100));
        }
        if !h.has_http(Method::Get) {
            break;
        }
    }
    assert_eq!(delays, [1000, 2000, 4000, 5000, 5000]);
    let events = h.take_events();
    let errors = events
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::ConnectError {
                    error: ConnectError::Transport("xhr poll error"),
                    ..
                }
            )
        })
        .count();
    assert_eq!(errors, 6);
    assert!(
        matches!(events.last(), Some(Event::ReconnectFailed)),
        "{events:?}"
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, Event::ReconnectError { .. }))
            .count(),
        5
    );
}

#[test]
fn a_handshake_that_gets_no_answer_times_out() {
    let mut h = Harness::new(Config {
        timeout: Duration::from_secs(3),
        ..polling()
    });
    h.client.connect(h.now, "/", None).unwrap();
    let _lost = h.take_get();
    h.advance(Duration::from_secs(3));
    let events = h.take_events();
    assert!(
        matches!(
            &events[..],
            [Event::ConnectError {
                error: ConnectError::Transport("timeout"),
                ..
            }]
        ),
        "{events:?}"
    );
    assert!(h.client.is_reconnecting());
}

#[test]
fn emits_are_buffered_while_disconnected_and_go_out_after_the_connect_answer() {
    let mut h = Harness::new(polling());
    h.client.connect(h.now, "/", None).unwrap();
    h.client
        .emit(h.now, "/", "first", &(1,), EmitOptions::default())
        .unwrap();
    let v = EmitOptions {
        volatile: true,
        ..EmitOptions::default()
    };
    h.client.emit(h.now, "/", "dropped", &(), v).unwrap();
    h.client.emit(h.now, "/", "second", &(2,), ack()).unwrap();
    h.open_polling("s1", &[]);
    // CONNECT first; the emits wait for its answer.
    assert_eq!(h.posts(), ["40"]);
    let get = h.take_get();
    h.respond(get, "40{\"sid\":\"a\"}");
    assert_eq!(h.posts(), ["42[\"first\",1]\x1e420[\"second\",2]"]);
    assert_eq!(h.client.buffered_bytes(), 0);
    h.take_events();
    // The connection drops: emits wait for the next one; the ack of an emit already sent fails.
    h.client.emit(h.now, "/", "sent", &(), ack()).unwrap();
    assert_eq!(h.posts(), ["421[\"sent\"]"]);
    let get = h.take_get();
    h.respond_status(get, 400, "{\"code\":1,\"message\":\"Session ID unknown\"}");
    let events = h.take_events();
    assert!(
        matches!(
            &events[..],
            [
                Event::Disconnect {
                    reason: DisconnectReason::TransportError,
                    ..
                },
                Event::Ack {
                    id: 0,
                    result: Err(AckError::Disconnected),
                    ..
                },
                Event::Ack {
                    id: 1,
                    result: Err(AckError::Disconnected),
                    ..
                },
                Event::Close { .. },
            ]
        ),
        "{events:?}"
    );
    h.client.emit(h.now, "/", "later", &(), ack()).unwrap();
    assert!(h.client.buffered_bytes() > 0);
    h.advance(Duration::from_secs(2));
    h.open_polling("s2", &[]);
    assert_eq!(h.posts(), ["40"]);
    let get = h.take_get();
    h.respond(get, "40{\"sid\":\"b\"}");
    assert_eq!(h.posts(), ["422[\"later\"]"]);
}

#[test]
fn the_buffer_of_emits_is_bounded() {
    let mut h = Harness::new(Config {
        max_buffered: 1000,
        ..polling()
    });
    h.client.connect(h.now, "/", None).unwrap();
    let big = "x".repeat(400);
    h.client
        .emit(h.now, "/", "a", &(&big,), EmitOptions::default())
        .unwrap();
    h.client
        .emit(h.now, "/", "b", &(&big,), EmitOptions::default())
        .unwrap();
    let third = h
        .client
        .emit(h.now, "/", "c", &(&big,), EmitOptions::default());
    assert!(matches!(third, Err(EmitError::BufferFull)), "{third:?}");
    assert!(matches!(
        h.client
            .emit(h.now, "/", "connect", &(), EmitOptions::default()),
        Err(EmitError::ReservedName(_))
    ));
    assert!(matches!(
        h.client
            .emit(h.now, "/other", "x", &(), EmitOptions::default()),
        Err(EmitError::UnknownNamespace(_))
    ));
}

#[test]
fn ack_timeouts_fire_once_and_a_buffered_emit_that_timed_out_is_not_sent() {
    let mut h = Harness::new(polling());
    h.client.connect(h.now, "/", None).unwrap();
    let t = EmitOptions {
        timeout: Some(Duration::from_secs(1)),
        ..EmitOptions::default()
    };
    // Buffered, then timed out before the connection opens.
    h.client.emit(h.now, "/", "early", &(), t).unwrap();
    h.advance(Duration::from_secs(1));
    let events = h.take_events();
    assert!(
        matches!(
            &events[..],
            [Event::Ack {
                id: 0,
                result: Err(AckError::Timeout),
                ..
            }]
        ),
        "{events:?}"
    );
    h.open_polling("s1", &[]);
    h.posts();
    let get = h.take_get();
    h.respond(get, "40{\"sid\":\"a\"}");
    assert!(h.posts().is_empty(), "the timed-out emit stays unsent");
    h.take_events();
    // Sent, then the answer comes late.
    h.client.emit(h.now, "/", "late", &(), t).unwrap();
    assert_eq!(h.posts(), ["421[\"late\"]"]);
    h.advance(Duration::from_millis(999));
    assert!(h.take_events().is_empty());
    h.advance(Duration::from_millis(1));
    assert!(matches!(
        &h.take_events()[..],
        [Event::Ack {
            id: 1,
            result: Err(AckError::Timeout),
            ..
        }]
    ));
    let get = h.take_get();
    h.respond(get, "431[\"too late\"]");
    assert!(h.take_events().is_empty());
}

#[test]
fn binary_attachments_both_ways() {
    let mut h = Harness::new(polling());
    h.client.connect(h.now, "/", None).unwrap();
    h.connected("s1", "a");
    h.client
        .emit(
            h.now,
            "/",
            "upload",
            &(Bytes::from_static(&[1, 2, 3]),),
            EmitOptions::default(),
        )
        .unwrap();
    assert_eq!(
        h.posts(),
        ["451-[\"upload\",{\"_placeholder\":true,\"num\":0}]\x1ebAQID"]
    );
    let get = h.take_get();
    h.respond(get, "452-[\"file\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]\x1ebBAU=\x1ebBg==");
    let events = h.take_events();
    let [Event::Message(m)] = &events[..] else {
        panic!("{events:?}")
    };
    let (a, b): (Bytes, Bytes) = m.args().unwrap();
    assert_eq!((&a[..], &b[..]), (&[4u8, 5][..], &[6u8][..]));
    // A binary ack.
    h.client.emit(h.now, "/", "q", &(), ack()).unwrap();
    h.posts();
    let get = h.take_get();
    h.respond(get, "461-0[{\"_placeholder\":true,\"num\":0}]\x1ebBw==");
    let events = h.take_events();
    let [
        Event::Ack {
            result: Ok(data), ..
        },
    ] = &events[..]
    else {
        panic!("{events:?}")
    };
    assert_eq!(data.attachments(), [Bytes::from_static(&[7])]);
}

#[test]
fn polling_writes_respect_the_servers_max_payload() {
    let mut h = Harness::new(polling());
    h.client.connect(h.now, "/", None).unwrap();
    let (id, _, _) = h.take_http(Method::Get);
    h.respond(id, &open_packet("s1", &[], 25000, 20000, 30));
    h.posts();
    let get = h.take_get();
    h.respond(get, "40{\"sid\":\"a\"}");
    for i in 0..4 {
        h.client
            .emit(h.now, "/", "ev", &(i,), EmitOptions::default())
            .unwrap();
    }
    let posts = h.posts();
    // 42["ev",0] is 10 bytes: two fit in 30 with their separator, not three.
    assert_eq!(
        posts,
        [
            "42[\"ev\",0]\x1e42[\"ev\",1]",
            "42[\"ev\",2]\x1e42[\"ev\",3]"
        ]
    );
    assert!(posts.iter().all(|p| p.len() <= 30));
}

#[test]
fn upgrade_to_websocket_through_the_probe() {
    let mut h = Harness::new(Config::default());
    h.client.connect(h.now, "/", None).unwrap();
    h.open_polling("s1", &["websocket"]);
    let (ws, query) = h.take_ws_open();
    assert_eq!(query, "/socket.io/?EIO=4&transport=websocket&sid=s1");
    assert_eq!(h.posts(), ["40"]);
    let get = h.take_get();
    h.client.handle_ws_open(h.now, ws);
    assert_eq!(h.frames(ws), ["2probe"]);
    h.ws_text(ws, "3probe");
    // Polling pauses: nothing is written while its GET is in flight.
    h.client
        .emit(h.now, "/", "during", &(), EmitOptions::default())
        .unwrap();
    assert!(h.posts().is_empty());
    assert!(h.frames(ws).is_empty());
    h.respond(get, "40{\"sid\":\"a\"}\x1e6");
    assert_eq!(h.frames(ws), ["5", "42[\"during\"]"]);
    assert!(!h.has_http(Method::Get));
    let events = h.take_events();
    assert!(events.iter().any(|e| matches!(
        e,
        Event::Upgrade {
            transport: TransportKind::WebSocket
        }
    )));
    assert_eq!(h.client.transport(), Some(TransportKind::WebSocket));
    // Everything goes over the WebSocket now, binaries as binary frames.
    h.client
        .emit(
            h.now,
            "/",
            "bin",
            &(Bytes::from_static(b"xy"),),
            EmitOptions::default(),
        )
        .unwrap();
    assert_eq!(
        h.frames(ws),
        ["451-[\"bin\",{\"_placeholder\":true,\"num\":0}]", "<bin:2>"]
    );
    h.ws_text(ws, "2");
    assert_eq!(h.frames(ws), ["3"]);
    h.client.handle_ws_message(
        h.now,
        ws,
        Data::Text("451-[\"b\",{\"_placeholder\":true,\"num\":0}]".into()),
    );
    h.client
        .handle_ws_message(h.now, ws, Data::Binary(Bytes::from_static(b"z")));
    let events = h.take_events();
    assert!(
        matches!(&events[..], [Event::Message(m)] if m.data.attachments() == [Bytes::from_static(b"z")])
    );
    // The WebSocket closing is a disconnection.
    h.client.handle_ws_closed(h.now, ws, false);
    let events = h.take_events();
    assert!(matches!(
        &events[0],
        Event::Disconnect {
            reason: DisconnectReason::TransportClose,
            ..
        }
    ));
    assert!(h.client.is_reconnecting());
}

#[test]
fn a_failed_probe_leaves_the_connection_on_polling() {
    let mut h = Harness::new(Config::default());
    h.client.connect(h.now, "/", None).unwrap();
    h.open_polling("s1", &["websocket"]);
    let (ws, _) = h.take_ws_open();
    h.client.handle_ws_open(h.now, ws);
    h.frames(ws);
    h.ws_text(ws, "3wrong");
    assert!(h.ws_closed_by_client(ws));
    assert_eq!(h.client.transport(), Some(TransportKind::Polling));
    assert_eq!(h.posts(), ["40"]);
    let get = h.take_get();
    h.respond(get, "40{\"sid\":\"a\"}");
    assert!(h.client.is_connected("/"));
    // A probe that cannot even open.
    let mut h = Harness::new(Config::default());
    h.client.connect(h.now, "/", None).unwrap();
    h.open_polling("s1", &["websocket"]);
    let (ws, _) = h.take_ws_open();
    h.client.handle_ws_closed(h.now, ws, true);
    assert!(h.client.is_open());
    assert_eq!(h.client.transport(), Some(TransportKind::Polling));
}

#[test]
fn websocket_only() {
    let mut h = Harness::new(Config {
        transports: Transports::WebSocket,
        ..Config::default()
    });
    h.client.connect(h.now, "/", None).unwrap();
    let (ws, query) = h.take_ws_open();
    assert_eq!(query, "/socket.io/?EIO=4&transport=websocket");
    h.client.handle_ws_open(h.now, ws);
    assert!(h.frames(ws).is_empty());
    h.ws_text(ws, &open_packet("s1", &[], 25000, 20000, 1_000_000));
    assert_eq!(h.frames(ws), ["40"]);
    h.ws_text(ws, "40{\"sid\":\"a\"}");
    assert!(h.client.is_connected("/"));
    // A WebSocket that cannot open is a failed attempt.
    let mut h = Harness::new(Config {
        transports: Transports::WebSocket,
        ..Config::default()
    });
    h.client.connect(h.now, "/", None).unwrap();
    let (ws, _) = h.take_ws_open();
    h.client.handle_ws_closed(h.now, ws, true);
    let events = h.take_events();
    assert!(
        matches!(
            &events[..],
            [Event::ConnectError {
                error: ConnectError::Transport("websocket error"),
                ..
            }]
        ),
        "{events:?}"
    );
}

#[test]
fn connection_state_recovery_sends_pid_and_offset_and_reports_recovered() {
    let mut h = Harness::new(polling());
    h.client
        .connect(h.now, "/", auth(json!({"token": "t"})))
        .unwrap();
    h.open_polling("s1", &[]);
    assert_eq!(h.posts(), [r#"40{"token":"t"}"#]);
    let get = h.take_get();
    h.respond(get, "40{\"sid\":\"a\",\"pid\":\"P1\"}\x1e42[\"m\",1,\"off-1\"]\x1e42[\"m\",2,\"off-2\"]\x1e42[\"volatile\"]");
    assert!(matches!(
        &h.take_events()[1],
        Event::Connect {
            recovered: false,
            ..
        }
    ));
    // The connection is cut.
    let get = h.take_get();
    h.client.handle_failure(h.now, get);
    h.advance(Duration::from_secs(2));
    h.open_polling("s2", &[]);
    // The offset is the last string argument after the event name.
    assert_eq!(
        h.posts(),
        [r#"40{"offset":"off-2","pid":"P1","token":"t"}"#]
    );
    let get = h.take_get();
    h.respond(
        get,
        "40{\"sid\":\"a\",\"pid\":\"P1\"}\x1e42[\"m\",3,\"off-3\"]",
    );
    let events = h.take_events();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Connect { recovered: true, sid, .. } if sid == "a")),
        "{events:?}"
    );
    // A server that lost the session answers with a new pid: not recovered.
    let get = h.take_get();
    h.client.handle_failure(h.now, get);
    h.advance(Duration::from_secs(3));
    h.open_polling("s3", &[]);
    assert_eq!(
        h.posts(),
        [r#"40{"offset":"off-3","pid":"P1","token":"t"}"#]
    );
    let get = h.take_get();
    h.respond(get, "40{\"sid\":\"z\",\"pid\":\"P2\"}");
    let events = h.take_events();
    assert!(
        events.iter().any(|e| matches!(
            e,
            Event::Connect {
                recovered: false,
                ..
            }
        )),
        "{events:?}"
    );
}

#[test]
fn a_server_disconnect_is_final_and_a_close_packet_reconnects() {
    let mut h = Harness::new(polling());
    h.client.connect(h.now, "/", None).unwrap();
    h.connected("s1", "a");
    let get = h.take_get();
    h.respond(get, "1");
    let events = h.take_events();
    assert!(
        matches!(
            &events[0],
            Event::Disconnect {
                reason: DisconnectReason::TransportClose,
                ..
            }
        ),
        "{events:?}"
    );
    h.advance(Duration::from_secs(2));
    h.connected("s2", "b");
    let get = h.take_get();
    h.respond(get, "41");
    let events = h.take_events();
    assert!(
        matches!(
            &events[..],
            [
                Event::Disconnect {
                    reason: DisconnectReason::IoServerDisconnect,
                    ..
                },
                Event::Close {
                    reason: DisconnectReason::ForcedClose
                },
            ]
        ),
        "{events:?}"
    );
    h.advance(Duration::from_secs(30));
    assert!(!h.has_http(Method::Get));
    assert!(!h.client.is_reconnecting());
}

#[test]
fn garbage_from_the_server_closes_with_a_reason_and_the_client_reconnects() {
    let cases: &[(&str, DisconnectReason)] = &[
        ("garbage", DisconnectReason::ParseError),
        ("4{not socket.io", DisconnectReason::ParseError),
        ("42[\"unterminated", DisconnectReason::ParseError),
        ("b!!!", DisconnectReason::ParseError),
        ("40{\"sid\":\"a\"}\x1e\x1e", DisconnectReason::ParseError),
        // An attachment nobody announced.
        ("bAQID", DisconnectReason::ParseError),
        // More attachments than allowed.
        ("4511-[\"x\"]", DisconnectReason::ParseError),
        ("0{\"sid\":\"again\"", DisconnectReason::ParseError),
    ];
    for (body, reason) in cases {
        let mut h = Harness::new(polling());
        h.client.connect(h.now, "/", None).unwrap();
        h.connected("s1", "a");
        let get = h.take_get();
        h.respond(get, body);
        let events = h.take_events();
        assert!(
            events
                .iter()
                .any(|e| matches!(e, Event::Disconnect { reason: r, .. } if r == reason)),
            "{body:?}: {events:?}"
        );
        h.advance(Duration::from_secs(2));
        assert!(h.has_http(Method::Get), "{body:?}: no reconnection");
    }
}

#[test]
fn bad_answers_and_oversized_bodies() {
    // An oversized poll.
    let mut h = Harness::new(Config {
        max_incoming: 100,
        ..polling()
    });
    h.client.connect(h.now, "/", None).unwrap();
    h.connected("s1", "a");
    let get = h.take_get();
    h.respond(get, &format!("42[\"x\",\"{}\"]", "y".repeat(200)));
    let events = h.take_events();
    assert!(
        matches!(
            &events[0],
            Event::Disconnect {
                reason: DisconnectReason::TransportError,
                ..
            }
        ),
        "{events:?}"
    );
    // An oversized WebSocket message.
    let mut h = Harness::new(Config {
        max_incoming: 100,
        transports: Transports::WebSocket,
        ..Config::default()
    });
    h.client.connect(h.now, "/", None).unwrap();
    let (ws, _) = h.take_ws_open();
    h.ws_text(ws, &open_packet("s1", &[], 25000, 20000, 100));
    h.ws_text(ws, "40{\"sid\":\"a\"}");
    h.ws_text(ws, &"4".repeat(101));
    let events = h.take_events();
    assert!(
        events.iter().any(|e| matches!(
            e,
            Event::Disconnect {
                reason: DisconnectReason::TransportError,
                ..
            }
        )),
        "{events:?}"
    );
    assert!(h.ws_closed_by_client(ws));
    // A handshake that is not one, and an HTTP error during the handshake.
    for (status, body) in [(200, "4hello"), (200, "0{}"), (500, "oops"), (200, "")] {
        let mut h = Harness::new(polling());
        h.client.connect(h.now, "/", None).unwrap();
        let get = h.take_get();
        h.respond_status(get, status, body);
        let events = h.take_events();
        assert!(
            matches!(
                &events[..],
                [Event::ConnectError {
                    error: ConnectError::Transport(_),
                    ..
                }]
            ),
            "{body:?}: {events:?}"
        );
        assert!(h.client.is_reconnecting());
    }
    // Packets for a namespace nobody joined, a CONNECT answer without sid.
    let mut h = Harness::new(polling());
    h.client.connect(h.now, "/", None).unwrap();
    h.open_polling("s1", &[]);
    h.posts();
    let get = h.take_get();
    h.respond(get, "42/ghost,[\"x\"]\x1e40/ghost,{\"sid\":\"g\"}\x1e40{}");
    let events = h.take_events();
    assert!(
        matches!(
            &events[..],
            [
                Event::Open { .. },
                Event::ConnectError {
                    error: ConnectError::BadAnswer,
                    ..
                },
                Event::Close { .. }
            ]
        ),
        "{events:?}"
    );
}

#[test]
fn close_sends_disconnects_and_the_close_packet() {
    let mut h = Harness::new(polling());
    h.client.connect(h.now, "/", None).unwrap();
    h.connected("s1", "a");
    h.client.close();
    assert_eq!(h.posts(), ["41\x1e1"]);
    let events = h.take_events();
    assert!(
        matches!(
            &events[..],
            [
                Event::Disconnect {
                    reason: DisconnectReason::IoClientDisconnect,
                    ..
                },
                Event::Close {
                    reason: DisconnectReason::ForcedClose
                },
            ]
        ),
        "{events:?}"
    );
    assert_eq!(h.client.poll_timeout(), None);
}

#[test]
fn events_replayed_before_a_connect_answer_that_never_comes_are_asked_for_again() {
    let mut h = Harness::new(polling());
    h.client.connect(h.now, "/", None).unwrap();
    h.open_polling("s1", &[]);
    h.posts();
    let get = h.take_get();
    h.respond(get, "40{\"sid\":\"a\",\"pid\":\"P\"}\x1e42[\"m\",1,\"o1\"]");
    let get = h.take_get();
    h.client.handle_failure(h.now, get);
    h.advance(Duration::from_secs(2));
    h.open_polling("s2", &[]);
    assert_eq!(h.posts(), [r#"40{"offset":"o1","pid":"P"}"#]);
    h.take_events();
    // The replay starts, and the connection drops before the CONNECT answer.
    let get = h.take_get();
    h.respond(get, "42[\"m\",2,\"o2\"]\x1e42[\"m\",3,\"o3\"]");
    assert!(h.take_events().is_empty());
    let get = h.take_get();
    h.client.handle_failure(h.now, get);
    h.advance(Duration::from_secs(2));
    h.open_polling("s3", &[]);
    // The application never got 2 and 3: the client resumes from 1, and gets them then.
    assert_eq!(h.posts(), [r#"40{"offset":"o1","pid":"P"}"#]);
    let get = h.take_get();
    h.respond(
        get,
        "42[\"m\",2,\"o2\"]\x1e42[\"m\",3,\"o3\"]\x1e40{\"sid\":\"a\",\"pid\":\"P\"}",
    );
    let messages: Vec<String> = h
        .take_events()
        .iter()
        .filter_map(|e| match e {
            Event::Message(m) => Some(m.data.json().to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(messages, [r#"["m",2,"o2"]"#, r#"["m",3,"o3"]"#]);
}

#[test]
fn events_replayed_before_the_connect_answer_are_delivered_with_it() {
    let mut h = Harness::new(polling());
    h.client.connect(h.now, "/", None).unwrap();
    h.open_polling("s1", &[]);
    h.posts();
    let get = h.take_get();
    h.respond(get, "40{\"sid\":\"a\",\"pid\":\"P\"}\x1e42[\"m\",1,\"o1\"]");
    let get = h.take_get();
    h.client.handle_failure(h.now, get);
    h.advance(Duration::from_secs(2));
    h.open_polling("s2", &[]);
    assert_eq!(h.posts(), [r#"40{"offset":"o1","pid":"P"}"#]);
    h.take_events();
    // The reference server replays the missed events before its CONNECT answer.
    let get = h.take_get();
    h.respond(get, "42[\"m\",2,\"o2\"]\x1e42[\"m\",3,\"o3\"]");
    assert!(h.take_events().is_empty());
    let get = h.take_get();
    h.respond(get, "40{\"sid\":\"a\",\"pid\":\"P\"}");
    let events = h.take_events();
    let lines: Vec<String> = events
        .iter()
        .map(|e| match e {
            Event::Message(m) => m.data.json().to_string(),
            Event::Connect { recovered, .. } => format!("connect {recovered}"),
            e => format!("{e:?}"),
        })
        .collect();
    assert_eq!(
        lines,
        [r#"["m",2,"o2"]"#, r#"["m",3,"o3"]"#, "connect true"]
    );
    // The next cut sends the offset of the last replayed event.
    let get = h.take_get();
    h.client.handle_failure(h.now, get);
    h.advance(Duration::from_secs(2));
    h.open_polling("s3", &[]);
    assert_eq!(h.posts(), [r#"40{"offset":"o3","pid":"P"}"#]);
    // What waits for the answer is bounded.
    let mut h = Harness::new(Config {
        max_incoming: 100,
        ..polling()
    });
    h.client.connect(h.now, "/", None).unwrap();
    h.open_polling("s1", &[]);
    h.posts();
    for _ in 0..2 {
        let get = h.take_get();
        h.respond(
            get,
            "42[\"m\",\"012345678901234567890123456789012345678901234\"]",
        );
    }
    let events = h.take_events();
    assert!(
        matches!(
            events.last(),
            Some(Event::Close {
                reason: DisconnectReason::TransportError
            })
        ),
        "{events:?}"
    );
}
