//! The shared half of the server: session routing, namespaces, rooms.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use engineio_packet::{ProtocolVersion as EioVersion, Str};
use socketio_packet::{Packet, ProtocolVersion};

use crate::config::Config;
use crate::connection::{Connection, Opening};
use crate::http::{EngineParams, HttpError, Method, Request, Response};
use crate::ids::{IdGenerator, SessionIdError, check_session_id};
use crate::recovery::{Kept, NotRecovered, Restored, Store, reaches};
use crate::types::{
    ConnectionHandle, Encoded, EndpointEvent, HandleMap, RequestId, Resume, shrink,
};

/// A map keyed by ids this server draws at random (session ids, socket
/// ids), hashed with foldhash rather than SipHash: a handshake hashes ids
/// half a dozen times, and a client chooses none of these keys (it names
/// ids only to look them up, which lengthens no chain). Keys a client may
/// choose (room names, namespaces) stay with the standard hasher.
type IdMap<V> = HashMap<Str, V, foldhash::fast::RandomState>;

/// Where a request goes.
#[derive(Debug)]
pub enum Route {
    /// Answer it with this response (an error). For a WebSocket request,
    /// refuse the upgrade with a plain `400 Bad Request`.
    Respond(Response),
    /// A new session: keep the connection. It has already answered the
    /// handshake: drain its output as after any input.
    New(ConnectionHandle, Box<Connection>),
    /// An existing session: hand the request to that connection.
    Existing(ConnectionHandle),
}

/// Who receives a broadcast, or whom a socket operation applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BroadcastOptions {
    /// Only sockets in one of these rooms; every socket when empty.
    pub rooms: Vec<Str>,
    /// Not the sockets in any of these rooms (a socket id is a room).
    pub except: Vec<Str>,
    /// This node only: nothing goes to the rest of the cluster.
    pub local: bool,
    /// Drop the packet for recipients whose transport cannot take it now.
    pub volatile: bool,
    /// Whether the packet's WebSocket frames may be compressed (the
    /// reference's `compress` flag; default true).
    pub compress: bool,
}

impl Default for BroadcastOptions {
    fn default() -> Self {
        BroadcastOptions {
            rooms: Vec::new(),
            except: Vec::new(),
            local: false,
            volatile: false,
            compress: true,
        }
    }
}

/// An operation the other nodes of a cluster must carry out too.
///
/// The endpoint queues one for every operation that is not
/// [`local`](BroadcastOptions::local); an adapter takes them with
/// [`Endpoint::poll_cluster_op`], sends them to the other nodes, and each
/// node hands what it receives to [`Endpoint::handle_cluster_op`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterOp {
    /// Send a packet to the sockets `opts` selects.
    Broadcast {
        /// The packet (its namespace says where).
        packet: Packet,
        /// Who receives it.
        opts: BroadcastOptions,
    },
    /// Make the sockets `opts` selects join `rooms`.
    AddSockets {
        /// The namespace.
        nsp: Str,
        /// Which sockets.
        opts: BroadcastOptions,
        /// The rooms to join.
        rooms: Vec<Str>,
    },
    /// Make the sockets `opts` selects leave `rooms`.
    DelSockets {
        /// The namespace.
        nsp: Str,
        /// Which sockets.
        opts: BroadcastOptions,
        /// The rooms to leave.
        rooms: Vec<Str>,
    },
    /// Disconnect the sockets `opts` selects.
    DisconnectSockets {
        /// The namespace.
        nsp: Str,
        /// Which sockets.
        opts: BroadcastOptions,
        /// Close their whole connections, not only the namespace.
        close: bool,
    },
    /// Keep the session of a socket that dropped, for the cluster to give
    /// back on any node (only when the adapter owns recovery, see
    /// [`Endpoint::set_cluster_recovery`]). The other nodes are not told.
    PersistSession {
        /// The namespace.
        nsp: Str,
        /// The socket id.
        sid: Str,
        /// The private session id.
        pid: Str,
        /// The rooms it was in, its own id among them.
        rooms: Vec<Str>,
        /// The application's data, as JSON.
        data: Option<Str>,
    },
}

/// A session as a cluster adapter that owns recovery keeps it (see
/// [`Endpoint::set_cluster_recovery`](Endpoint::set_cluster_recovery)),
/// given back by [`Endpoint::restore_from_cluster`](Endpoint::restore_from_cluster).
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterSession {
    /// The socket id.
    pub sid: Str,
    /// The private session id.
    pub pid: Str,
    /// The rooms it was in (its own id among them).
    pub rooms: Vec<Str>,
    /// The application's data, as JSON.
    pub data: Option<Str>,
    /// The namespace it was saved on; `None` when whoever saved it did not
    /// say (a server of the reference does not).
    pub nsp: Option<Str>,
    /// The broadcasts of the cluster after the client's offset, in the
    /// cluster's order, each with its offset: the endpoint keeps those the
    /// session's rooms were sent.
    pub missed: Vec<MissedBroadcast>,
}

/// A broadcast of the cluster that a session may have missed.
#[derive(Debug, Clone, PartialEq)]
pub struct MissedBroadcast {
    /// The packet, without its offset.
    pub packet: Packet,
    /// Who it went to.
    pub opts: BroadcastOptions,
    /// Its offset in the cluster's order.
    pub offset: Str,
}

/// A change of a room on this node, as the reference's in-memory adapter
/// reports it (`create-room`, `join-room`, `leave-room`, `delete-room`).
/// A socket's own room counts: it is created and joined when the socket
/// connects. Recorded only when asked for
/// ([`Endpoint::record_room_events`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomEvent {
    /// Room `room` of `nsp` has its first member.
    Created {
        /// The namespace.
        nsp: Str,
        /// The room.
        room: Str,
    },
    /// Socket `sid` joined `room`.
    Joined {
        /// The namespace.
        nsp: Str,
        /// The room.
        room: Str,
        /// The socket.
        sid: Str,
    },
    /// Socket `sid` left `room`.
    Left {
        /// The namespace.
        nsp: Str,
        /// The room.
        room: Str,
        /// The socket.
        sid: Str,
    },
    /// Room `room` of `nsp` has no member left.
    Deleted {
        /// The namespace.
        nsp: Str,
        /// The room.
        room: Str,
    },
}

/// What a room change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    /// Nothing: already in, or not in.
    None,
    /// The socket joined; `created`: it is the room's first member.
    Joined { created: bool },
    /// The socket left; `deleted`: it was the room's last member.
    Left { deleted: bool },
}

/// What a node must do for a [`ClusterOp`] it received.
#[derive(Debug, Clone)]
pub enum ClusterAction {
    /// Deliver this broadcast to local connections.
    Broadcast(Broadcast),
    /// Disconnect these local sockets (namespace, socket id, connection);
    /// `close`: their whole connections.
    Disconnect {
        /// The sockets.
        targets: Vec<(Str, ConnectionHandle)>,
        /// Close the whole connections.
        close: bool,
    },
    /// Nothing left to do (room changes are already applied).
    Done,
}

