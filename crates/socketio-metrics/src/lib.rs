//! Prometheus metrics for a [`socketio_tokio`] server, in the Prometheus
//! text format, encoded by the official Rust client (`prometheus-client`).
//!
//! Every value is read from the server when it is scraped
//! ([`SocketIo::stats`] and the live counts): nothing is counted twice and
//! nothing runs between scrapes.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `socketio_connections` | gauge: live Engine.IO sessions | `transport` |
//! | `socketio_connections_opened_total` | counter | `transport` (the one it opened with) |
//! | `socketio_connections_closed_total` | counter | `reason` |
//! | `socketio_upgrades_total`, `socketio_upgrades_failed_total` | counter | |
//! | `socketio_sockets` | gauge: connected sockets | `namespace` |
//! | `socketio_sockets_connected_total` | counter | |
//! | `socketio_sockets_disconnected_total` | counter | `reason` |
//! | `socketio_handshakes_refused_total` | counter | `reason` |
//! | `socketio_packets_received_total`, `socketio_packets_sent_total` | counter: Engine.IO packets | |
//! | `socketio_bytes_received_total`, `socketio_bytes_sent_total` | counter | |
//! | `socketio_events_received_total` | counter: Socket.IO events from clients | |
//! | `socketio_broadcasts_total`, `socketio_broadcast_recipients_total` | counter: broadcasts and their fan-out | |
//! | `socketio_ack_timeouts_total` | counter | |
//! | `socketio_buffer_overflows_total` | counter: send buffers over `max_buffer_size` | |
//! | `socketio_adapter_queue_depth`, `socketio_adapter_queue_capacity` | gauge (with an adapter that counts them: `socketio-redis`) | |
//! | `socketio_adapter_reconnects_total`, `socketio_adapter_dropped_total` | counter (with an adapter that counts them) | |
//!
//! ```no_run
//! use socketio_tokio::SocketIo;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let io = SocketIo::new()?;
//! let metrics = socketio_metrics::Metrics::new(&io);
//! let app: axum::Router = axum::Router::new()
//!     .route_service("/metrics", metrics)
//!     .layer(io.layer());
//! # let _ = app;
//! # Ok(())
//! # }
//! ```

use std::convert::Infallible;
use std::fmt;
use std::future::{Ready, ready};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::Full;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use socketio_tokio::SocketIo;

/// The content type of the Prometheus text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A server's metrics: render them, answer a scrape with them, or register
/// them in a registry of the application's own.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// The metrics of `io`, in a registry of their own.
    pub fn new(io: &SocketIo) -> Metrics {
        let mut registry = Registry::default();
        register(io, &mut registry);
        Metrics {
            registry: Arc::new(registry),
        }
    }

    /// The metrics, in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String does not fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        out
    }

    /// A scrape's answer: the metrics with their content type.
    pub fn response(&self) -> http::Response<Full<Bytes>> {
        let mut res = http::Response::new(Full::new(Bytes::from(self.render())));
        res.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static(CONTENT_TYPE),
        );
        res
    }
}

/// Answers every request with the metrics: mount it on the path the
/// application chooses (`axum::Router::route_service("/metrics", metrics)`).
impl<B> tower_service::Service<http::Request<B>> for Metrics {
    type Response = http::Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: http::Request<B>) -> Self::Future {
        ready(Ok(self.response()))
    }
}

/// Registers the metrics of `io` in `registry` (an application's own, next
/// to its metrics).
pub fn register(io: &SocketIo, registry: &mut Registry) {
    registry.register_collector(Box::new(ServerCollector { io: io.clone() }));
}

/// Reads the server at each scrape.
struct ServerCollector {
    io: SocketIo,
}

impl fmt::Debug for ServerCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerCollector").finish_non_exhaustive()
    }
}

fn counter(enc: &mut DescriptorEncoder<'_>, name: &str, help: &str, v: u64) -> fmt::Result {
    let c = ConstCounter::new(v);
    c.encode(enc.encode_descriptor(name, help, None, c.metric_type())?)
}

fn gauge(enc: &mut DescriptorEncoder<'_>, name: &str, help: &str, v: u64) -> fmt::Result {
    let g = ConstGauge::new(i64::try_from(v).unwrap_or(i64::MAX));
    g.encode(enc.encode_descriptor(name, help, None, g.metric_type())?)
}

