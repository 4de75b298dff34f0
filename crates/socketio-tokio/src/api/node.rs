//! [`LocalNode`]: this node as a cluster adapter sees it, where the other
//! nodes' operations are delivered and their queries answered.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Weak;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::{BoxStream, FuturesUnordered};
use socketio_proto::socketio_packet::Packet;
use socketio_proto::{BroadcastOptions, ClusterOp, Payload, Str};

use crate::api::server::{Order, Shared, State};
use crate::api::socket::SocketInner;
use crate::cluster::{RemoteSocket, ServerAck, ServerSideEvent, ServerSideHandler};
use crate::error::AckError;

/// This node, as an adapter sees it: where it delivers what the other nodes
/// send, and what it answers their queries with.
///
/// It holds the server weakly: once the server is dropped, every method does
/// nothing and answers empty.
#[derive(Clone)]
pub struct LocalNode {
    shared: Weak<Shared>,
}

impl fmt::Debug for LocalNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalNode").finish_non_exhaustive()
    }
}

impl LocalNode {
    pub(crate) fn new(shared: Weak<Shared>) -> LocalNode {
        LocalNode { shared }
    }

    /// Whether the server is still there.
    pub fn is_alive(&self) -> bool {
        self.shared.strong_count() > 0
    }

    /// Carries out an operation another node published: delivers a
    /// broadcast to the local sockets it selects, changes their rooms, or
    /// disconnects them. Nothing is published again.
    pub fn apply(&self, op: ClusterOp) {
        if let Some(shared) = self.shared.upgrade() {
            shared.apply_cluster_op(op);
        }
    }

    /// Carries out an operation in the cluster's order, for an adapter that
    /// [owns recovery](crate::Adapter::owns_recovery): `offset` is its place
    /// in that order, and `own` says whether this node published it. A
    /// broadcast that is stored for recovery is delivered with `offset` as
    /// its last argument, this node's own too (they were not delivered when
    /// emitted); this node's other operations were carried out already.
    /// Call it in the cluster's order.
    pub fn apply_at(&self, op: ClusterOp, offset: &str, own: bool) {
        if let Some(shared) = self.shared.upgrade() {
            shared.apply_cluster_op_at(op, Order::At { offset, own });
        }
    }

    /// Carries out an operation of this node's that the adapter could not
    /// publish (its backend was away), for an adapter that
    /// [owns recovery](crate::Adapter::owns_recovery): a broadcast that
    /// waited for the cluster to give it back is delivered here without an
    /// offset, as the reference does; nothing else is done again.
    pub fn apply_unpublished(&self, op: ClusterOp) {
        if let Some(shared) = self.shared.upgrade() {
            shared.apply_cluster_op_at(op, Order::Unpublished);
        }
    }

    /// The local sockets of `nsp` that `opts` selects, described for the
    /// other nodes.
    pub fn fetch_sockets(&self, nsp: &str, opts: &BroadcastOptions) -> Vec<RemoteSocket> {
        let Some(shared) = self.shared.upgrade() else {
            return Vec::new();
        };
        let state = shared.read();
        state
            .sockets_with_data(nsp, opts)
            .into_iter()
            .map(|(_, _, socket)| describe(&state, socket))
            .collect()
    }

    /// The ids of the local sockets of `nsp` that `opts` selects.
    pub fn socket_ids(&self, nsp: &str, opts: &BroadcastOptions) -> Vec<Str> {
        match self.shared.upgrade() {
            Some(shared) => shared
                .read()
                .sockets(nsp, opts)
                .into_iter()
                .map(|(sid, _)| sid)
                .collect(),
            None => Vec::new(),
        }
    }

    /// The rooms of `nsp` that have local members.
    pub fn rooms(&self, nsp: &str) -> Vec<Str> {
        match self.shared.upgrade() {
            Some(shared) => shared.read().rooms(nsp),
            None => Vec::new(),
        }
    }

    /// Hands a server-side emit of another node (`data`: the event name and
    /// its arguments) to the handlers registered with
    /// [`SocketIo::on_server_side_emit`](crate::SocketIo::on_server_side_emit); ignored when `data` has no name.
    pub fn server_side_emit(
        &self,
        nsp: &str,
        data: Vec<serde_json::Value>,
        ack: Option<ServerAck>,
    ) {
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        let mut data = data.into_iter();
        let Some(serde_json::Value::String(event)) = data.next() else {
            tracing::debug!(%nsp, "ignoring a server-side emit without an event name");
            return;
        };
        let args: Vec<serde_json::Value> = data.collect();
        let handlers: Vec<ServerSideHandler> = shared
            .server_side
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for handler in handlers {
            handler(ServerSideEvent {
                nsp: Str::from(nsp),
                event: event.clone(),
                args: args.clone(),
                ack: ack.clone(),
            });
        }
    }