impl BroadcastOptions {
    /// Every socket of the namespace.
    pub fn all() -> Self {
        Self::default()
    }

    /// Adds a room to send to.
    pub fn to(mut self, room: impl Into<Str>) -> Self {
        self.rooms.push(room.into());
        self
    }

    /// Adds a room (or socket id) to leave out.
    pub fn except(mut self, room: impl Into<Str>) -> Self {
        self.except.push(room.into());
        self
    }

    /// This node only.
    pub fn local(mut self) -> Self {
        self.local = true;
        self
    }

    /// Volatile: dropped where the transport cannot take it now.
    pub fn volatile(mut self) -> Self {
        self.volatile = true;
        self
    }

    /// Whether the packet's WebSocket frames may be compressed.
    pub fn compress(mut self, compress: bool) -> Self {
        self.compress = compress;
        self
    }
}

#[derive(Debug)]
struct SocketEntry<S> {
    conn: ConnectionHandle,
    /// The rooms it joined, but for its own; none while it joined none (a
    /// `HashSet` is 48 bytes, in an entry kept for every socket).
    #[allow(clippy::box_collection)] // 8 bytes in the entry instead of 48.
    rooms: Option<Box<HashSet<Str>>>,
    /// Whether it is in the room named by its id (the top bit), and the
    /// recovery store's sequence number when it joined (the other bits).
    /// Every socket is in its own room, until it leaves it; that room is
    /// this flag, not an entry of [`NamespaceIndex::rooms`] (a set of one
    /// member per socket, about 0.4 KiB each).
    own_room_since: u64,
    /// What the binding attached to the socket
    /// ([`Endpoint::attach_socket`]).
    data: Option<S>,
}

const OWN_ROOM: u64 = 1 << 63;

impl<S> SocketEntry<S> {
    fn new(conn: ConnectionHandle, own_room: bool, since: u64) -> Self {
        let mut entry = SocketEntry {
            conn,
            rooms: None,
            own_room_since: since & !OWN_ROOM,
            data: None,
        };
        entry.set_own_room(own_room);
        entry
    }

    fn own_room(&self) -> bool {
        self.own_room_since & OWN_ROOM != 0
    }

    fn set_own_room(&mut self, own: bool) {
        match own {
            true => self.own_room_since |= OWN_ROOM,
            false => self.own_room_since &= !OWN_ROOM,
        }
    }

    /// The recovery store's sequence number when the socket joined: the
    /// first packet it may have missed when it drops.
    fn since(&self) -> u64 {
        self.own_room_since & !OWN_ROOM
    }
}

#[derive(Debug)]
struct NamespaceIndex<S> {
    sockets: IdMap<SocketEntry<S>>,
    /// The members of each room but the sockets' own rooms, with their
    /// connections: planning a broadcast to a room looks nothing up per
    /// member.
    rooms: HashMap<Str, IdMap<ConnectionHandle>>,
}

