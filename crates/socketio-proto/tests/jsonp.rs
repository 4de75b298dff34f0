//! JSONP long-polling (`j=`), as the reference serves it: every poll is
//! answered `___eio[<j>]("<payload>");`, every POST is a form whose `d` field
//! holds the payload with the client's newline escapes.

mod harness;

use bytes::Bytes;
use harness::{Harness, sid_of};
use socketio_proto::{Config, ContentType, Packet, Request, Response, Str, TransportKind};

fn config() -> Config {
    Config::default().with_eio3(true)
}

/// The payload inside a JSONP answer with callback index `index`, read back
/// as a JavaScript engine would (the string literal is JSON).
fn unwrap(index: &str, response: &Response) -> String {
    assert_eq!(response.status, 200);
    assert_eq!(response.content_type, ContentType::Javascript);
    let text = response.body_text();
    let inner = text
        .strip_prefix(&format!("___eio[{index}]("))
        .and_then(|t| t.strip_suffix(");"))
        .unwrap_or_else(|| panic!("not a JSONP answer: {text}"));
    serde_json::from_str(inner).unwrap_or_else(|e| panic!("not a string literal ({e}): {text}"))
}

/// A payload as the 2.x client's JSONP transport posts it: each `\n` it
/// means literally (a backslash and an `n`) as `\\n`, each newline as `\n`,
/// then the form's percent-encoding.
fn client_form(payload: &str) -> String {
    let escaped = payload.replace("\\n", "\\\n").replace('\n', "\\n");
    let mut form = String::from("d=");
    for b in escaped.bytes() {
        if b.is_ascii_alphanumeric() {
            form.push(b as char);
        } else {
            form.push_str(&format!("%{b:02X}"));
        }
    }
    form
}

/// A v3 text payload of one packet: `<length in UTF-16 code units>:<packet>`.
fn v3(packet: &str) -> String {
    format!("{}:{packet}", packet.encode_utf16().count())
}

/// Opens an EIO3 JSONP session with the handshake query `query`, which has
/// a `j`; returns its sid.
fn open(h: &mut Harness, query: &str) -> String {
    let id = h.request(Request::get(&format!(
        "/socket.io/?EIO=3&transport=polling&{query}"
    )));
    let open = h.answer(id).expect("the handshake is answered");
    let j = socketio_proto::http::query_param(query, "j").expect("a `j` parameter");
    let payload = unwrap(&socketio_proto::jsonp::callback_index(&j), &open);
    let (len, packet) = payload.split_once(':').expect("a v3 payload");
    assert_eq!(
        len.parse::<usize>().ok(),
        Some(packet.encode_utf16().count())
    );
    assert!(packet.starts_with("0{\"sid\":"), "{packet}");
    sid_of(packet)
}

fn path(sid: &str) -> String {
    format!("/socket.io/?EIO=3&transport=polling&j=0&sid={sid}")
}

fn poll(h: &mut Harness, sid: &str) -> Response {
    let id = h.request(Request::get(&path(sid)));
    h.answer(id).expect("the poll is answered")
}

fn post_form(h: &mut Harness, sid: &str, form: &str) -> Response {
    let mut req = Request::post(&path(sid), form.to_owned());
    req.content_type = Some("application/x-www-form-urlencoded".to_owned());
    let id = h.request(req);
    h.answer(id).expect("the POST is answered")
}

#[test]
fn a_jsonp_session_polls_and_posts() {
    let mut h = Harness::new(config());
    let sid = open(&mut h, "j=0&b64=1");
    // Socket.IO v4: the server joins `/` by itself.
    assert_eq!(unwrap("0", &poll(&mut h, &sid)), "2:40");
    h.take_events();
    // The client pings through the form; the server answers on the next poll.
    let r = post_form(&mut h, &sid, &client_form("1:2"));
    assert_eq!((r.status, r.body_text()), (200, "ok".to_owned()));
    assert_eq!(unwrap("0", &poll(&mut h, &sid)), "1:3");
    // An event with a newline in a string and a literal `\n`.
    let json = r#"["say","line\nbreak","not a \\n newline"]"#;
    let r = post_form(&mut h, &sid, &client_form(&v3(&format!("42{json}"))));
    assert_eq!(r.body_text(), "ok");
    assert_eq!(h.event_names(), [format!("message / {json} None")]);
}

