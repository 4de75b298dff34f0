//! The official Socket.IO Admin UI (`@socket.io/admin-ui` 0.5) for
//! `socketio-tokio` servers.
//!
//! [`instrument`] is the reference's `instrument(io, opts)`: it serves the
//! admin namespace (`/admin` by default) that the UI connects to, with its
//! basic authentication, its `config`, its actions (emit, join, leave,
//! disconnect), and, in development mode, every socket, room change and
//! event of every namespace. Every 2 s it emits `server_stats` to the admin
//! namespace; with a cluster adapter attached, that reaches the admin
//! sockets of every server, which is how each server, Node.js ones
//! included, shows up in the UI.
//!
//! [`UiService`] serves the UI's files (the npm package's `ui/dist`) from a
//! directory, with nothing fetched from a CDN.
//!
//! ```no_run
//! use socketio_admin::{AdminOptions, Auth};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let io = socketio_tokio::SocketIo::new()?;
//! let hash = bcrypt::hash("changeit", 10)?;
//! socketio_admin::instrument(&io, AdminOptions::new(Auth::basic("admin", hash)))?;
//! # Ok(())
//! # }
//! ```

mod stats;
mod ui;
mod wire;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::{Value, json};
use socketio_tokio::{
    ConnectError, ConnectHandler, ConnectRequest, DisconnectReason, RawArgs, RoomEvent, Socket,
    SocketIo, WeakSocketIo,
};

pub use bcrypt;
pub use ui::UiService;

use crate::wire::{ArgList, iso_date, now_ms, serialize_remote, serialize_socket};

/// How the admin namespace authenticates the UI.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Auth {
    /// No authentication: anyone who reaches the server administers it
    /// (the reference's `auth: false`).
    None,
    /// A username and a bcrypt hash of the password (the reference's
    /// `{ type: "basic", username, password }`); `$2a$`, `$2b$` and `$2y$`
    /// hashes, as bcryptjs makes them, are accepted.
    Basic {
        /// The username.
        username: String,
        /// The bcrypt hash of the password.
        password_hash: String,
    },
}

impl Auth {
    /// Basic authentication with `username` and the bcrypt hash of the password.
    pub fn basic(username: impl Into<String>, password_hash: impl Into<String>) -> Auth {
        Auth::Basic {
            username: username.into(),
            password_hash: password_hash.into(),
        }
    }
}

/// Whether the UI sees every socket and event (development) or only the
/// aggregated counters (production), as the reference's `mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Every socket, room change and event is reported to the UI.
    #[default]
    Development,
    /// Only `server_stats` and the aggregated events.
    Production,
}

/// The options of [`instrument`], as the reference's.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AdminOptions {
    /// The admin namespace (default `/admin`).
    pub namespace: String,
    /// How the UI authenticates; there is no default, as in the reference.
    pub auth: Auth,
    /// Whether the UI may only look (no emit, join, leave or disconnect).
    pub readonly: bool,
    /// The server's name in the UI (default: the host name).
    pub server_id: Option<String>,
    /// Development (default) or production.
    pub mode: Mode,
}

impl AdminOptions {
    /// The defaults, with `auth`.
    pub fn new(auth: Auth) -> AdminOptions {
        AdminOptions {
            namespace: "/admin".to_owned(),
            auth,
            readonly: false,
            server_id: None,
            mode: Mode::Development,
        }
    }

    /// Sets the admin namespace.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// Sets whether the UI may only look.
    pub fn readonly(mut self, readonly: bool) -> Self {
        self.readonly = readonly;
        self
    }

    /// Sets the server's name in the UI.
    pub fn server_id(mut self, server_id: impl Into<String>) -> Self {
        self.server_id = Some(server_id.into());
        self
    }

    /// Sets the mode.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }
}

/// Why [`instrument`] refused its options.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// The password of basic authentication is not a bcrypt hash.
    #[error("the `password` field must be a valid bcrypt hash")]
    InvalidHash,
}