/// A room whose members a broadcast leaves out, looked up once.
enum Except<'a> {
    /// A socket's own room: that socket.
    Own(&'a Str),
    /// A room that sockets joined.
    Members(&'a IdMap<ConnectionHandle>),
}

impl<S> Default for NamespaceIndex<S> {
    fn default() -> Self {
        NamespaceIndex {
            sockets: IdMap::default(),
            rooms: HashMap::new(),
        }
    }
}

impl<S> NamespaceIndex<S> {
    fn join(&mut self, sid: &Str, room: Str) -> Change {
        let Some(entry) = self.sockets.get_mut(sid) else {
            return Change::None;
        };
        if room == *sid {
            if entry.own_room() {
                return Change::None;
            }
            entry.set_own_room(true);
            // Others may have joined a socket's room before it is back in.
            let created = !self.rooms.contains_key(&room);
            return Change::Joined { created };
        }
        if !entry.rooms.get_or_insert_default().insert(room.clone()) {
            return Change::None;
        }
        let conn = entry.conn;
        let owner_in = self.sockets.get(&room).is_some_and(SocketEntry::own_room);
        let members = self.rooms.entry(room).or_default();
        members.insert(sid.clone(), conn);
        Change::Joined {
            created: members.len() == 1 && !owner_in,
        }
    }

    fn leave(&mut self, sid: &Str, room: &str) -> Change {
        let Some(entry) = self.sockets.get_mut(sid) else {
            return Change::None;
        };
        if room == &**sid {
            if !entry.own_room() {
                return Change::None;
            }
            entry.set_own_room(false);
            let deleted = !self.rooms.contains_key(room);
            return Change::Left { deleted };
        }
        let left = entry.rooms.as_mut().is_some_and(|rooms| rooms.remove(room));
        if entry.rooms.as_ref().is_some_and(|rooms| rooms.is_empty()) {
            entry.rooms = None;
        }
        if !left {
            return Change::None;
        }
        let mut deleted = false;
        let owner_in = self.sockets.get(room).is_some_and(SocketEntry::own_room);
        if let Some(members) = self.rooms.get_mut(room) {
            members.remove(sid);
            shrink(members);
            if members.is_empty() {
                self.rooms.remove(room);
                shrink(&mut self.rooms);
                deleted = !owner_in;
            }
        }
        Change::Left { deleted }
    }

    /// Removes socket `sid`: the rooms it left, and whether each is deleted.
    fn remove(&mut self, sid: &Str) -> Vec<(Str, bool)> {
        let mut left = Vec::new();
        if let Some(entry) = self.sockets.remove(sid) {
            // Its own room first, as the reference leaves its rooms in the
            // order it joined them.
            if entry.own_room() {
                left.push((sid.clone(), !self.rooms.contains_key(sid)));
            }
            for room in entry.rooms.map(|rooms| *rooms).unwrap_or_default() {
                let mut deleted = false;
                let owner_in = self.sockets.get(&room).is_some_and(SocketEntry::own_room);
                if let Some(members) = self.rooms.get_mut(&room) {
                    members.remove(sid);
                    shrink(members);
                    if members.is_empty() {
                        self.rooms.remove(&room);
                        deleted = !owner_in;
                    }
                }
                left.push((room, deleted));
            }
            shrink(&mut self.sockets);
            shrink(&mut self.rooms);
        }
        left
    }

    /// The members of `room` and their connections: the sockets that joined
    /// it, and the socket whose id it is while that one is in its own room.
    fn members<'a>(&'a self, room: &str) -> impl Iterator<Item = (&'a Str, ConnectionHandle)> + 'a {
        let own = self
            .sockets
            .get_key_value(room)
            .filter(|(_, e)| e.own_room())
            .map(|(sid, e)| (sid, e.conn));
        let joined = self.rooms.get(room).into_iter().flatten();
        joined.map(|(sid, conn)| (sid, *conn)).chain(own)
    }

    /// The rooms of `except`, each looked up once.
    fn except<'a>(&'a self, except: &'a [Str]) -> Vec<Except<'a>> {
        let mut out = Vec::new();
        for room in except {
            if let Some((sid, _)) = self
                .sockets
                .get_key_value(room)
                .filter(|(_, e)| e.own_room())
            {
                out.push(Except::Own(sid));
            }
            if let Some(members) = self.rooms.get(room) {
                out.push(Except::Members(members));
            }
        }
        out
    }

    fn targets(&self, opts: &BroadcastOptions) -> Vec<(Str, ConnectionHandle)> {
        self.targets_with(opts, |sid, conn| (sid.clone(), conn))
    }

    /// What `pick` makes of each selected socket (its id and connection).
    fn targets_with<T>(
        &self,
        opts: &BroadcastOptions,
        mut pick: impl FnMut(&Str, ConnectionHandle) -> T,
    ) -> Vec<T> {
        let except = self.except(&opts.except);
        let excluded = |sid: &Str| {
            except.iter().any(|e| match e {
                Except::Own(own) => *own == sid,
                Except::Members(members) => members.contains_key(sid),
            })
        };
        let mut out = Vec::new();
        if opts.rooms.is_empty() {
            out.reserve(self.sockets.len());
            for (sid, entry) in &self.sockets {
                if !excluded(sid) {
                    out.push(pick(sid, entry.conn));
                }
            }
        } else if let [room] = opts.rooms.as_slice() {
            // One room's members are distinct: no need to remember who was seen.
            out.reserve(self.rooms.get(room).map_or(1, |m| m.len() + 1));
            for (sid, conn) in self.members(room) {
                if !excluded(sid) {
                    out.push(pick(sid, conn));
                }
            }
        } else {
            let mut seen = HashSet::new();
            for room in &opts.rooms {
                for (sid, conn) in self.members(room) {
                    if seen.insert(sid) && !excluded(sid) {
                        out.push(pick(sid, conn));
                    }
                }
            }
        }
        out
    }
}

/// A namespace matcher for dynamic namespaces.
pub type NamespaceMatcher = Box<dyn Fn(&str) -> bool + Send + Sync>;

/// A live session, as the endpoint keeps it.
#[derive(Debug)]
struct Session<C> {
    sid: Str,
    /// Its Engine.IO version, to check upgrades against.
    version: EioVersion,
    /// What the binding attached to it ([`Endpoint::attach`]).
    data: Option<C>,
}

/// The shared half of a server: it routes requests to sessions, creates new
/// ones, and keeps the namespaces and the rooms index.
///
/// One endpoint serves many [`Connection`]s. A binding may run each
/// connection on its own task and share the endpoint; connections report
/// what the endpoint must know through
/// [`Connection::poll_endpoint_event`], which the binding passes to
/// [`Endpoint::handle_event`].
///
/// A binding attaches its own value to each session (`C`, say where that
/// connection's task listens, with [`attach`](Endpoint::attach)) and to
/// each socket (`S`, with [`attach_socket`](Endpoint::attach_socket)); the
/// endpoint keeps them with its entries and drops them when the session
/// closes or the socket leaves, so that the binding keeps no second index
/// in step with this one.
pub struct Endpoint<C = (), S = ()> {
    config: Arc<Config>,
    ids: IdGenerator,
    sessions: IdMap<ConnectionHandle>,
    conns: HandleMap<Session<C>>,
    next_handle: u64,
    static_namespaces: HashSet<Str>,
    matcher: Option<NamespaceMatcher>,
    index: HashMap<Str, NamespaceIndex<S>>,
    cluster_out: VecDeque<ClusterOp>,
    clustered: bool,
    /// The room changes not yet polled, when they are recorded.
    room_events: Option<VecDeque<RoomEvent>>,
    /// The recovery store, when recovery is on.
    store: Option<Store>,
    /// Whether the cluster's adapter owns recovery.
    cluster_recovery: bool,
}

impl<C, S> fmt::Debug for Endpoint<C, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("sessions", &self.sessions.len())
            .field("namespaces", &self.static_namespaces)
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// An endpoint with ids from the operating system's random source.
    ///
    /// # Errors
    ///
    /// When the operating system gives no randomness.
    pub fn new(config: Config) -> Result<Endpoint, getrandom::Error> {
        Ok(Endpoint::with_ids(config, IdGenerator::from_os()?))
    }

    /// An endpoint drawing its ids from `ids` (seed it for reproducible tests).
    pub fn with_ids(config: Config, ids: IdGenerator) -> Endpoint {
        Endpoint::carrying(config, ids)
    }
}

impl<C, S> Endpoint<C, S> {
    /// An endpoint whose sessions carry the binding's values of type `C`
    /// and whose sockets carry values of type `S` (see
    /// [`attach`](Endpoint::attach)), drawing its ids from `ids`.
    pub fn carrying(config: Config, ids: IdGenerator) -> Endpoint<C, S> {
        let mut static_namespaces = HashSet::new();
        static_namespaces.insert(Str::from_static("/"));
        let store = config
            .recovery
            .clone()
            .map(|r| Store::new(r, config.max_buffer_size));
        Endpoint {
            config: Arc::new(config),
            ids,
            sessions: IdMap::default(),
            conns: HandleMap::default(),
            next_handle: 0,
            static_namespaces,
            matcher: None,
            index: HashMap::new(),
            cluster_out: VecDeque::new(),
            clustered: false,
            room_events: None,
            store,
            cluster_recovery: false,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The number of live sessions.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// The namespaces that have sockets on this node.
    pub fn namespaces(&self) -> impl Iterator<Item = &Str> + '_ {
        self.index.keys()
    }

    /// The number of connected sockets on `nsp`.
    pub fn socket_count(&self, nsp: &str) -> usize {
        self.index.get(nsp).map_or(0, |i| i.sockets.len())
    }

    /// Whether `path` is served by this endpoint.
    pub fn matches_path(&self, path: &str) -> bool {
        self.config.matches_path(path)
    }

    /// The session whose id is `sid`, if it is live.
    pub fn session(&self, sid: &str) -> Option<ConnectionHandle> {
        self.sessions.get(sid).copied()
    }

    // ----- the binding's data -----

    /// Attaches the binding's `data` to session `handle` (replacing what
    /// was attached); false, and `data` dropped, when there is no such
    /// session. It is dropped when the session closes.
    pub fn attach(&mut self, handle: ConnectionHandle, data: C) -> bool {
        match self.conns.get_mut(&handle) {
            Some(session) => {
                session.data = Some(data);
                true
            }
            None => false,
        }
    }

    /// What the binding attached to session `handle`.
    pub fn connection(&self, handle: ConnectionHandle) -> Option<&C> {
        self.conns.get(&handle)?.data.as_ref()
    }

    /// What the binding attached to each live session.
    pub fn connections(&self) -> impl Iterator<Item = &C> + '_ {
        self.conns.values().filter_map(|s| s.data.as_ref())
    }

