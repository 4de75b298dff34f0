//! A Socket.IO client that performs no I/O and reads no clock.
//!
//! `socketio-client-proto` is the whole client side of Engine.IO v4 and Socket.IO v5 as a state
//! machine, after the official JavaScript client (`socket.io-client` 4, `engine.io-client` 6):
//! the handshake over long-polling or WebSocket, the upgrade to WebSocket (the probe), the
//! heartbeat (a server silent past `pingInterval + pingTimeout` is gone), `maxPayload` on
//! polling writes, several namespaces over one connection with auth, refusals with their data,
//! events and acknowledgements both ways with timeouts, binary attachments, volatile emits,
//! emits buffered while disconnected, connection state recovery, and reconnection with the
//! official client's randomised exponential delays.
//!
//! HTTP responses, WebSocket messages and the current time go in; HTTP requests, WebSocket
//! messages, the next deadline and application events come out. It owns no sockets, tasks,
//! threads, channels, locks or clocks, so it runs under any runtime, in a test with virtual time,
//! or in a fuzzer. It does not parse HTTP, speak WebSocket framing, resolve names or do TLS:
//! that is the binding's part (see `socketio-client`).
//!
//! A server's bad input never panics and never returns an `Err`: it closes the connection with a
//! [`DisconnectReason`] and the client reconnects. Every buffer has a bound
//! ([`Config::max_incoming`], [`Config::max_attachments`], [`Config::max_buffered`]).
//!
//! # Driving the client
//!
//! After every input (`handle_*`) or command, drain [`Client::poll_transmit`] and
//! [`Client::poll_event`], then call [`Client::handle_timeout`] when [`Client::poll_timeout`]
//! passes.
//!
//! ```
//! use std::time::Instant;
//! use bytes::Bytes;
//! use socketio_client_proto::{Client, Config, EmitOptions, Event, Method, Transmit, Transports};
//!
//! let config = Config { transports: Transports::Polling, ..Config::default() };
//! let mut client = Client::new(config, 1);
//! let now = Instant::now();
//! client.connect(now, "/", None)?;
//!
//! // The handshake: a GET, answered with the open packet.
//! let Some(Transmit::Http { id, method: Method::Get, path_and_query, .. }) = client.poll_transmit() else {
//!     panic!("a handshake request");
//! };
//! assert_eq!(path_and_query, "/socket.io/?EIO=4&transport=polling");
//! let open = r#"0{"sid":"s1","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;
//! client.handle_response(now, id, 200, Bytes::from(open));
//! assert!(matches!(client.poll_event(), Some(Event::Open { .. })));
//!
//! // The CONNECT packet for `/` goes out in a POST; the next GET polls.
//! let mut post = None;
//! let mut get = None;
//! while let Some(t) = client.poll_transmit() {
//!     if let Transmit::Http { id, method, body, .. } = t {
//!         match method {
//!             Method::Post => post = Some((id, body)),
//!             Method::Get => get = Some(id),
//!         }
//!     }
//! }
//! let (post, body) = post.unwrap();
//! assert_eq!(body, "40");
//! client.handle_response(now, post, 200, Bytes::from("ok"));
//!
//! // The server's answer comes in the poll.
//! client.handle_response(now, get.unwrap(), 200, Bytes::from(r#"40{"sid":"abc"}"#));
//! assert!(matches!(client.poll_event(), Some(Event::Connect { recovered: false, .. })));
//! assert_eq!(client.socket_id("/"), Some("abc"));
//!
//! // An emit that asks for an acknowledgement.
//! let id = client.emit(now, "/", "hello", &("world",), EmitOptions { ack: true, ..Default::default() })?;
//! assert_eq!(id, Some(0));
//! let body = std::iter::from_fn(|| client.poll_transmit()).find_map(|t| match t {
//!     Transmit::Http { method: Method::Post, body, .. } => Some(body),
//!     _ => None,
//! });
//! assert_eq!(body.unwrap(), r#"420["hello","world"]"#);
//! # Ok::<(), socketio_client_proto::EmitError>(())
//! ```

mod backoff;
mod client;
mod config;
mod engine;
mod types;

pub use client::{Client, EmitOptions};
pub use config::{Config, Transports};
pub use types::{
    AckError, ConnectError, DisconnectReason, EmitError, Event, EventMessage, Method, RequestId,
    Transmit, TransportKind,
};

pub use engineio_packet::{self, Data, Str};
pub use socketio_packet::{self, Packet, PacketKind, Payload};
