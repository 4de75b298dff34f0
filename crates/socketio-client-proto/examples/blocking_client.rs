//! A Socket.IO client without an async runtime: `std::net`, a thread per HTTP request and per
//! WebSocket reader, tungstenite's blocking WebSocket, and the sans-IO core driven from one loop.
//!
//! It joins `/`, emits `echo` and `ack` (expecting `echo-back` and an acknowledgement with the
//! same arguments, as the test servers of `interop/` answer), prints what it receives, and
//! exits when both came back (and, with both transports, after the upgrade to WebSocket).
//!
//! ```text
//! cargo run -p socketio-client-proto --example blocking_client -- 127.0.0.1:3000 [polling|websocket]
//! ```

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use socketio_client_proto::{
    Client, Config, Data, EmitOptions, Event, Method, RequestId, Str, Transmit, TransportKind,
    Transports,
};
use tungstenite::Message;
use tungstenite::stream::MaybeTlsStream;

/// What the network threads report to the loop.
enum Io {
    Response(RequestId, io::Result<(u16, Vec<u8>)>),
    WsOpen(RequestId, Sender<Data>),
    WsMessage(RequestId, Data),
    WsClosed(RequestId, bool),
}

/// The largest response read.
const MAX_BODY: usize = 16 << 20;

/// One HTTP/1.1 request on a fresh connection; the whole response.
fn http(addr: &str, method: Method, path: &str, body: &[u8]) -> io::Result<(u16, Vec<u8>)> {
    let mut stream = TcpStream::connect(addr)?;
    let method = match method {
        Method::Get => "GET",
        Method::Post => "POST",
    };
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: text/plain;charset=UTF-8\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )?;
    stream.write_all(body)?;
    let mut reader = BufReader::new(stream);
    let mut head = Vec::new();
    loop {
        let mut line = Vec::new();
        if reader.read_until(b'\n', &mut line)? == 0 || head.len() > 64 * 1024 {
            return Err(io::Error::other("bad response head"));
        }
        head.extend_from_slice(&line);
        if line == b"\r\n" {
            break;
        }
    }
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    response.parse(&head).map_err(io::Error::other)?;
    let status = response.code.unwrap_or(0);
    let header = |name: &str| {
        response
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).into_owned())
    };
    let mut body = Vec::new();
    if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size)?;
            let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or(""), 16)
                .map_err(io::Error::other)?;
            if n == 0 || body.len() + n > MAX_BODY {
                break;
            }
            let start = body.len();
            body.resize(start + n, 0);
            reader.read_exact(&mut body[start..])?;
            reader.read_line(&mut String::new())?;
        }
    } else if let Some(len) = header("content-length").and_then(|v| v.trim().parse::<usize>().ok())
    {
        body.resize(len.min(MAX_BODY + 1), 0);
        reader.read_exact(&mut body)?;
    } else {
        reader.take(MAX_BODY as u64 + 1).read_to_end(&mut body)?;
    }
    Ok((status, body))
}