/// What the UI may ask for (the reference's `Feature`).
const ACTION_FEATURES: [&str; 7] = [
    "EMIT",
    "JOIN",
    "LEAVE",
    "DISCONNECT",
    "MJOIN",
    "MLEAVE",
    "MDISCONNECT",
];

/// The session ids of the authenticated UIs (the reference's `InMemoryStore`).
#[derive(Debug, Default)]
struct Sessions(Mutex<HashSet<String>>);

impl Sessions {
    fn contains(&self, id: &str) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(id)
    }

    fn insert(&self, id: String) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).insert(id);
    }
}

/// The session id a UI got on logging in, handed from the middleware to
/// the connect handler.
#[derive(Debug, Clone)]
struct NewSession(String);

/// Instruments `io` for the Admin UI, as the reference's `instrument(io, opts)`.
///
/// Call it before the server takes clients, inside a tokio runtime (it
/// starts the task that emits `server_stats`; the task ends with the
/// server). In development mode the sockets get the field `_admin` in
/// their data as other servers fetch it ([`Socket::set_data_field`]), which the
/// reference's UI reads; the application's own data is left as it is.
///
/// # Errors
///
/// [`AdminError::InvalidHash`] when the password of basic authentication is
/// not a bcrypt hash.
pub fn instrument(io: &SocketIo, options: AdminOptions) -> Result<(), AdminError> {
    if let Auth::Basic { password_hash, .. } = &options.auth {
        password_hash
            .parse::<bcrypt::HashParts>()
            .map_err(|_| AdminError::InvalidHash)?;
    }
    let admin_ns: Arc<str> = Arc::from(options.namespace.as_str());
    let mut features: Vec<&'static str> = match options.readonly {
        true => Vec::new(),
        false => ACTION_FEATURES.to_vec(),
    };
    features.push("AGGREGATED_EVENTS");
    let development = options.mode == Mode::Development;
    if development {
        features.push("ALL_EVENTS");
    }
    let features = Arc::new(features);
    let sessions = Arc::new(Sessions::default());
    let readonly = options.readonly;

    let handler = {
        let features = features.clone();
        move |socket: Socket, io: SocketIo| {
            let features = features.clone();
            async move {
                if let Some(NewSession(id)) = socket.extensions().get::<NewSession>() {
                    let _ = socket.emit("session", &id);
                }
                if !readonly {
                    register_feature_handlers(&socket);
                }
                let _ = socket.emit("config", &json!({ "supportedFeatures": *features }));
                if development {
                    let sockets = fetch_all_sockets(&io).await;
                    let _ = socket.emit("all_sockets", &sockets);
                }
            }
        }
    };
    match options.auth.clone() {
        Auth::None => {
            tracing::warn!("admin UI: authentication is disabled");
            io.ns(options.namespace.clone(), handler);
        }
        Auth::Basic {
            username,
            password_hash,
        } => {
            let sessions = sessions.clone();
            let middleware = move |req: ConnectRequest| {
                let sessions = sessions.clone();
                let username = username.clone();
                let hash = password_hash.clone();
                async move { authenticate(req, &sessions, &username, hash).await }
            };
            io.ns(options.namespace.clone(), handler.with(middleware));
        }
    }

    if development {
        register_verbose_listeners(io, admin_ns.clone());
    }
    let server_id = options.server_id.clone().unwrap_or_else(hostname);
    tokio::spawn(stats::run(
        io.downgrade(),
        admin_ns,
        stats::BaseStats {
            server_id,
            hostname: hostname(),
            pid: std::process::id(),
            started: Instant::now(),
        },
    ));
    Ok(())
}

