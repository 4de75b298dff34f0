//! The chat server: the page and its assets, the Socket.IO endpoint, and the
//! rooms (members and the last messages), all in memory.
//!
//! The event contract is described in `README.md` beside this file.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use socketio_tokio::{
    AckSender, Data, EventContext, Handler, HttpServer, Recovery, Socket, SocketIo, State, TryData,
};
use tokio::net::TcpListener;

/// The longest name or room, in characters.
pub(crate) const MAX_NAME: usize = 64;
/// The longest message text, in characters.
pub(crate) const MAX_TEXT: usize = 2000;
/// How many messages a room keeps and a joiner gets.
pub(crate) const HISTORY: usize = 50;
/// How many rooms one socket may be in at once.
pub(crate) const MAX_ROOMS_PER_SOCKET: usize = 32;
/// The shortest time between two `typing` events a socket sends to a room;
/// quicker ones are dropped.
pub(crate) const TYPING_EVERY: Duration = Duration::from_secs(1);
/// How many rooms the server remembers; past that, the empty room that was
/// quiet the longest is forgotten (with its history).
pub(crate) const MAX_ROOMS: usize = 1000;

const INDEX_HTML: &str = include_str!("static/index.html");
const APP_JS: &str = include_str!("static/app.js");
const STYLE_CSS: &str = include_str!("static/style.css");

/// Where the official browser client is, in the workspace's `interop`
/// folder (installed by `npm ci --prefix interop`).
pub(crate) fn default_client_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../interop/node_modules/socket.io-client/dist/socket.io.min.js")
}

/// Where the Admin UI's files are, in the workspace's `interop` folder
/// (installed by `npm ci --prefix interop`).
pub(crate) fn default_admin_ui_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../interop/node_modules/@socket.io/admin-ui/ui/dist")
}

/// Instruments `io` for the Admin UI (namespace `/admin`, user `admin`,
/// the password hashed here with bcrypt), as the server `server_id` in
/// the UI; the UI's files from `ui_dir`, served at `/admin/`.
pub(crate) fn admin(
    io: &SocketIo,
    password: &str,
    server_id: String,
    ui_dir: &Path,
) -> Result<socketio_admin::UiService, String> {
    let mut ui = socketio_admin::UiService::new(ui_dir);
    // The icon font the UI would load from a CDN, when it is installed.
    let icons = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../interop/node_modules/@mdi/font");
    if icons.join("css").is_dir() {
        ui = ui.with_icons(icons);
    }
    if !ui.is_installed() {
        return Err(format!(
            "the Admin UI is missing at {}\n\
             Install it with `npm ci --prefix interop` at the workspace root \
             (or pass its path with --admin-ui).",
            ui_dir.display()
        ));
    }
    let hash = socketio_admin::bcrypt::hash(password, socketio_admin::bcrypt::DEFAULT_COST)
        .map_err(|e| format!("cannot hash the admin password: {e}"))?;
    let options = socketio_admin::AdminOptions::new(socketio_admin::Auth::basic("admin", hash))
        .server_id(server_id);
    socketio_admin::instrument(io, options).map_err(|e| e.to_string())?;
    Ok(ui)
}

/// The routes of the Admin UI's files, at `/admin/`.
pub(crate) fn admin_routes(ui: socketio_admin::UiService) -> Router {
    Router::new()
        .route_service("/admin", ui.clone())
        .route_service("/admin/", ui.clone())
        .route_service("/admin/{*file}", ui)
}

/// Reads the browser client, or says how to install it.
pub(crate) fn load_client(path: &Path) -> Result<Bytes, String> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Bytes::from(bytes)),
        Err(e) => Err(format!(
            "cannot read the Socket.IO browser client at {}: {e}\n\
             Install it with `npm ci --prefix interop` at the workspace root \
             (or pass its path with --client).",
            path.display()
        )),
    }
}

/// A message as it is broadcast and kept in a room's history.
#[derive(Debug, Clone, Serialize)]
struct ChatMessage {
    id: String,
    room: String,
    name: String,
    text: String,
    ts: u64,
}

#[derive(Debug, Deserialize)]
struct JoinRequest {
    room: String,
    name: String,
}

#[derive(Debug, Deserialize)]
struct RoomRequest {
    room: String,
}

#[derive(Debug, Deserialize)]
struct MessageRequest {
    room: String,
    text: String,
}

#[derive(Debug)]
struct Member {
    sid: String,
    /// The socket's name in this room.
    name: String,
    last_typing: Option<Instant>,
}