#[test]
fn the_answer_escapes_what_could_end_the_script_string() {
    let mut h = Harness::new(config());
    let sid = open(&mut h, "j=0&b64=1");
    poll(&mut h, &sid);
    let text = "</script><script>alert(1)</script>\"'\u{2028}\u{2029}\n\\";
    let packet = Packet::event(Str::from("/"), "echo", &(text,), None).expect("encodes");
    h.conn(&sid).emit(&packet, false).expect("sent");
    let response = poll(&mut h, &sid);
    let packet = r#"42["echo","</script><script>alert(1)</script>\"'"#.to_owned()
        + "\u{2028}\u{2029}"
        + r#"\n\\"]"#;
    // The reference's escaping, character for character: JSON.stringify's
    // (quotes, backslashes, control characters), then U+2028 and U+2029.
    // `</script>` stays: the answer is a script's source, not HTML.
    let expected = format!(
        r#"___eio[0]("{}:42[\"echo\",\"</script><script>alert(1)</script>\\\"'\u2028\u2029\\n\\\\\"]");"#,
        packet.encode_utf16().count()
    );
    assert_eq!(response.body_text(), expected);
    // Read as a script, the string is the payload, and the event's
    // argument is the text sent.
    assert_eq!(unwrap("0", &response), v3(&packet));
    let args: (String, String) = serde_json::from_str(&packet[2..]).expect("an event");
    assert_eq!(args.1, text);
}

#[test]
fn a_message_full_of_script_syntax_goes_both_ways_unchanged() {
    let mut h = Harness::new(config());
    let sid = open(&mut h, "j=3&b64=1");
    h.take_events();
    let text = "</script>\"'\u{2028}\u{2029}\\n\n\r\t`${x}`";
    let json = serde_json::to_string(&("say", text)).expect("json");
    let r = post_form(&mut h, &sid, &client_form(&v3(&format!("42{json}"))));
    assert_eq!(r.body_text(), "ok");
    let names = h.event_names();
    let data = names[0].strip_prefix("message / ").expect("a message");
    let args: (String, String) =
        serde_json::from_str(data.strip_suffix(" None").expect("no ack")).expect("the arguments");
    assert_eq!(args, ("say".to_owned(), text.to_owned()));
}

#[test]
fn the_callback_index_is_the_digits_of_the_handshakes_j() {
    let mut h = Harness::new(config());
    let id = h.request(Request::get(
        "/socket.io/?EIO=3&transport=polling&b64=1&j=1%29%3Balert(2)%2F%2F5",
    ));
    let open = h.answer(id).expect("answered");
    assert!(open.body_text().starts_with("___eio[125](\""), "{open:?}");
    let sid = sid_of(&unwrap("125", &open)[4..]);
    // Later requests' `j` changes nothing: the session's transport keeps it.
    let id = h.request(Request::get(&format!(
        "/socket.io/?EIO=3&transport=polling&j=9&sid={sid}"
    )));
    assert_eq!(unwrap("125", &h.answer(id).expect("answered")), "2:40");
}

#[test]
fn binary_goes_as_base64_even_without_b64() {
    let mut h = Harness::new(config());
    let sid = open(&mut h, "j=0");
    poll(&mut h, &sid);
    let packet = Packet::event(
        Str::from("/"),
        "bin",
        &(Bytes::from_static(&[1, 2, 3]),),
        None,
    )
    .expect("encodes");
    h.conn(&sid).emit(&packet, false).expect("sent");
    let header = r#"451-["bin",{"_placeholder":true,"num":0}]"#;
    assert_eq!(
        unwrap("0", &poll(&mut h, &sid)),
        format!("{}{}", v3(header), "6:b4AQID")
    );
}