/// The reference's basic authentication: a known session id, or the
/// username and a password that matches the hash (a new session).
async fn authenticate(
    req: ConnectRequest,
    sessions: &Sessions,
    username: &str,
    hash: String,
) -> Result<(), ConnectError> {
    let auth: Value = req
        .handshake()
        .auth_payload()
        .and_then(|p| p.deserialize::<Value>().ok())
        .unwrap_or(Value::Null);
    if let Some(id) = auth.get("sessionId").and_then(Value::as_str)
        && sessions.contains(id)
    {
        return Ok(());
    }
    if auth.get("username").and_then(Value::as_str) == Some(username) {
        let password = auth
            .get("password")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        // bcrypt takes tens of milliseconds on purpose: off the runtime's threads.
        let matches =
            tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash).unwrap_or(false))
                .await
                .unwrap_or(false);
        if matches {
            let Some(id) = random_id() else {
                tracing::error!("admin UI: no randomness for a session id");
                return Err(ConnectError::new("no session"));
            };
            sessions.insert(id.clone());
            req.extensions().insert(NewSession(id));
            return Ok(());
        }
    }
    tracing::debug!("admin UI: invalid credentials");
    Err(ConnectError::new("invalid credentials"))
}

/// 8 random bytes in hex, as the reference's session ids; `None` when the
/// operating system gives no randomness (a guessable session id would let
/// anyone in).
fn random_id() -> Option<String> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).ok()?;
    Some(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The name of this host, as the reference's `os.hostname()`.
fn hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| {
            let name = std::fs::read_to_string(p).ok()?;
            let name = name.trim();
            (!name.is_empty()).then(|| name.to_owned())
        })
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// The arguments of an action, as the UI sends them.
fn args_of(raw: &RawArgs) -> Vec<Value> {
    raw.0.deserialize::<Vec<Value>>().unwrap_or_default()
}

/// The operator on namespace `nsp` that `filter` (a room, or a socket id,
/// or nothing) selects.
fn select(
    io: &SocketIo,
    nsp: &Value,
    filter: Option<&Value>,
) -> Option<socketio_tokio::BroadcastOperator> {
    let nsp = nsp.as_str()?;
    let op = io.of(nsp.to_owned());
    Some(
        match filter.and_then(Value::as_str).filter(|f| !f.is_empty()) {
            Some(room) => op.to(room.to_owned()),
            None => op,
        },
    )
}

/// The UI's actions (the reference's `registerFeatureHandlers`, Socket.IO v4).
fn register_feature_handlers(socket: &Socket) {
    // emit(nsp, filter, event, ...args)
    socket.on("emit", |io: SocketIo, raw: RawArgs| async move {
        let args = args_of(&raw);
        let (Some(nsp), Some(Value::String(event))) = (args.first(), args.get(2)) else {
            return;
        };
        if let Some(op) = select(&io, nsp, args.get(1)) {
            let _ = op.emit(event, &ArgList(args[3..].to_vec()));
        }
    });
    // join(nsp, room, filter)
    socket.on("join", |io: SocketIo, raw: RawArgs| async move {
        let args = args_of(&raw);
        let (Some(nsp), Some(Value::String(room))) = (args.first(), args.get(1)) else {
            return;
        };
        if let Some(op) = select(&io, nsp, args.get(2)) {
            op.join(room.clone());
        }
    });
    // leave(nsp, room, filter)
    socket.on("leave", |io: SocketIo, raw: RawArgs| async move {
        let args = args_of(&raw);
        let (Some(nsp), Some(Value::String(room))) = (args.first(), args.get(1)) else {
            return;
        };
        if let Some(op) = select(&io, nsp, args.get(2)) {
            op.leave(room.clone());
        }
    });
    // _disconnect(nsp, close, filter)
    socket.on("_disconnect", |io: SocketIo, raw: RawArgs| async move {
        let args = args_of(&raw);
        let Some(nsp) = args.first() else {
            return;
        };
        let close = args.get(1).and_then(Value::as_bool).unwrap_or(false);
        if let Some(op) = select(&io, nsp, args.get(2)) {
            match close {
                true => op.close(),
                false => {
                    let _ = op.disconnect();
                }
            }
        }
    });
}

/// An event as the reference's `onAny` lists it: its name, then its arguments.
fn event_args(event: &str, payload: &socketio_tokio::Payload) -> Vec<Value> {
    let mut args = payload.deserialize::<Vec<Value>>().unwrap_or_default();
    if args.first().and_then(Value::as_str) != Some(event) {
        args.insert(0, Value::String(event.to_owned()));
    }
    args
}

