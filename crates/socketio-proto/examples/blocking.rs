//! A Socket.IO server without an async runtime: `std::net`, one thread per
//! TCP connection, tungstenite's blocking WebSocket, and the sans-IO core.
//!
//! It answers an event `message` with `message-back` (same arguments) and
//! acknowledges an event that asks for it with its own arguments; the
//! namespaces are `/` and `/admin`.
//!
//! ```text
//! cargo run -p socketio-proto --example blocking -- 127.0.0.1:3000
//! ```

use std::collections::{HashMap, VecDeque};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use socketio_proto::{
    Config, Connection, ConnectionHandle, Data, Endpoint, Event, Method, Packet, PacketKind,
    Payload, Request, RequestId, Response, Route, Str, Transmit,
};
use tungstenite::Message;
use tungstenite::protocol::{Role, WebSocket};

/// Everything shared between the threads, behind one lock.
struct Server {
    endpoint: Endpoint,
    conns: HashMap<ConnectionHandle, Box<Connection>>,
    /// Which connection a request or WebSocket went to.
    owners: HashMap<RequestId, ConnectionHandle>,
    responses: HashMap<RequestId, Response>,
    transmits: HashMap<RequestId, VecDeque<Transmit>>,
    next_id: u64,
}

struct Shared {
    server: Mutex<Server>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Server> {
        self.server.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Server {
    /// Drains every connection's output; runs the application.
    fn pump(&mut self) {
        let handles: Vec<ConnectionHandle> = self.conns.keys().copied().collect();
        for h in handles {
            let Some(conn) = self.conns.get_mut(&h) else {
                continue;
            };
            loop {
                let mut progress = false;
                while let Some((id, r)) = conn.poll_response() {
                    self.responses.insert(id, r);
                    progress = true;
                }
                while let Some(t) = conn.poll_transmit() {
                    let ws = match &t {
                        Transmit::Frame { transport, .. } | Transmit::Close { transport } => {
                            *transport
                        }
                    };
                    self.transmits.entry(ws).or_default().push_back(t);
                    progress = true;
                }
                while let Some(ev) = conn.poll_endpoint_event() {
                    self.endpoint.handle_event(Instant::now(), h, ev);
                    progress = true;
                }
                while let Some(ev) = conn.poll_event() {
                    progress = true;
                    app(&self.endpoint, conn, ev);
                }
                if !progress {
                    break;
                }
            }
            if conn.is_closed() {
                self.conns.remove(&h);
                self.owners.retain(|_, o| *o != h);
            }
        }
    }
}

/// The application: accept known namespaces, echo `message`, answer acks.
fn app(endpoint: &Endpoint, conn: &mut Connection, ev: Event) {
    match ev {
        Event::ConnectRequest { nsp, .. } => {
            if endpoint.has_namespace(&nsp) {
                let _ = conn.accept(&nsp);
            } else {
                let _ = conn.reject(&nsp, "Invalid namespace", None);
            }
        }
        Event::Message(m) => {
            // The arguments after the event name, as raw JSON: placeholders
            // stay as they are and the attachments go back with them.
            let Some(args) = raw_args(m.data.json()) else {
                return;
            };
            let attachments = m.data.attachments().to_vec();
            if let Some(id) = m.ack_id {
                if let Ok(data) = Payload::from_json(Str::from(format!("[{args}]")), attachments) {
                    let _ = conn.ack(&m.nsp, id, data);
                }
            } else if &*m.name == "message" {
                let comma = if args.is_empty() { "" } else { "," };
                let json = format!("[\"message-back\"{comma}{args}]");
                if let Ok(data) = Payload::from_json(Str::from(json), attachments) {
                    let back = Packet {
                        nsp: m.nsp.clone(),
                        kind: PacketKind::Event {
                            name: Str::from_static("message-back"),
                            data,
                            id: None,
                        },
                    };
                    let _ = conn.emit(&back, false);
                }
            }
        }
        _ => {}
    }
}

/// `a,b,...` for an event array `["name",a,b,...]`.
fn raw_args(json: &str) -> Option<String> {
    let items: Vec<&serde_json::value::RawValue> = serde_json::from_str(json).ok()?;
    Some(
        items
            .iter()
            .skip(1)
            .map(|v| v.get())
            .collect::<Vec<_>>()
            .join(","),
    )
}

fn main() -> io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3000".into());
    let listener = TcpListener::bind(&addr)?;
    println!("listening on {}", listener.local_addr()?);
    let mut endpoint = Endpoint::new(Config::default()).map_err(io::Error::other)?;
    endpoint.add_namespace("/admin");
    let shared = Arc::new(Shared {
        server: Mutex::new(Server {
            endpoint,
            conns: HashMap::new(),
            owners: HashMap::new(),
            responses: HashMap::new(),
            transmits: HashMap::new(),
            next_id: 0,
        }),
        changed: Condvar::new(),
    });
    // The clock: fire due timers.
    let clock = shared.clone();
    thread::spawn(move || {
        loop {
            thread::sleep(Duration::from_millis(10));
            let now = Instant::now();
            let mut server = clock.lock();
            let mut fired = false;
            for conn in server.conns.values_mut() {
                if conn.poll_timeout().is_some_and(|t| t <= now) {
                    conn.handle_timeout(now);
                    fired = true;
                }
            }
            if fired {
                server.pump();
                clock.changed.notify_all();
            }
        }
    });
    for stream in listener.incoming() {
        let stream = stream?;
        let shared = shared.clone();
        thread::spawn(move || {
            if let Err(e) = serve(shared, stream) {
                eprintln!("connection: {e}");
            }
        });
    }
    Ok(())
}

/// Serves one TCP connection: HTTP requests until it closes or upgrades.
fn serve(shared: Arc<Shared>, stream: TcpStream) -> io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    loop {
        let Some((req, ws_key)) = read_request(&mut reader)? else {
            return Ok(());
        };
        let mut server = shared.lock();
        server.next_id += 1;
        let id = RequestId(server.next_id);
        let now = Instant::now();
        let websocket = req.websocket;
        let route = server.endpoint.handle_request(now, id, &req);
        let handle = match route {
            Route::Respond(r) => {
                drop(server);
                if websocket {
                    (&stream)
                        .write_all(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")?;
                    return Ok(());
                }
                write_response(&stream, &r)?;
                continue;
            }
            Route::New(h, conn) => {
                server.conns.insert(h, conn);
                h
            }
            Route::Existing(h) => {
                if let Some(conn) = server.conns.get_mut(&h) {
                    conn.handle_request(now, id, req);
                }
                h
            }
        };
        server.owners.insert(id, handle);
        server.pump();
        shared.changed.notify_all();
        if websocket {
            drop(server);
            let key = ws_key.unwrap_or_default();
            let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
            write!(
                &stream,
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
            )?;
            return serve_websocket(shared, stream, id, handle);
        }
        // Wait for the answer: at once, or when the held poll is answered.
        let response = loop {
            if let Some(r) = server.responses.remove(&id) {
                break r;
            }
            let (guard, _) = shared
                .changed
                .wait_timeout(server, Duration::from_millis(100))
                .unwrap_or_else(|e| e.into_inner());
            server = guard;
        };
        server.owners.remove(&id);
        drop(server);
        write_response(&stream, &response)?;
    }
}

fn serve_websocket(
    shared: Arc<Shared>,
    stream: TcpStream,
    id: RequestId,
    handle: ConnectionHandle,
) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_millis(5)))?;
    let mut ws = WebSocket::from_raw_socket(stream, Role::Server, None);
    loop {
        // Write what the core queued for this WebSocket.
        let queued: Vec<Transmit> = shared
            .lock()
            .transmits
            .remove(&id)
            .map(Vec::from)
            .unwrap_or_default();
        for t in queued {
            match t {
                Transmit::Frame { frame, .. } => {
                    let msg = match frame {
                        Data::Text(s) => Message::text(s.to_string()),
                        Data::Binary(b) => Message::binary(b),
                    };
                    ws.write(msg).map_err(io::Error::other)?;
                }
                Transmit::Close { .. } => {
                    let _ = ws.close(None);
                    let _ = ws.flush();
                    return Ok(());
                }
            }
        }
        ws.flush().map_err(io::Error::other)?;
        let frame = match ws.read() {
            Ok(Message::Text(t)) => Some(Data::Text(Str::from(t.as_str().to_owned()))),
            Ok(Message::Binary(b)) => Some(Data::Binary(b)),
            Ok(_) => None,
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                None
            }
            Err(_) => {
                let mut server = shared.lock();
                if let Some(conn) = server.conns.get_mut(&handle) {
                    conn.handle_transport_closed(Instant::now(), id, false);
                }
                server.pump();
                return Ok(());
            }
        };
        if let Some(frame) = frame {
            let mut server = shared.lock();
            if let Some(conn) = server.conns.get_mut(&handle) {
                conn.handle_frame(Instant::now(), id, frame);
            }
            server.pump();
            shared.changed.notify_all();
        }
    }
}