#[derive(Debug, Default)]
struct Room {
    /// In joining order.
    members: Vec<Member>,
    history: VecDeque<ChatMessage>,
    /// When the room last saw a join or a message (a logical clock).
    last_active: u64,
}

impl Room {
    fn member(&mut self, sid: &str) -> Option<&mut Member> {
        self.members.iter_mut().find(|m| m.sid == sid)
    }

    /// Removes a member; returns its name.
    fn remove(&mut self, sid: &str) -> Option<String> {
        let pos = self.members.iter().position(|m| m.sid == sid)?;
        Some(self.members.remove(pos).name)
    }

    fn names(&self) -> Vec<&str> {
        self.members.iter().map(|m| m.name.as_str()).collect()
    }
}

/// The rooms and who is in them.
#[derive(Debug, Default)]
struct Inner {
    rooms: HashMap<String, Room>,
    /// The rooms each socket is in.
    sockets: HashMap<String, Vec<String>>,
    next_id: u64,
    clock: u64,
}

impl Inner {
    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    /// The room, created if needed (forgetting the quietest empty room when
    /// the server remembers too many).
    fn room_mut(&mut self, name: &str) -> Result<&mut Room, &'static str> {
        if !self.rooms.contains_key(name) {
            if self.rooms.len() >= MAX_ROOMS {
                let quietest = self
                    .rooms
                    .iter()
                    .filter(|(_, r)| r.members.is_empty())
                    .min_by_key(|(_, r)| r.last_active)
                    .map(|(n, _)| n.clone());
                match quietest {
                    Some(n) => {
                        self.rooms.remove(&n);
                    }
                    None => return Err("too many rooms on this server"),
                }
            }
            self.rooms.insert(name.to_owned(), Room::default());
        }
        self.rooms.get_mut(name).ok_or("no such room")
    }
}

/// The chat: its rooms, shared by every socket's handlers.
#[derive(Clone)]
pub(crate) struct Chat {
    state: Arc<Mutex<Inner>>,
    /// Makes message ids unique across restarts of the server.
    boot: String,
}

/// The Socket.IO room of a chat room (prefixed, so that a chat room never
/// shares a name with a socket's own room).
fn io_room(room: &str) -> String {
    format!("room:{room}")
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Checks a name or a room: trimmed, not empty, at most [`MAX_NAME`]
/// characters, no control characters.
fn check_label(what: &str, value: &str) -> Result<String, String> {
    let value = value.trim();
    if value.is_empty() {
        return Err(format!("{what} must not be empty"));
    }
    if value.chars().count() > MAX_NAME {
        return Err(format!("{what} is longer than {MAX_NAME} characters"));
    }
    if value.chars().any(char::is_control) {
        return Err(format!("{what} must not contain control characters"));
    }
    Ok(value.to_owned())
}

/// Checks a message text: not blank, at most [`MAX_TEXT`] characters.
fn check_text(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("text must not be empty".to_owned());
    }
    if text.chars().count() > MAX_TEXT {
        return Err(format!("text is longer than {MAX_TEXT} characters"));
    }
    Ok(text.to_owned())
}

/// The answer to an acknowledged request: `{ok: true, ...}` or
/// `{ok: false, error}`.
type Answer = Result<Value, String>;

/// The handler of an acknowledged request: its payload as `T` (or a refusal
/// that names the shape expected), handled by `run`, whose answer is the
/// acknowledgement.
fn request<T: DeserializeOwned + Send + 'static>(
    shape: &'static str,
    run: fn(&Chat, &Socket, T) -> Answer,
) -> impl Handler<EventContext, (Socket, State<Chat>, TryData<T>, AckSender)> {
    move |socket: Socket, State(chat): State<Chat>, TryData(req): TryData<T>, ack: AckSender| async move {
        let answer = match req {
            Ok(req) => run(&chat, &socket, req),
            Err(_) => Err(format!("invalid payload: expected {shape}")),
        };
        let answer = match answer {
            Ok(Value::Object(mut fields)) => {
                fields.insert("ok".to_owned(), Value::Bool(true));
                Value::Object(fields)
            }
            Ok(_) => json!({ "ok": true }),
            Err(error) => json!({ "ok": false, "error": error }),
        };
        ack.send(&answer)
    }
}