#[test]
fn a_form_without_one_d_field_is_answered_ok_and_ignored() {
    let mut h = Harness::new(config());
    let sid = open(&mut h, "j=0&b64=1");
    h.take_events();
    for form in ["", "x=1", "d=1:2&d=1:2"] {
        let r = post_form(&mut h, &sid, form);
        assert_eq!(
            (r.status, r.body_text()),
            (200, "ok".to_owned()),
            "{form:?}"
        );
    }
    assert!(h.event_names().is_empty());
    assert!(!h.conn(&sid).is_closed());
}

#[test]
fn a_bad_payload_in_the_form_closes_the_session() {
    let mut h = Harness::new(config());
    let sid = open(&mut h, "j=0&b64=1");
    h.take_events();
    let r = post_form(&mut h, &sid, "d=9%3A42");
    assert_eq!(r.status, 400);
    assert!(h.event_names().contains(&"closed parse error".to_owned()));
}

#[test]
fn errors_are_not_wrapped() {
    let mut h = Harness::new(config());
    let id = h.request(Request::get(
        "/socket.io/?EIO=3&transport=polling&j=0&sid=nope",
    ));
    let r = h.answer(id).expect("answered");
    assert_eq!(r.status, 400);
    assert_eq!(r.content_type, ContentType::Json);
    assert_eq!(
        r.body_text(),
        r#"{"code":1,"message":"Session ID unknown"}"#
    );
}

#[test]
fn a_jsonp_session_upgrades_to_websocket() {
    let mut h = Harness::new(config());
    let sid = open(&mut h, "j=0&b64=1");
    assert_eq!(unwrap("0", &poll(&mut h, &sid)), "2:40");
    let ws = h.request(Request::websocket(&format!(
        "/socket.io/?EIO=3&transport=websocket&sid={sid}"
    )));
    let get = h.request(Request::get(&path(&sid)));
    h.ws_text(&sid, ws, "2probe");
    assert_eq!(h.text_frames(ws), ["3probe"]);
    // The pending poll returns a noop, wrapped.
    assert_eq!(unwrap("0", &h.answer(get).expect("answered")), "1:6");
    h.ws_text(&sid, ws, "5");
    assert_eq!(h.conn(&sid).transport(), TransportKind::WebSocket);
}

#[test]
fn without_old_clients_allowed_a_j_parameter_is_ordinary_polling() {
    let mut h = Harness::new(Config::default());
    let id = h.request(Request::get("/socket.io/?EIO=4&transport=polling&j=2"));
    let body = h.answer(id).expect("answered").body_text();
    assert!(body.starts_with("0{\"sid\":"), "{body}");
}

#[test]
fn eio4_clients_get_jsonp_too() {
    let mut h = Harness::new(config());
    let id = h.request(Request::get("/socket.io/?EIO=4&transport=polling&j=2"));
    let payload = unwrap("2", &h.answer(id).expect("answered"));
    let sid = sid_of(&payload);
    let form = |h: &mut Harness, d: &str| {
        let mut req = Request::post(
            &format!("/socket.io/?EIO=4&transport=polling&j=2&sid={sid}"),
            format!("d={d}"),
        );
        req.content_type = Some("application/x-www-form-urlencoded".to_owned());
        let id = h.request(req);
        h.body(id)
    };
    assert_eq!(form(&mut h, "40"), "ok");
    assert_eq!(form(&mut h, "42%5B%22a%22%5D%1E42%5B%22b%22%5D"), "ok");
    let packet = Packet::event(Str::from("/"), "hello", &(), None).expect("encodes");
    h.conn(&sid).emit(&packet, false).expect("sent");
    let id = h.request(Request::get(&format!(
        "/socket.io/?EIO=4&transport=polling&j=2&sid={sid}"
    )));
    let body = h.answer(id).expect("answered").body_text();
    // The record separator is a control character: `\u001e` in the literal.
    assert!(body.starts_with(r#"___eio[2]("40{\"sid\":"#), "{body}");
    assert!(body.ends_with(r#"\u001e42[\"hello\"]");"#), "{body}");
    assert!(!body.contains('\u{1e}'), "{body}");
    let names = h.event_names();
    assert!(
        names.iter().any(|e| e == r#"message / ["a"] None"#),
        "{names:?}"
    );
    assert!(
        names.iter().any(|e| e == r#"message / ["b"] None"#),
        "{names:?}"
    );
}