/// Reads one HTTP/1.1 request: head, then a body of `Content-Length` bytes.
fn read_request(
    reader: &mut BufReader<TcpStream>,
) -> io::Result<Option<(Request, Option<String>)>> {
    let mut head = Vec::new();
    loop {
        let n = reader.read_until(b'\n', &mut head)?;
        if n == 0 {
            return Ok(None);
        }
        if head.ends_with(b"\r\n\r\n") {
            break;
        }
        if head.len() > 16 * 1024 {
            return Err(io::Error::other("request head too large"));
        }
    }
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut parsed = httparse::Request::new(&mut headers);
    parsed.parse(&head).map_err(io::Error::other)?;
    let header = |name: &str| {
        parsed
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).into_owned())
    };
    let length: usize = header("content-length")
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    if length > 2_000_000 {
        return Err(io::Error::other("body too large"));
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let mut req = Request::new(
        Method::from_name(parsed.method.unwrap_or("")),
        parsed.path.unwrap_or("/"),
        body.into(),
    );
    req.content_type = header("content-type");
    req.websocket = header("upgrade").is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
    Ok(Some((req, header("sec-websocket-key"))))
}

fn write_response(mut stream: &TcpStream, r: &Response) -> io::Result<()> {
    let reason = match r.status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        413 => "Payload Too Large",
        _ => "",
    };
    write!(
        stream,
        "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nAccess-Control-Allow-Origin: *\r\n\r\n",
        r.status,
        r.content_type.as_str(),
        r.body.len()
    )?;
    stream.write_all(&r.body)?;
    stream.flush()
}