/// A socket joins namespace `/`: the chat's events are declared on it.
async fn on_connect(socket: Socket, State(chat): State<Chat>) {
    if socket.recovered() {
        chat.recovered(&socket);
    }
    socket.on("join", request("{room, name}", Chat::join));
    socket.on("leave", request("{room}", Chat::leave));
    socket.on("message", request("{room, text}", Chat::message));
    socket.on(
        "typing",
        |socket: Socket, State(chat): State<Chat>, Data(req): Data<RoomRequest>| async move {
            chat.typing(&socket, &req.room);
        },
    );
    socket.on_disconnect(|socket: Socket, State(chat): State<Chat>| async move {
        chat.disconnected(&socket);
    });
}

impl Chat {
    pub(crate) fn new() -> Chat {
        Chat {
            state: Arc::default(),
            boot: format!("{:x}", now_ms()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    // The broadcasts below are made while the chat's lock is held, so that
    // every member sees a room's events in the order the room saw them.

    fn join(&self, socket: &Socket, req: JoinRequest) -> Answer {
        let room_name = check_label("room", &req.room)?;
        let name = check_label("name", &req.name)?;
        let sid = socket.id().to_owned();
        let mut state = self.lock();
        // A socket is marked disconnected before its disconnect handler
        // takes this lock: a join that comes after it must not stay.
        if !socket.connected() {
            return Err("disconnected".to_owned());
        }
        let already = state
            .sockets
            .get(&sid)
            .is_some_and(|rooms| rooms.contains(&room_name));
        if !already
            && state
                .sockets
                .get(&sid)
                .is_some_and(|rooms| rooms.len() >= MAX_ROOMS_PER_SOCKET)
        {
            return Err(format!(
                "too many rooms: leave one first (at most {MAX_ROOMS_PER_SOCKET})"
            ));
        }
        let tick = state.tick();
        let room = state.room_mut(&room_name)?;
        room.last_active = tick;
        let target = io_room(&room_name);
        if already {
            // Joining again: a new name renames the socket in this room.
            let old = room
                .member(&sid)
                .map(|m| std::mem::replace(&mut m.name, name.clone()));
            if let Some(old) = old.filter(|old| *old != name) {
                let _ = socket
                    .to(target.as_str())
                    .emit("left", &json!({ "room": room_name, "name": old }));
                let _ = socket
                    .to(target.as_str())
                    .emit("joined", &json!({ "room": room_name, "name": name }));
            }
        } else {
            room.members.push(Member {
                sid: sid.clone(),
                name: name.clone(),
                last_typing: None,
            });
            socket.join(target.as_str());
            let _ = socket
                .to(target.as_str())
                .emit("joined", &json!({ "room": room_name, "name": name }));
        }
        let answer = json!({
            "room": room_name,
            "name": name,
            "members": room.names(),
            "history": room.history,
        });
        if !already {
            state.sockets.entry(sid).or_default().push(room_name);
        }
        Self::save_membership(&state, socket);
        Ok(answer)
    }

    fn leave(&self, socket: &Socket, req: RoomRequest) -> Answer {
        let room_name = req.room.trim();
        let sid = socket.id();
        let mut state = self.lock();
        let name = state
            .rooms
            .get_mut(room_name)
            .and_then(|room| room.remove(sid));
        let Some(name) = name else {
            return Err("not in room".to_owned());
        };
        if let Some(rooms) = state.sockets.get_mut(sid) {
            rooms.retain(|r| r != room_name);
            if rooms.is_empty() {
                state.sockets.remove(sid);
            }
        }
        let target = io_room(room_name);
        socket.leave(target.as_str());
        let _ = socket
            .to(target.as_str())
            .emit("left", &json!({ "room": room_name, "name": name }));
        Self::save_membership(&state, socket);
        Ok(Value::Null)
    }

    fn message(&self, socket: &Socket, req: MessageRequest) -> Answer {
        let text = check_text(&req.text)?;
        let room_name = req.room.trim();
        let mut guard = self.lock();
        let state = &mut *guard;
        let member = state
            .rooms
            .get_mut(room_name)
            .and_then(|room| Some((room.member(socket.id())?.name.clone(), room)));
        let Some((name, room)) = member else {
            return Err("not in room".to_owned());
        };
        state.next_id += 1;
        state.clock += 1;
        let msg = ChatMessage {
            id: format!("{}-{}", self.boot, state.next_id),
            room: room_name.to_owned(),
            name,
            text,
            ts: now_ms(),
        };
        let answer = json!({ "id": msg.id, "ts": msg.ts });
        room.last_active = state.clock;
        if room.history.len() == HISTORY {
            room.history.pop_front();
        }
        let _ = socket.to(io_room(room_name)).emit("message", &msg);
        room.history.push_back(msg);
        Ok(answer)
    }

    fn typing(&self, socket: &Socket, room: &str) {
        let room_name = room.trim();
        let mut state = self.lock();
        let Some(member) = state
            .rooms
            .get_mut(room_name)
            .and_then(|r| r.member(socket.id()))
        else {
            return;
        };
        let now = Instant::now();
        if member
            .last_typing
            .is_some_and(|t| now.duration_since(t) < TYPING_EVERY)
        {
            return;
        }
        member.last_typing = Some(now);
        let _ = socket
            .to(io_room(room_name))
            .emit("typing", &json!({ "room": room_name, "name": member.name }));
    }

    /// Saves the socket's rooms and names in its data: what a recovered
    /// session brings back.
    fn save_membership(state: &Inner, socket: &Socket) {
        let rooms: HashMap<&str, &str> = state
            .sockets
            .get(socket.id())
            .into_iter()
            .flatten()
            .filter_map(|room| {
                let member = state.rooms.get(room)?.members.iter();
                let name = member.clone().find(|m| m.sid == socket.id())?;
                Some((room.as_str(), name.name.as_str()))
            })
            .collect();
        let _ = socket.set_data(&rooms);
    }

    /// A socket whose session was recovered is back in its Socket.IO rooms
    /// and got the messages it missed; it is made a member of its chat rooms
    /// again (the others see it join), with no history sent again.
    fn recovered(&self, socket: &Socket) {
        let rooms: HashMap<String, String> = socket.data().unwrap_or_default();
        let sid = socket.id().to_owned();
        let mut state = self.lock();
        for (room_name, name) in rooms {
            let tick = state.tick();
            let Ok(room) = state.room_mut(&room_name) else {
                continue;
            };
            room.last_active = tick;
            if room.member(&sid).is_some() {
                continue;
            }
            room.members.push(Member {
                sid: sid.clone(),
                name: name.clone(),
                last_typing: None,
            });
            let _ = socket
                .to(io_room(&room_name))
                .emit("joined", &json!({ "room": room_name, "name": name }));
            state
                .sockets
                .entry(sid.clone())
                .or_default()
                .push(room_name);
        }
    }

    /// A socket that disconnects leaves its rooms: each gets `left`.
    fn disconnected(&self, socket: &Socket) {
        let sid = socket.id();
        let mut state = self.lock();
        let Some(rooms) = state.sockets.remove(sid) else {
            return;
        };
        for room_name in rooms {
            let Some(room) = state.rooms.get_mut(&room_name) else {
                continue;
            };
            let Some(name) = room.remove(sid) else {
                continue;
            };
            let _ = socket
                .to(io_room(&room_name))
                .emit("left", &json!({ "room": room_name, "name": name }));
        }
    }
}

fn asset(content_type: &'static str, body: impl Into<Bytes>) -> Response {
    let mut res = body.into().into_response();
    let headers = res.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    res
}

/// The application: the page, its assets, the browser client at
/// `/socket.io/socket.io.min.js` (where the reference server's
/// `serveClient` puts it), and everything else to Socket.IO.
pub(crate) fn router(io: &SocketIo, client_js: Bytes) -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }),
        )
        .route(
            "/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/style.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE_CSS) }),
        )
        .route(
            "/socket.io/socket.io.min.js",
            get(move || {
                let js = client_js.clone();
                async move { asset("text/javascript; charset=utf-8", js) }
            }),
        )
        .fallback_service(io.service())
}

