//! A Socket.IO server that performs no I/O and reads no clock.
//!
//! `socketio-proto` is the whole server-side protocol, Engine.IO (v4, and v3
//! behind [`Config::allow_eio3`]) and Socket.IO (v5, and v4 for those old
//! clients) together, as a state machine: HTTP requests, WebSocket frames and
//! the current time go in; HTTP responses, frames to send, the next deadline
//! and application events come out. It owns no sockets, tasks, threads,
//! channels, locks or clocks, so it runs under any runtime, in a test with
//! virtual time, or in a fuzzer.
//!
//! It is split like a QUIC stack: an [`Endpoint`] routes requests to
//! sessions, creates new ones and keeps the namespaces and rooms; each
//! [`Connection`] is one Engine.IO session and the Socket.IO sockets it
//! carries. A binding may run every connection on its own task.
//!
//! Long-polling is served over XHR and, for clients that ask with a `j`
//! query parameter, over JSONP (see [`jsonp`]).
//!
//! It does not parse HTTP, speak WebSocket framing, compress, or apply CORS:
//! that is the binding's part (see `socketio-tokio`).
//!
//! # Driving a connection
//!
//! After every input (`handle_*`) or command, drain the outputs in this
//! order: [`Connection::poll_response`], [`Connection::poll_transmit`],
//! [`Connection::poll_endpoint_event`] (into [`Endpoint::handle_event`]),
//! [`Connection::poll_event`]; then call [`Connection::handle_timeout`] when
//! [`Connection::poll_timeout`] passes.
//!
//! ```
//! use std::time::Instant;
//! use socketio_proto::{Config, Endpoint, IdGenerator, Request, RequestId, Route, Event};
//!
//! let mut endpoint = Endpoint::with_ids(Config::default(), IdGenerator::from_seed([0; 32]));
//! let now = Instant::now();
//! // A client's handshake over long-polling.
//! let req = Request::get("/socket.io/?EIO=4&transport=polling");
//! let Route::New(handle, mut conn) = endpoint.handle_request(now, RequestId(1), &req) else {
//!     panic!("a handshake opens a session");
//! };
//! let (id, response) = conn.poll_response().unwrap();
//! assert_eq!(id, RequestId(1));
//! assert!(response.body_text().starts_with("0{\"sid\":"));
//!
//! // The client joins `/`.
//! let post = Request::post(&format!("/socket.io/?EIO=4&transport=polling&sid={}", conn.sid()), "40");
//! conn.handle_request(now, RequestId(2), post);
//! assert_eq!(conn.poll_response().unwrap().1.body_text(), "ok");
//! let Some(Event::ConnectRequest { nsp, .. }) = conn.poll_event() else { panic!() };
//! let socket_id = conn.accept(&nsp).unwrap();
//! while let Some(ev) = conn.poll_endpoint_event() {
//!     endpoint.handle_event(now, handle, ev);
//! }
//! assert_eq!(endpoint.socket_count("/"), 1);
//!
//! // The next poll carries the CONNECT answer with the socket id.
//! let get = Request::get(&format!("/socket.io/?EIO=4&transport=polling&sid={}", conn.sid()));
//! conn.handle_request(now, RequestId(3), get);
//! let (_, response) = conn.poll_response().unwrap();
//! assert_eq!(response.body_text(), format!("40{{\"sid\":\"{socket_id}\"}}"));
//! ```

mod config;
mod connection;
mod endpoint;
pub mod http;
mod ids;
pub mod jsonp;
mod recovery;
mod types;

pub use config::{Config, Parser, Recovery, Transports};
pub use connection::{Connection, Counters};
pub use endpoint::{
    Broadcast, BroadcastOptions, ClusterAction, ClusterOp, ClusterSession, Endpoint,
    MissedBroadcast, NamespaceMatcher, RoomEvent, Route,
};
pub use http::{ContentType, HttpError, Method, Request, Response};
pub use ids::{IdGenerator, MAX_SESSION_ID_LEN, SessionIdError, check_session_id};
pub use recovery::{Kept, NotRecovered, PACKET_OVERHEAD, Restored, SESSION_OVERHEAD};
pub use types::{
    ConnectionHandle, DisconnectReason, Encoded, EndpointEvent, Event, EventMessage, HandleHasher,
    HandleMap, RequestId, Resume, SendError, Transmit, TransportKind,
};

pub use engineio_packet::{self, Data, Str};
pub use socketio_packet::{self, Packet, PacketKind, Payload};