    /// Attaches the binding's `data` to socket `sid` of `nsp` (replacing
    /// what was attached); false, and `data` dropped, when there is no such
    /// socket. It is dropped when the socket leaves.
    pub fn attach_socket(&mut self, nsp: &str, sid: &str, data: S) -> bool {
        match self.index.get_mut(nsp).and_then(|i| i.sockets.get_mut(sid)) {
            Some(entry) => {
                entry.data = Some(data);
                true
            }
            None => false,
        }
    }

    /// What the binding attached to socket `sid` of `nsp`.
    pub fn socket(&self, nsp: &str, sid: &str) -> Option<&S> {
        self.index.get(nsp)?.sockets.get(sid)?.data.as_ref()
    }

    /// What the binding attached to each socket of `nsp` that `opts`
    /// selects, with the socket's id and connection (sockets with nothing
    /// attached are left out).
    pub fn sockets_with_data(
        &self,
        nsp: &str,
        opts: &BroadcastOptions,
    ) -> Vec<(&Str, ConnectionHandle, &S)> {
        let Some(index) = self.index.get(nsp) else {
            return Vec::new();
        };
        index
            .targets_with(opts, |sid, conn| (sid.clone(), conn))
            .into_iter()
            .filter_map(|(sid, conn)| {
                let (sid, entry) = index.sockets.get_key_value(&sid)?;
                Some((sid, conn, entry.data.as_ref()?))
            })
            .collect()
    }

    // ----- namespaces -----

    /// Declares a namespace (`/` always exists).
    pub fn add_namespace(&mut self, nsp: impl Into<Str>) {
        self.static_namespaces.insert(nsp.into());
    }

    /// Accepts, beyond the declared namespaces, every name `matcher` accepts.
    pub fn set_namespace_matcher(&mut self, matcher: NamespaceMatcher) {
        self.matcher = Some(matcher);
    }

    /// Whether a client may connect to `nsp`.
    pub fn has_namespace(&self, nsp: &str) -> bool {
        self.static_namespaces.contains(nsp) || self.matcher.as_ref().is_some_and(|m| m(nsp))
    }

    // ----- requests -----

    /// Routes a request: an error to answer, a new session, or an existing one.
    pub fn handle_request(&mut self, now: Instant, id: RequestId, req: &Request) -> Route {
        match self.route(now, id, req, None) {
            Ok(route) => route,
            // Only an id given by the application is refused.
            Err(_) => Route::Respond(Response::error(HttpError::BadRequest)),
        }
    }

    /// Routes a request as [`handle_request`](Endpoint::handle_request),
    /// giving a new session the id `sid` (the application's, as the
    /// reference's `generateId`) instead of a random one. A request that
    /// opens no session ignores `sid`.
    ///
    /// # Errors
    ///
    /// When the request opens a session and `sid` is not 1 to
    /// [`MAX_SESSION_ID_LEN`](crate::MAX_SESSION_ID_LEN) URL-safe characters
    /// ([`check_session_id`](crate::check_session_id)), or a live session
    /// has it: no session is opened, and the binding answers the request
    /// as it sees fit (the reference: `400 Bad request`).
    pub fn handle_request_with_id(
        &mut self,
        now: Instant,
        id: RequestId,
        req: &Request,
        sid: Str,
    ) -> Result<Route, SessionIdError> {
        self.route(now, id, req, Some(sid))
    }

    /// Routes a request as [`handle_request`](Endpoint::handle_request)
    /// does when that changes nothing in the endpoint: an error to answer,
    /// or the existing session it names. `None` when the request would
    /// open a session: give it to `handle_request` then.
    ///
    /// It takes the endpoint by shared reference, so that a binding may
    /// route the requests of live sessions (every polling request, every
    /// upgrade) concurrently, under a read lock.
    pub fn route_existing(&self, req: &Request) -> Option<Route> {
        self.route_shared(req).ok()
    }