/// Serves the chat on `listener` until `stop` completes; then the sockets
/// are closed ("server shutting down") and the server returns.
#[allow(
    dead_code,
    reason = "the tests' entry point; the binary calls `serve_on`"
)]
pub(crate) async fn serve(
    listener: TcpListener,
    client_js: Bytes,
    stop: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    serve_on(new_server()?, listener, client_js, stop).await
}

/// The chat's Socket.IO server, with the chat's rooms as its state, and
/// with connection state recovery, so that a page that loses its connection for a moment gets the messages it missed
/// when it comes back.
pub(crate) fn new_server() -> Result<SocketIo, socketio_tokio::BuildError> {
    SocketIo::builder()
        .with_state(Chat::new())
        .connection_state_recovery(Recovery::default())
        .build()
}

/// The most connections the chat holds at once, well under the usual
/// open-file limits; past it, new connections are refused at once.
pub(crate) const MAX_CONNECTIONS: usize = 10_000;
/// The most connections from one address: a browser opens a few, a whole
/// office behind one NAT a few hundred.
pub(crate) const MAX_CONNECTIONS_PER_IP: usize = 1_000;

/// The chat's HTTP server: the header limits and timeouts of `io`'s
/// builder (a connection that sends nothing, or trickles its request head,
/// is closed after 30 s), and the connection caps above.
pub(crate) fn http_server(io: &SocketIo) -> HttpServer {
    io.http_server()
        .max_connections(MAX_CONNECTIONS)
        .max_connections_per_ip(MAX_CONNECTIONS_PER_IP)
}