/// Opens a WebSocket, reports it, and reads it until it ends; frames to send come through
/// the channel it reports.
fn websocket(addr: &str, path: &str, id: RequestId, tx: Sender<Io>) {
    let url = format!("ws://{addr}{path}");
    let Ok((mut ws, _)) = tungstenite::connect(url) else {
        let _ = tx.send(Io::WsClosed(id, true));
        return;
    };
    if let MaybeTlsStream::Plain(s) = ws.get_ref() {
        // Reads wake up now and then to write what is queued.
        let _ = s.set_read_timeout(Some(Duration::from_millis(20)));
    }
    let (out_tx, out_rx) = mpsc::channel::<Data>();
    let _ = tx.send(Io::WsOpen(id, out_tx));
    loop {
        loop {
            match out_rx.try_recv() {
                Ok(Data::Text(t)) => {
                    let _ = ws.send(Message::text(t.as_str()));
                }
                Ok(Data::Binary(b)) => {
                    let _ = ws.send(Message::binary(b));
                }
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => {
                    let _ = ws.close(None);
                    let _ = ws.flush();
                    let _ = tx.send(Io::WsClosed(id, false));
                    return;
                }
            }
        }
        match ws.read() {
            Ok(Message::Text(t)) => {
                let Ok(text) = Str::from_utf8(Bytes::from(t)) else {
                    break;
                };
                let _ = tx.send(Io::WsMessage(id, Data::Text(text)));
            }
            Ok(Message::Binary(b)) => {
                let _ = tx.send(Io::WsMessage(id, Data::Binary(b)));
            }
            Ok(Message::Close(_)) => break,
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(_) => {
                let _ = tx.send(Io::WsClosed(id, true));
                return;
            }
        }
    }
    let _ = tx.send(Io::WsClosed(id, false));
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:3000".into());
    let transports = match args.next().as_deref() {
        Some("polling") => Transports::Polling,
        Some("websocket") => Transports::WebSocket,
        _ => Transports::PollingThenWebSocket,
    };
    let config = Config {
        transports,
        ..Config::default()
    };
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut client = Client::new(config, seed);
    let (tx, rx) = mpsc::channel::<Io>();
    let mut sockets: HashMap<RequestId, Sender<Data>> = HashMap::new();
    let start = Instant::now();
    client.connect(Instant::now(), "/", None)?;
    let (mut echoed, mut acked, mut upgraded) =
        (false, false, transports != Transports::PollingThenWebSocket);
    let mut ack_id = None;
    loop {
        // Drain the outputs.
        while let Some(t) = client.poll_transmit() {
            match t {
                Transmit::Http {
                    id,
                    method,
                    path_and_query,
                    body,
                } => {
                    let (tx, addr) = (tx.clone(), addr.clone());
                    thread::spawn(move || {
                        let _ = tx.send(Io::Response(
                            id,
                            http(&addr, method, &path_and_query, &body),
                        ));
                    });
                }
                Transmit::OpenWebSocket { id, path_and_query } => {
                    let (tx, addr) = (tx.clone(), addr.clone());
                    thread::spawn(move || websocket(&addr, &path_and_query, id, tx));
                }
                Transmit::Frame { id, frame } => {
                    if let Some(out) = sockets.get(&id) {
                        let _ = out.send(frame);
                    }
                }
                Transmit::CloseWebSocket { id } => {
                    sockets.remove(&id);
                }
                // The thread finishes on its own; its answer is ignored.
                Transmit::Cancel { .. } => {}
            }
        }
        while let Some(event) = client.poll_event() {
            match &event {
                Event::Connect { nsp, sid, .. } => {
                    println!("connected to {nsp} as {sid}");
                    let now = Instant::now();
                    client.emit(now, "/", "echo", &("hello", 1), EmitOptions::default())?;
                    let ack = EmitOptions {
                        ack: true,
                        timeout: Some(Duration::from_secs(5)),
                        ..EmitOptions::default()
                    };
                    ack_id = client.emit(now, "/", "ack", &("hi", 2), ack)?;
                }
                Event::Message(m) => {
                    println!("event {}: {}", m.name, m.data.json());
                    if m.name == "echo-back"
                        && m.data.json().as_str() == r#"["echo-back","hello",1]"#
                    {
                        echoed = true;
                    }
                }
                Event::Ack { id, result, .. } if Some(*id) == ack_id => {
                    let data = result.as_ref().map_err(|e| format!("ack: {e}"))?;
                    println!("ack: {}", data.json());
                    acked = data.json().as_str() == r#"["hi",2]"#;
                }
                Event::Upgrade { transport } => {
                    println!("upgraded to {}", transport.as_str());
                    upgraded = *transport == TransportKind::WebSocket;
                }
                other => println!("{other:?}"),
            }
        }
        if echoed && acked && upgraded {
            println!("ok");
            client.close();
            while let Some(Transmit::Http {
                method,
                path_and_query,
                body,
                ..
            }) = client.poll_transmit()
            {
                // The close packet, sent before leaving.
                let _ = http(&addr, method, &path_and_query, &body);
            }
            return Ok(());
        }
        if start.elapsed() > Duration::from_secs(20) {
            return Err("no answer in 20 s".into());
        }
        // Wait for the network or the next deadline.
        let wait = client
            .poll_timeout()
            .map_or(Duration::from_millis(500), |t| {
                t.saturating_duration_since(Instant::now())
            });
        let io = match rx.recv_timeout(wait.min(Duration::from_millis(500))) {
            Ok(io) => io,
            Err(RecvTimeoutError::Timeout) => {
                client.handle_timeout(Instant::now());
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => return Err("channel closed".into()),
        };
        let now = Instant::now();
        match io {
            Io::Response(id, Ok((status, body))) => {
                client.handle_response(now, id, status, Bytes::from(body))
            }
            Io::Response(id, Err(_)) => client.handle_failure(now, id),
            Io::WsOpen(id, out) => {
                sockets.insert(id, out);
                client.handle_ws_open(now, id);
            }
            Io::WsMessage(id, data) => client.handle_ws_message(now, id, data),
            Io::WsClosed(id, error) => {
                sockets.remove(&id);
                client.handle_ws_closed(now, id, error);
            }
        }
    }
}