    /// What routing can tell without changing the endpoint; `Err` with the
    /// request's parameters when it opens a session.
    fn route_shared<'r>(&self, req: &'r Request) -> Result<Route, EngineParams<'r>> {
        if !self.matches_path(req.path()) {
            return Ok(Route::Respond(Response {
                status: 404,
                ..Response::bad_request()
            }));
        }
        let params = req.engine_params();
        let enabled = match params.transport.as_deref() {
            Some("polling") => self.config.transports.polling,
            Some("websocket") => self.config.transports.websocket,
            _ => false,
        };
        if !enabled {
            return Ok(Route::Respond(Response::error(HttpError::UnknownTransport)));
        }
        let Some(sid) = &params.sid else {
            return Err(params);
        };
        {
            let transport = &params.transport;
            let Some(&handle) = self.sessions.get(&**sid) else {
                return Ok(Route::Respond(Response::error(HttpError::UnknownSid)));
            };
            let websocket = transport.as_deref() == Some("websocket");
            if websocket && !req.websocket {
                // A request naming the WebSocket transport that is not an
                // upgrade: the reference's transport mismatch.
                return Ok(Route::Respond(Response::error(HttpError::BadRequest)));
            }
            if req.websocket {
                // An upgrade speaks the session's protocol version.
                let asked = match params.eio.as_deref() {
                    Some("4") => Some(EioVersion::V4),
                    Some("3") => Some(EioVersion::V3),
                    _ => None,
                };
                if asked != self.conns.get(&handle).map(|s| s.version) {
                    return Ok(Route::Respond(Response::error(HttpError::BadRequest)));
                }
            }
            Ok(Route::Existing(handle))
        }
    }

    fn route(
        &mut self,
        now: Instant,
        id: RequestId,
        req: &Request,
        given: Option<Str>,
    ) -> Result<Route, SessionIdError> {
        let params = match self.route_shared(req) {
            Ok(route) => return Ok(route),
            Err(params) => params,
        };
        let transport = params.transport;
        if req.method != Method::Get {
            return Ok(Route::Respond(Response::error(
                HttpError::BadHandshakeMethod,
            )));
        }
        let websocket = transport.as_deref() == Some("websocket");
        if websocket != req.websocket {
            return Ok(Route::Respond(Response::error(HttpError::BadRequest)));
        }
        let eio = match params.eio.as_deref() {
            Some("4") => EioVersion::V4,
            _ if self.config.allow_eio3 => EioVersion::V3,
            _ => {
                return Ok(Route::Respond(Response::error(
                    HttpError::UnsupportedProtocolVersion,
                )));
            }
        };
        let opening = if websocket {
            Opening::WebSocket { ws: id }
        } else {
            let b64 = params
                .b64
                .is_some_and(|v| !v.is_empty() && v != "0" && v != "false");
            Opening::Polling {
                request: id,
                binary: !b64,
                // A `j` parameter, even empty, makes the session JSONP, as
                // the reference's polling constructor decides; only where
                // old clients are served (`allow_eio3`), since a JSONP answer
                // is a script any page may load, past the origin checks.
                // Elsewhere it is ordinary polling, as no current client
                // sends `j`.
                jsonp: params.j.is_some() && self.config.allow_eio3,
            }
        };
        let sid = match given {
            Some(sid) => {
                check_session_id(&sid)?;
                if self.sessions.contains_key(&sid) {
                    return Err(SessionIdError::InUse);
                }
                sid
            }
            None => self.ids.next_id(),
        };
        let handle = ConnectionHandle(self.next_handle);
        self.next_handle += 1;
        let conn = Connection::new(
            now,
            self.config.clone(),
            sid.clone(),
            eio,
            opening,
            self.ids.fork_stream(),
            req.query().to_owned(),
        );
        self.sessions.insert(sid.clone(), handle);
        self.conns.insert(
            handle,
            Session {
                sid,
                version: eio,
                data: None,
            },
        );
        Ok(Route::New(handle, Box::new(conn)))
    }

    /// Takes in what a connection reported. `now` dates the sessions saved
    /// for recovery.
    pub fn handle_event(&mut self, now: Instant, handle: ConnectionHandle, event: EndpointEvent) {
        match event {
            EndpointEvent::SocketConnected { nsp, sid } => {
                let since = self.store.as_ref().map_or(0, Store::next_seq);
                let index = self.index.entry(nsp.clone()).or_default();
                // Every socket is in the room named by its id.
                index
                    .sockets
                    .insert(sid.clone(), SocketEntry::new(handle, true, since));
                self.note(&nsp, &sid, &sid, Change::Joined { created: true });
            }
            EndpointEvent::SocketRestored {
                nsp,
                sid,
                rooms,
                since,
            } => {
                // Back in its own room, as every socket that connects.
                let index = self.index.entry(nsp.clone()).or_default();
                // Others may have joined its room while it was away.
                let created = !index.rooms.contains_key(&sid);
                index
                    .sockets
                    .insert(sid.clone(), SocketEntry::new(handle, true, since));
                let changes: Vec<(Str, Change)> = rooms
                    .into_iter()
                    .map(|room| (room.clone(), index.join(&sid, room)))
                    .collect();
                self.note(&nsp, &sid, &sid, Change::Joined { created });
                for (room, change) in changes {
                    self.note(&nsp, &sid, &room, change);
                }
            }
            EndpointEvent::SocketDisconnected { nsp, sid, pid } => {
                // Only the connection that has the socket may remove it (a
                // recovered socket's id moves to another connection).
                let ours = self
                    .index
                    .get(&nsp)
                    .and_then(|i| i.sockets.get(&sid))
                    .is_some_and(|e| e.conn == handle);
                if !ours {
                    return;
                }
                if let (Some(pid), true) = (&pid, self.cluster_recovery()) {
                    let rooms = self.rooms_of(&nsp, &sid);
                    self.publish(ClusterOp::PersistSession {
                        nsp: nsp.clone(),
                        sid: sid.clone(),
                        pid: pid.clone(),
                        rooms,
                        data: None,
                    });
                } else if let (Some(pid), Some(_)) = (pid, &self.store) {
                    let rooms = self.rooms_of(&nsp, &sid);
                    let since = self
                        .index
                        .get(&nsp)
                        .and_then(|i| i.sockets.get(&sid))
                        .map(SocketEntry::since);
                    if let (Some(store), Some(since)) = (&mut self.store, since) {
                        store.persist(now, pid, nsp.clone(), sid.clone(), rooms, since);
                    }
                }
                if let Some(index) = self.index.get_mut(&nsp) {
                    let left = index.remove(&sid);
                    if index.sockets.is_empty() {
                        self.index.remove(&nsp);
                    }
                    for (room, deleted) in left {
                        self.note(&nsp, &sid, &room, Change::Left { deleted });
                    }
                }
            }
            EndpointEvent::Closed => {
                if let Some(session) = self.conns.remove(&handle) {
                    self.sessions.remove(&session.sid);
                    shrink(&mut self.conns);
                    shrink(&mut self.sessions);
                }
            }
        }
    }

    // ----- rooms -----

    /// Puts socket `sid` of `nsp` in `room`.
    pub fn join(&mut self, nsp: &str, sid: &Str, room: impl Into<Str>) {
        let room = room.into();
        if let Some(index) = self.index.get_mut(nsp) {
            let change = index.join(sid, room.clone());
            self.note(nsp, sid, &room, change);
        }
    }

    /// Takes socket `sid` of `nsp` out of `room`.
    pub fn leave(&mut self, nsp: &str, sid: &Str, room: &str) {
        if let Some(index) = self.index.get_mut(nsp) {
            let change = index.leave(sid, room);
            self.note(nsp, sid, room, change);
        }
    }

    /// Whether room changes are recorded, for
    /// [`poll_room_event`](Endpoint::poll_room_event) (off by default: a
    /// binding turns it on when its application listens).
    pub fn record_room_events(&mut self, on: bool) {
        match (on, &self.room_events) {
            (true, Some(_)) => {}
            (true, None) => self.room_events = Some(VecDeque::new()),
            (false, _) => self.room_events = None,
        }
    }

    /// The next room change recorded, in the order they happened.
    pub fn poll_room_event(&mut self) -> Option<RoomEvent> {
        self.room_events.as_mut()?.pop_front()
    }

    /// Records what a room change did, when room changes are recorded.
    fn note(&mut self, nsp: &str, sid: &Str, room: &str, change: Change) {
        let Some(events) = &mut self.room_events else {
            return;
        };
        let (nsp, room) = (Str::from(nsp), Str::from(room));
        match change {
            Change::None => {}
            Change::Joined { created } => {
                if created {
                    events.push_back(RoomEvent::Created {
                        nsp: nsp.clone(),
                        room: room.clone(),
                    });
                }
                events.push_back(RoomEvent::Joined {
                    nsp,
                    room,
                    sid: sid.clone(),
                });
            }
            Change::Left { deleted } => {
                events.push_back(RoomEvent::Left {
                    nsp: nsp.clone(),
                    room: room.clone(),
                    sid: sid.clone(),
                });
                if deleted {
                    events.push_back(RoomEvent::Deleted { nsp, room });
                }
            }
        }
    }

    /// The rooms socket `sid` of `nsp` is in (its own id among them).
    pub fn rooms_of(&self, nsp: &str, sid: &str) -> Vec<Str> {
        let mut rooms: Vec<Str> = self
            .index
            .get(nsp)
            .and_then(|i| i.sockets.get_key_value(sid))
            .map(|(sid, e)| {
                let own = e.own_room().then(|| sid.clone());
                let joined = e.rooms.iter().flat_map(|rooms| rooms.iter());
                joined.cloned().chain(own).collect()
            })
            .unwrap_or_default();
        rooms.sort();
        rooms
    }

    /// Every room of `nsp` that has a member.
    pub fn rooms(&self, nsp: &str) -> Vec<Str> {
        let mut rooms: Vec<Str> = self
            .index
            .get(nsp)
            .map(|i| {
                let own = i.sockets.iter().filter(|(_, e)| e.own_room());
                i.rooms
                    .keys()
                    .chain(own.map(|(sid, _)| sid))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        rooms.sort();
        // A socket's id can also be a room others joined.
        rooms.dedup();
        rooms
    }

    /// The sockets of `nsp` that `opts` selects, with their connections.
    pub fn sockets(&self, nsp: &str, opts: &BroadcastOptions) -> Vec<(Str, ConnectionHandle)> {
        self.index
            .get(nsp)
            .map(|i| i.targets(opts))
            .unwrap_or_default()
    }

    /// Plans a broadcast: encodes `packet` once and lists the local
    /// connections to hand it to with [`Connection::send_encoded`]. Unless
    /// `opts` is local, the other nodes get it too (see [`ClusterOp`]).
    ///
    /// With recovery on, an event without an acknowledgement that is not
    /// volatile is stored, with its offset appended to its arguments. Hand
    /// the planned broadcasts to their connections in the order they were
    /// planned: a client recovers from the last offset it got, so every
    /// connection must get stored packets in offset order.
    ///
    /// When the cluster's adapter owns recovery (see
    /// [`set_cluster_recovery`](Endpoint::set_cluster_recovery)), such an
    /// event is not planned here: it goes to the cluster only, and comes
    /// back with its offset through
    /// [`handle_cluster_op_at`](Endpoint::handle_cluster_op_at); the plan
    /// returned is empty and [`Broadcast::deferred`].
    pub fn broadcast(
        &mut self,
        now: Instant,
        packet: &Packet,
        opts: &BroadcastOptions,
    ) -> Broadcast {
        if !opts.local && self.cluster_recovery() && Store::keeps(packet, opts.volatile) {
            self.publish(ClusterOp::Broadcast {
                packet: packet.clone(),
                opts: opts.clone(),
            });
            return Broadcast {
                encoded: Encoded::with_parser(packet, ProtocolVersion::V5, self.config.parser)
                    .with_compress(opts.compress),
                targets: Vec::new(),
                volatile: opts.volatile,
                stored: false,
                deferred: true,
            };
        }
        if !opts.local {
            self.publish(ClusterOp::Broadcast {
                packet: packet.clone(),
                opts: opts.clone(),
            });
        }
        self.plan(now, packet, opts)
    }

    /// Plans a broadcast as [`broadcast`](Endpoint::broadcast) does when
    /// that changes nothing in the endpoint: `None` when the packet goes to
    /// the other nodes too (`opts` not local on a
    /// [clustered](Endpoint::set_clustered) endpoint) or is stored for
    /// connection state recovery; call `broadcast` then.
    ///
    /// It takes the endpoint by shared reference, so that a binding may
    /// plan such broadcasts concurrently, under a read lock.
    pub fn plan_broadcast(&self, packet: &Packet, opts: &BroadcastOptions) -> Option<Broadcast> {
        let published = self.clustered && !opts.local;
        let stored = self.store.is_some() && Store::keeps(packet, opts.volatile);
        match published || stored {
            true => None,
            false => Some(self.plan_unstored(packet, opts)),
        }
    }

    fn targets(&self, packet: &Packet, opts: &BroadcastOptions) -> Vec<ConnectionHandle> {
        self.index
            .get(packet.nsp.as_str())
            .map(|i| i.targets_with(opts, |_, handle| handle))
            .unwrap_or_default()
    }

    fn plan_unstored(&self, packet: &Packet, opts: &BroadcastOptions) -> Broadcast {
        Broadcast {
            encoded: Encoded::with_parser(packet, ProtocolVersion::V5, self.config.parser)
                .with_compress(opts.compress),
            targets: self.targets(packet, opts),
            volatile: opts.volatile,
            stored: false,
            deferred: false,
        }
    }

    fn plan(&mut self, now: Instant, packet: &Packet, opts: &BroadcastOptions) -> Broadcast {
        let stamped = match &self.store {
            // The cluster's offsets only: a packet without one has none.
            Some(_) if self.cluster_recovery() => None,
            Some(_) if Store::keeps(packet, opts.volatile) => Store::stamp(packet, &mut self.ids),
            _ => None,
        };
        let Some((stamped, offset)) = stamped else {
            return self.plan_unstored(packet, opts);
        };
        let targets = self.targets(packet, opts);
        let encoded = Encoded::with_parser(&stamped, ProtocolVersion::V5, self.config.parser)
            .with_compress(opts.compress);
        if let Some(store) = &mut self.store {
            store.push(
                now,
                offset,
                packet.nsp.clone(),
                &opts.rooms,
                &opts.except,
                encoded.clone(),
            );
        }
        Broadcast {
            encoded,
            targets,
            volatile: opts.volatile,
            stored: true,
            deferred: false,
        }
    }

    // ----- connection state recovery -----

    /// Gives back the saved session a client asks to recover on `nsp`, with
    /// the packets it missed, and forgets it (a session is recovered once).
    /// Answer the client with
    /// [`Connection::accept_restored`], and hand the connection's endpoint
    /// events to [`handle_event`](Endpoint::handle_event) before planning
    /// another broadcast.
    ///
    /// # Errors
    ///
    /// [`NotRecovered`]: why the client gets a new session instead (accept
    /// it with [`Connection::accept`]).
    pub fn restore(
        &mut self,
        now: Instant,
        nsp: &str,
        resume: &Resume,
    ) -> Result<Restored, NotRecovered> {
        match &mut self.store {
            Some(store) => store.restore(now, nsp, resume),
            None => Err(NotRecovered::Off),
        }
    }

    /// Attaches the application's data (JSON) to the saved session `pid`, to
    /// be given back with it; false when there is no such session, or when
    /// the data would take the store over its bound in bytes (the session is
    /// then dropped).
    ///
    /// When the cluster's adapter owns recovery, the data goes with the
    /// session that [`ClusterOp::PersistSession`] hands it, which must not
    /// have been polled yet.
    pub fn set_session_data(&mut self, pid: &str, data: Str) -> bool {
        if self.cluster_recovery() {
            let op = self.cluster_out.iter_mut().rev().find_map(|op| match op {
                ClusterOp::PersistSession { pid: p, data, .. } if &**p == pid => Some(data),
                _ => None,
            });
            return op.map(|d| *d = Some(data)).is_some();
        }
        self.store.as_mut().is_some_and(|s| s.set_data(pid, data))
    }

    /// Keeps the binding's `value` with the saved session `pid`, to be given
    /// back with it ([`Restored::kept`]); false when there is no such
    /// session, or when the store is at its bound in bytes (the session is
    /// then dropped).
    ///
    /// When the cluster's adapter owns recovery, nothing is kept (the
    /// session may come back on another node): false.
    pub fn keep_with_session(&mut self, pid: &str, value: Kept) -> bool {
        if self.cluster_recovery() {
            return false;
        }
        self.store.as_mut().is_some_and(|s| s.keep(pid, value))
    }

    /// Hands connection state recovery to the cluster's adapter (with
    /// `on`), as the reference's Redis Streams adapter takes it: an adapter
    /// that puts the cluster's broadcasts in one order that every node
    /// reads, and keeps sessions where every node finds them.
    ///
    /// Then, with recovery on and the endpoint
    /// [clustered](Endpoint::set_clustered): a broadcast that would be
    /// stored is not delivered here but only queued for the cluster
    /// ([`Broadcast::deferred`]), and delivered when the adapter gives it
    /// back with its offset in the cluster's order
    /// ([`handle_cluster_op_at`](Endpoint::handle_cluster_op_at)), on this
    /// node as on the others; a socket that drops for a reason that keeps
    /// sessions is queued as [`ClusterOp::PersistSession`] instead of being
    /// saved here; and a client that asks to recover is given its session
    /// by [`restore_from_cluster`](Endpoint::restore_from_cluster) from what
    /// the adapter found. The endpoint's own store holds nothing.
    pub fn set_cluster_recovery(&mut self, on: bool) {
        self.cluster_recovery = on;
    }

    /// Whether the cluster's adapter owns recovery now: asked for, with
    /// recovery on and the endpoint clustered.
    pub fn cluster_recovery(&self) -> bool {
        self.cluster_recovery && self.clustered && self.store.is_some()
    }

    /// Gives back a session that the cluster's adapter kept, on `nsp`, with
    /// the broadcasts among `session.missed` that its rooms were sent, each
    /// with its offset, in the cluster's order. Answer the client with
    /// [`Connection::accept_restored`] as for
    /// [`restore`](Endpoint::restore). The adapter must give each session
    /// once, and every broadcast after the client's offset up to the last
    /// one it delivered on this node (so that nothing is missed or given
    /// twice), or no session at all.
    ///
    /// A session saved on another namespace is refused; so is one whose
    /// namespace is unknown (`session.nsp` is `None`) unless the
    /// namespace's middlewares ran for the client, or it has none
    /// (`middlewares_ran`): a session must never let a client skip another
    /// namespace's middlewares.
    ///
    /// # Errors
    ///
    /// [`NotRecovered`]: the cluster does not own recovery, the session
    /// belongs to another namespace (or to an unknown one, with the
    /// middlewares skipped), the socket is connected here, or it missed
    /// more than one session may replay.
    pub fn restore_from_cluster(
        &mut self,
        nsp: &str,
        session: ClusterSession,
        middlewares_ran: bool,
    ) -> Result<Restored, NotRecovered> {
        if !self.cluster_recovery() {
            return Err(NotRecovered::Off);
        }
        match session.nsp.as_deref() {
            Some(saved) if saved != nsp => return Err(NotRecovered::OtherNamespace),
            None if !middlewares_ran => return Err(NotRecovered::OtherNamespace),
            _ => {}
        }
        if self
            .index
            .get(nsp)
            .is_some_and(|i| i.sockets.contains_key(&session.sid))
        {
            return Err(NotRecovered::UnknownSession);
        }
        let Some(store) = &self.store else {
            return Err(NotRecovered::Off);
        };
        let (max_packets, max_bytes) = store.missed_bounds();
        let rooms: HashSet<&str> = session.rooms.iter().map(|r| &**r).collect();
        let mut missed = Vec::new();
        let mut bytes = 0;
        for m in &session.missed {
            if &*m.packet.nsp != nsp
                || !Store::keeps(&m.packet, m.opts.volatile)
                || !reaches(&m.opts.rooms, &m.opts.except, &rooms)
            {
                continue;
            }
            let Some((stamped, _)) = Store::stamp_with(&m.packet, m.offset.clone()) else {
                continue;
            };
            let encoded = Encoded::with_parser(&stamped, ProtocolVersion::V5, self.config.parser)
                .with_compress(m.opts.compress);
            bytes += encoded.size();
            if missed.len() == max_packets || bytes > max_bytes {
                return Err(NotRecovered::TooMuchMissed);
            }
            missed.push(encoded);
        }
        Ok(Restored {
            nsp: Str::from(nsp),
            sid: session.sid,
            pid: session.pid,
            rooms: session.rooms,
            data: session.data,
            kept: None,
            missed,
            since: 0,
        })
    }

    /// Drops from the recovery store the packets and the sessions older
    /// than [`Recovery::max_disconnection_duration`](crate::Recovery::max_disconnection_duration)
    /// as of `now`. The store drops them on its own when a packet is
    /// stored or a session saved or restored; a server that goes quiet (say
    /// after a reconnect storm whose clients did not all come back) calls
    /// this at [`poll_timeout`](Endpoint::poll_timeout) so that they do not
    /// stay until the next one.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(store) = &mut self.store {
            store.handle_timeout(now);
        }
    }

    /// When [`handle_timeout`](Endpoint::handle_timeout) has something to
    /// drop next: the oldest packet's or saved session's end; `None` when
    /// the recovery store is empty (or recovery is off).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.store.as_ref().and_then(Store::next_expiry)
    }

    /// The recovery store's size: packets kept, sessions saved, and the
    /// bytes counted against [`Recovery::max_bytes`](crate::Recovery::max_bytes).
    pub fn recovery_store_size(&self) -> (usize, usize, usize) {
        self.store.as_ref().map_or((0, 0, 0), |s| {
            (s.packet_count(), s.session_count(), s.bytes())
        })
    }

    /// Makes the sockets of `nsp` that `opts` selects join `rooms`, here
    /// and, unless local, on the other nodes.
    pub fn add_sockets(&mut self, nsp: &str, opts: &BroadcastOptions, rooms: &[Str]) {
        if !opts.local {
            self.publish(ClusterOp::AddSockets {
                nsp: Str::from(nsp),
                opts: opts.clone(),
                rooms: rooms.to_vec(),
            });
        }
        self.apply_rooms(nsp, opts, rooms, true);
    }

    /// Makes the sockets of `nsp` that `opts` selects leave `rooms`, here
    /// and, unless local, on the other nodes.
    pub fn del_sockets(&mut self, nsp: &str, opts: &BroadcastOptions, rooms: &[Str]) {
        if !opts.local {
            self.publish(ClusterOp::DelSockets {
                nsp: Str::from(nsp),
                opts: opts.clone(),
                rooms: rooms.to_vec(),
            });
        }
        self.apply_rooms(nsp, opts, rooms, false);
    }

    fn apply_rooms(&mut self, nsp: &str, opts: &BroadcastOptions, rooms: &[Str], join: bool) {
        let Some(index) = self.index.get_mut(nsp) else {
            return;
        };
        let mut changes = Vec::new();
        for (sid, _) in index.targets(opts) {
            for room in rooms {
                let change = match join {
                    true => index.join(&sid, room.clone()),
                    false => index.leave(&sid, room),
                };
                changes.push((sid.clone(), room, change));
            }
        }
        for (sid, room, change) in changes {
            self.note(nsp, &sid, room, change);
        }
    }

    /// The local sockets of `nsp` that `opts` selects, to disconnect (the
    /// binding calls [`Connection::disconnect`] or [`Connection::close`]);
    /// unless local, the other nodes disconnect theirs.
    pub fn disconnect_sockets(
        &mut self,
        nsp: &str,
        opts: &BroadcastOptions,
        close: bool,
    ) -> Vec<(Str, ConnectionHandle)> {
        if !opts.local {
            self.publish(ClusterOp::DisconnectSockets {
                nsp: Str::from(nsp),
                opts: opts.clone(),
                close,
            });
        }
        self.sockets(nsp, opts)
    }

    /// Makes this endpoint one node of a cluster: from now on every
    /// operation that is not local is also queued for
    /// [`poll_cluster_op`](Endpoint::poll_cluster_op). A single node queues
    /// nothing.
    pub fn set_clustered(&mut self, clustered: bool) {
        self.clustered = clustered;
        if !clustered {
            self.cluster_out.clear();
        }
    }

    fn publish(&mut self, op: ClusterOp) {
        if self.clustered {
            self.cluster_out.push_back(op);
        }
    }

    /// The next operation for the other nodes of the cluster (only when
    /// [`set_clustered`](Endpoint::set_clustered) is on). Drain them after
    /// each operation.
    pub fn poll_cluster_op(&mut self) -> Option<ClusterOp> {
        self.cluster_out.pop_front()
    }

    /// Carries out an operation another node published. Nothing is
    /// published again.
    ///
    /// A broadcast is stored for recovery as a local one is (`now` dates
    /// it), with an offset of this node's.
    pub fn handle_cluster_op(&mut self, now: Instant, op: ClusterOp) -> ClusterAction {
        match op {
            ClusterOp::Broadcast { packet, opts } => {
                ClusterAction::Broadcast(self.plan(now, &packet, &opts))
            }
            ClusterOp::AddSockets { nsp, opts, rooms } => {
                self.apply_rooms(&nsp, &opts, &rooms, true);
                ClusterAction::Done
            }
            ClusterOp::DelSockets { nsp, opts, rooms } => {
                self.apply_rooms(&nsp, &opts, &rooms, false);
                ClusterAction::Done
            }
            ClusterOp::DisconnectSockets { nsp, opts, close } => ClusterAction::Disconnect {
                targets: self.sockets(&nsp, &opts),
                close,
            },
            ClusterOp::PersistSession { .. } => ClusterAction::Done,
        }
    }

    /// Carries out an operation as the cluster ordered it: `offset` is its
    /// place in the cluster's order, and `own` says whether this node
    /// published it.
    ///
    /// When the cluster's adapter owns recovery (see
    /// [`set_cluster_recovery`](Endpoint::set_cluster_recovery)), a
    /// broadcast that is stored gets `offset` appended to its arguments and
    /// is planned here, whichever node published it (this node's own were
    /// deferred). Otherwise this node's own operations were carried out
    /// when they were made (nothing is done again), and the others' as
    /// [`handle_cluster_op`](Endpoint::handle_cluster_op) does.
    pub fn handle_cluster_op_at(
        &mut self,
        now: Instant,
        op: ClusterOp,
        offset: &str,
        own: bool,
    ) -> ClusterAction {
        match op {
            ClusterOp::Broadcast { packet, opts }
                if self.cluster_recovery() && Store::keeps(&packet, opts.volatile) =>
            {
                let targets = self
                    .index
                    .get(packet.nsp.as_str())
                    .map(|i| i.targets_with(&opts, |_, handle| handle))
                    .unwrap_or_default();
                let stamped = Store::stamp_with(&packet, Str::from(offset));
                let (packet, stored) = match &stamped {
                    Some((stamped, _)) => (stamped, true),
                    None => (&packet, false),
                };
                ClusterAction::Broadcast(Broadcast {
                    encoded: Encoded::with_parser(packet, ProtocolVersion::V5, self.config.parser)
                        .with_compress(opts.compress),
                    targets,
                    volatile: false,
                    stored,
                    deferred: false,
                })
            }
            _ if own => ClusterAction::Done,
            op => self.handle_cluster_op(now, op),
        }
    }

    /// Carries out an operation of this node's that the cluster could not
    /// take (its backend was away): a broadcast that was
    /// [deferred](Broadcast::deferred) is planned here after all, without an
    /// offset (as the reference delivers a broadcast it could not publish);
    /// anything else was carried out when it was made.
    pub fn handle_unpublished_op(&mut self, now: Instant, op: ClusterOp) -> ClusterAction {
        match op {
            ClusterOp::Broadcast { packet, opts }
                if self.cluster_recovery() && Store::keeps(&packet, opts.volatile) =>
            {
                ClusterAction::Broadcast(self.plan(now, &packet, &opts))
            }
            _ => ClusterAction::Done,
        }
    }
}

/// A broadcast, planned: the packet encoded once and where it goes.
#[derive(Debug, Clone)]
pub struct Broadcast {
    /// The packet's bytes, shared by every recipient.
    pub encoded: Encoded,
    /// The connections to send it to (one per recipient socket).
    pub targets: Vec<ConnectionHandle>,
    /// Whether the packet is volatile (pass it to [`Connection::send_encoded`]).
    pub volatile: bool,
    /// Whether it was stored for recovery, with an offset: hand it to every
    /// connection before any broadcast planned after it.
    pub stored: bool,
    /// Whether it is delivered later, here too, when the cluster gives it
    /// back with its offset (see [`Endpoint::set_cluster_recovery`]): no
    /// connection gets [`encoded`](Broadcast::encoded) now.
    pub deferred: bool,
}

#[cfg(test)]
mod layout {
    use super::*;

    #[test]
    fn a_socket_entry_stays_small() {
        // One per socket in the rooms index: a guard of the layout.
        assert!(std::mem::size_of::<SocketEntry<()>>() <= 32);
        // With a pointer attached, as the tokio binding does.
        assert!(std::mem::size_of::<SocketEntry<std::sync::Arc<()>>>() <= 32);
    }
}