/// Serves the chat with `io` (a server that may be one node of a cluster)
/// on `listener` until `stop` completes, like [`serve`].
pub(crate) async fn serve_on(
    io: SocketIo,
    listener: TcpListener,
    client_js: Bytes,
    stop: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let server = http_server(&io);
    serve_with(io, server, listener, client_js, stop).await
}

/// Serves the chat with `io` through `server` on `listener` until `stop`
/// completes; then the sockets are closed ("server shutting down"), and
/// the server returns once the connections have finished.
pub(crate) async fn serve_with(
    io: SocketIo,
    server: HttpServer,
    listener: TcpListener,
    client_js: Bytes,
    stop: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    serve_with_routes(io, server, listener, client_js, Router::new(), stop).await
}

/// Serves the chat, and the Admin UI's files when `admin_ui` is given (see
/// [`admin`]), like [`serve_with`].
#[allow(dead_code, reason = "the Admin UI test's entry point")]
pub(crate) async fn serve_app(
    io: SocketIo,
    server: HttpServer,
    listener: TcpListener,
    client_js: Bytes,
    admin_ui: Option<socketio_admin::UiService>,
    stop: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let routes = admin_ui.map(admin_routes).unwrap_or_default();
    serve_with_routes(io, server, listener, client_js, routes, stop).await
}

/// Serves the chat as [`serve_with`] does, with `routes` (metrics, the
/// Admin UI's files) beside the chat's own.
pub(crate) async fn serve_with_routes(
    io: SocketIo,
    server: HttpServer,
    listener: TcpListener,
    client_js: Bytes,
    routes: Router,
    stop: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    io.ns("/", on_connect);
    let app = routes.merge(router(&io, client_js));
    server
        .serve_until(listener, app, async move {
            stop.await;
            // While the sockets close, the server still answers the
            // requests in which polling clients learn it.
            io.shutdown().await;
        })
        .await?;
    Ok(())
}

/// The backend of the cluster an instance joins, so that a room's messages, typing and
/// presence reach its members on every instance (the flags `--redis`,
/// `--redis-cluster`, `--redis-streams` and `--postgres`).
#[derive(Debug, Clone)]
pub(crate) enum Backend {
    /// Redis pub/sub (`socketio_redis::RedisAdapter`), at this URL.
    Redis(String),
    /// A Redis Cluster's sharded pub/sub, through these nodes (URLs joined
    /// by commas).
    RedisCluster(String),
    /// Redis Streams, at this URL.
    RedisStreams(String),
    /// Postgres `LISTEN`/`NOTIFY`, with this connection string.
    Postgres(String),
}

impl Backend {
    /// Attaches `io` to the cluster: the adapter, to keep for as long as
    /// the server runs, and what it joined.
    pub(crate) async fn join(
        &self,
        io: &SocketIo,
    ) -> Result<(Box<dyn std::any::Any + Send>, String), String> {
        fn kept<A: Send + 'static, E: std::fmt::Display>(
            attached: Result<A, E>,
            joined: String,
        ) -> Result<(Box<dyn std::any::Any + Send>, String), String> {
            match attached {
                Ok(adapter) => Ok((Box::new(adapter), joined)),
                Err(e) => Err(e.to_string()),
            }
        }
        match self {
            Backend::Redis(url) => kept(
                socketio_redis::RedisAdapter::builder(url).attach(io).await,
                url.clone(),
            ),
            Backend::RedisCluster(urls) => kept(
                socketio_redis::ShardedRedisAdapter::builder(urls.split(','))
                    .attach(io)
                    .await,
                format!("the Redis Cluster {urls}"),
            ),
            Backend::RedisStreams(url) => kept(
                socketio_redis::StreamsRedisAdapter::builder(url)
                    .attach(io)
                    .await,
                format!("the Redis Streams of {url}"),
            ),
            Backend::Postgres(config) => kept(
                socketio_postgres::PostgresAdapter::builder(config)
                    .attach(io)
                    .await,
                format!("Postgres {config}"),
            ),
        }
    }
}