/// Every socket of every namespace, on every server of the cluster.
async fn fetch_all_sockets(io: &SocketIo) -> Vec<Value> {
    let mut all = Vec::new();
    for (nsp, _) in io.namespaces() {
        match io.of(nsp.clone()).fetch_sockets().await {
            Ok(sockets) => all.extend(sockets.iter().map(|s| serialize_remote(s, &nsp))),
            Err(e) => tracing::warn!(error = %e, nsp = %nsp, "admin UI: fetching the sockets"),
        }
    }
    all
}

/// Emits `event` with `args` to the admin namespace, while the server is there.
fn emit_admin<T: serde::Serialize + ?Sized>(
    weak: &WeakSocketIo,
    admin_ns: &str,
    event: &str,
    args: &T,
) {
    if let Some(io) = weak.upgrade() {
        let _ = io.of(admin_ns.to_owned()).emit(event, args);
    }
}

/// The development mode's listeners (the reference's `registerVerboseListeners`).
fn register_verbose_listeners(io: &SocketIo, admin_ns: Arc<str>) {
    let weak = io.downgrade();
    {
        let admin_ns = admin_ns.clone();
        io.on_connection(move |socket| {
            let client_id: String = socket.conn_id().chars().take(12).collect();
            let transport = socket.transport().as_str();
            socket.set_data_field(
                "_admin",
                json!({ "clientId": client_id, "transport": transport }),
            );
            let nsp = socket.ns().to_owned();
            emit_admin(
                &weak,
                &admin_ns,
                "socket_connected",
                &(serialize_socket(socket), iso_date(now_ms())),
            );
            {
                let weak = weak.clone();
                let admin_ns = admin_ns.clone();
                let nsp = nsp.clone();
                let client_id = client_id.clone();
                socket.on_upgrade(move |socket| {
                    let transport = socket.transport().as_str();
                    socket.set_data_field(
                        "_admin",
                        json!({ "clientId": client_id, "transport": transport }),
                    );
                    emit_admin(
                        &weak,
                        &admin_ns,
                        "socket_updated",
                        &json!({ "id": socket.id(), "nsp": nsp, "transport": transport }),
                    );
                });
            }
            if nsp != *admin_ns {
                let (w, a, n) = (weak.clone(), admin_ns.clone(), nsp.clone());
                socket.on_any(move |socket, event, payload| {
                    // The payload's list starts with the event's name.
                    let args = event_args(event, payload);
                    emit_admin(
                        &w,
                        &a,
                        "event_received",
                        &(&n, socket.id(), args, iso_date(now_ms())),
                    );
                });
                let (w, a, n) = (weak.clone(), admin_ns.clone(), nsp.clone());
                socket.on_any_outgoing(move |socket, event, payload| {
                    // The payload's list starts with the event's name.
                    let args = event_args(event, payload);
                    emit_admin(
                        &w,
                        &a,
                        "event_sent",
                        &(&n, socket.id(), args, iso_date(now_ms())),
                    );
                });
            }
            let (w, a) = (weak.clone(), admin_ns.clone());
            // Emitted as the handler is called, in order with the room
            // events of the socket's leaving.
            socket.on_disconnect(move |socket: Socket, reason: DisconnectReason| {
                emit_admin(
                    &w,
                    &a,
                    "socket_disconnected",
                    &(
                        socket.ns(),
                        socket.id(),
                        reason.as_str(),
                        iso_date(now_ms()),
                    ),
                );
                std::future::ready(())
            });
        });
    }
    let weak = io.downgrade();
    io.on_room_event(move |event| match event {
        RoomEvent::Joined { nsp, room, sid } => emit_admin(
            &weak,
            &admin_ns,
            "room_joined",
            &(&**nsp, &**room, &**sid, iso_date(now_ms())),
        ),
        RoomEvent::Left { nsp, room, sid } => emit_admin(
            &weak,
            &admin_ns,
            "room_left",
            &(&**nsp, &**room, &**sid, iso_date(now_ms())),
        ),
        _ => {}
    });
}