    /// Sends `packet` (an event) to the local sockets `opts` selects,
    /// awaiting each one's acknowledgement for `timeout`: how many sockets
    /// it went to, and their acknowledgements as they come (the other
    /// nodes' `emitWithAck` across the cluster).
    pub fn broadcast_with_ack(
        &self,
        packet: Packet,
        opts: &BroadcastOptions,
        timeout: Duration,
    ) -> (usize, BoxStream<'static, Result<Payload, AckError>>) {
        let pending = FuturesUnordered::new();
        if let Some(shared) = self.shared.upgrade() {
            for (_, rx) in shared.emit_with_acks(&packet, opts, timeout) {
                pending.push(async move { rx.await.unwrap_or(Err(AckError::Disconnected)) });
            }
        }
        (pending.len(), pending.boxed())
    }

    /// Puts local socket `sid` of `nsp` in `room` (or takes it out); false
    /// when there is no such socket here.
    pub fn join_or_leave(&self, nsp: &str, sid: &str, room: &str, join: bool) -> bool {
        let Some(shared) = self.shared.upgrade() else {
            return false;
        };
        let mut state = shared.lock();
        let Some(sid) = state.socket(nsp, sid).map(|s| s.id.clone()) else {
            return false;
        };
        if join {
            state.join(nsp, &sid, Str::from(room));
        } else {
            state.leave(nsp, &sid, room);
        }
        true
    }
}

/// Describes a local socket the way the reference's `fetchSockets` answers.
fn describe(state: &State, socket: &SocketInner) -> RemoteSocket {
    let hs = &socket.handshake;
    let mut headers = serde_json::Map::new();
    for (name, value) in hs.headers() {
        if let Ok(v) = value.to_str() {
            headers.insert(name.as_str().to_owned(), v.into());
        }
    }
    let mut query = BTreeMap::new();
    for pair in hs.query().split('&').filter(|p| !p.is_empty()) {
        let key = pair.split('=').next().unwrap_or_default();
        if let Some(value) = hs.query_param(key) {
            query.insert(key.to_owned(), value);
        }
    }
    let auth = hs
        .auth_payload()
        .and_then(|p| p.deserialize::<serde_json::Value>().ok())
        .unwrap_or_else(|| serde_json::json!({}));
    let secure = hs
        .headers()
        .get("x-forwarded-proto")
        .is_some_and(|v| v.as_bytes() == b"https");
    let handshake = serde_json::json!({
        "headers": headers,
        "time": js_date(hs.issued()),
        "address": hs.remote_addr().map(|a| a.ip().to_string()).unwrap_or_default(),
        "xdomain": hs.headers().contains_key("origin"),
        "secure": secure,
        "issued": hs.issued(),
        "url": hs.uri().to_string(),
        "query": query,
        "auth": auth,
    });
    RemoteSocket::new(
        socket.id.to_string(),
        handshake,
        state
            .rooms_of(&socket.nsp, &socket.id)
            .iter()
            .map(|r| r.to_string())
            .collect(),
        described_data(socket),
    )
}

/// The socket's data with the fields set by
/// [`Socket::set_data_field`](crate::Socket::set_data_field).
fn described_data(socket: &SocketInner) -> serde_json::Value {
    let mut data = socket
        .data()
        .as_deref()
        .and_then(|d| serde_json::from_str(d).ok())
        .unwrap_or_else(|| serde_json::json!({}));
    if let serde_json::Value::Object(map) = &mut data
        && let Some(extras) = socket.extras().as_deref()
    {
        for (name, value) in &extras.data_fields {
            map.insert(name.clone(), value.clone());
        }
    }
    data
}

/// Milliseconds since the epoch as JavaScript's `new Date().toString()`
/// writes them on a server in UTC (the reference's `handshake.time`).
fn js_date(ms: u64) -> String {
    let at = crate::clock::Civil::from_unix(ms / 1000);
    format!(
        "{} {} {:02} {} {:02}:{:02}:{:02} GMT+0000 (Coordinated Universal Time)",
        at.weekday,
        at.month_name(),
        at.day,
        at.year,
        at.hour,
        at.minute,
        at.second
    )
}

#[cfg(test)]
mod tests {
    use super::js_date;

    #[test]
    fn dates_as_javascript_writes_them() {
        const UTC: &str = "GMT+0000 (Coordinated Universal Time)";
        assert_eq!(js_date(0), format!("Thu Jan 01 1970 00:00:00 {UTC}"));
        assert_eq!(
            js_date(1_700_000_000_000),
            format!("Tue Nov 14 2023 22:13:20 {UTC}")
        );
        assert_eq!(
            js_date(951_782_400_000),
            format!("Tue Feb 29 2000 00:00:00 {UTC}")
        );
    }
}