/// A counter with one label, one series per value.
fn labelled_counters<'a>(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    label: &'static str,
    values: impl IntoIterator<Item = (&'a str, u64)>,
) -> fmt::Result {
    let mut family =
        enc.encode_descriptor(name, help, None, ConstCounter::new(0u64).metric_type())?;
    for (value, n) in values {
        let labels = [(label, value)];
        ConstCounter::new(n).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// A gauge with one label, one series per value.
fn labelled_gauges<'a>(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    label: &'static str,
    values: impl IntoIterator<Item = (&'a str, u64)>,
) -> fmt::Result {
    let mut family =
        enc.encode_descriptor(name, help, None, ConstGauge::new(0i64).metric_type())?;
    for (value, n) in values {
        let labels = [(label, value)];
        ConstGauge::new(i64::try_from(n).unwrap_or(i64::MAX))
            .encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

impl Collector for ServerCollector {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> fmt::Result {
        let io = &self.io;
        let s = io.stats();
        let (polling, websocket) = io.connections_by_transport();
        labelled_gauges(
            &mut enc,
            "socketio_connections",
            "Live Engine.IO sessions, by their transport now.",
            "transport",
            [("polling", polling as u64), ("websocket", websocket as u64)],
        )?;
        labelled_counters(
            &mut enc,
            "socketio_connections_opened",
            "Engine.IO sessions opened, by the transport they opened with.",
            "transport",
            [
                ("polling", s.connections_opened_polling),
                ("websocket", s.connections_opened_websocket),
            ],
        )?;
        labelled_counters(
            &mut enc,
            "socketio_connections_closed",
            "Engine.IO sessions closed, by reason.",
            "reason",
            s.connections_closed.iter().map(|(r, n)| (r.as_str(), *n)),
        )?;
        counter(
            &mut enc,
            "socketio_upgrades",
            "Sessions upgraded from long-polling to WebSocket.",
            s.upgrades,
        )?;
        counter(
            &mut enc,
            "socketio_upgrades_failed",
            "Upgrades to WebSocket that did not complete.",
            s.upgrades_failed,
        )?;
        let namespaces = io.namespaces();
        labelled_gauges(
            &mut enc,
            "socketio_sockets",
            "Connected sockets, by namespace.",
            "namespace",
            namespaces.iter().map(|(nsp, n)| (&**nsp, *n as u64)),
        )?;
        counter(
            &mut enc,
            "socketio_sockets_connected",
            "Sockets that joined a namespace.",
            s.sockets_connected,
        )?;
        labelled_counters(
            &mut enc,
            "socketio_sockets_disconnected",
            "Sockets that left their namespace, by reason.",
            "reason",
            s.sockets_disconnected.iter().map(|(r, n)| (r.as_str(), *n)),
        )?;
        labelled_counters(
            &mut enc,
            "socketio_handshakes_refused",
            "Handshakes refused, by reason.",
            "reason",
            s.handshakes_refused.iter().map(|(r, n)| (r.as_str(), *n)),
        )?;
        counter(
            &mut enc,
            "socketio_packets_received",
            "Engine.IO packets received.",
            s.packets_in,
        )?;
        counter(
            &mut enc,
            "socketio_packets_sent",
            "Engine.IO packets sent.",
            s.packets_out,
        )?;
        counter(
            &mut enc,
            "socketio_bytes_received",
            "Bytes of the Engine.IO packets received.",
            s.bytes_in,
        )?;
        counter(
            &mut enc,
            "socketio_bytes_sent",
            "Bytes of the Engine.IO packets sent.",
            s.bytes_out,
        )?;
        counter(
            &mut enc,
            "socketio_events_received",
            "Socket.IO events received from clients.",
            s.events_in,
        )?;
        counter(
            &mut enc,
            "socketio_broadcasts",
            "Broadcasts delivered on this node.",
            s.broadcasts,
        )?;
        counter(
            &mut enc,
            "socketio_broadcast_recipients",
            "Connections the broadcasts were handed to on this node.",
            s.broadcast_recipients,
        )?;
        counter(
            &mut enc,
            "socketio_ack_timeouts",
            "Acknowledgements that did not come in time.",
            s.ack_timeouts,
        )?;
        counter(
            &mut enc,
            "socketio_buffer_overflows",
            "Connections closed because their send buffer went over max_buffer_size.",
            s.buffer_overflows,
        )?;
        if let Some(a) = io.adapter_stats() {
            gauge(
                &mut enc,
                "socketio_adapter_queue_depth",
                "Messages waiting to be published to the other nodes.",
                a.queue_depth,
            )?;
            gauge(
                &mut enc,
                "socketio_adapter_queue_capacity",
                "The most messages the adapter's publish queue holds.",
                a.queue_capacity,
            )?;
            counter(
                &mut enc,
                "socketio_adapter_reconnects",
                "Times the adapter reconnected to its backend.",
                a.reconnects,
            )?;
            counter(
                &mut enc,
                "socketio_adapter_dropped",
                "Messages for the other nodes that the adapter dropped.",
                a.dropped,
            )?;
        }
        Ok(())
    }
}
