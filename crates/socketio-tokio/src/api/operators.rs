//! Broadcast operators: select sockets of a namespace, then emit to them,
//! collect their acknowledgements, or act on them.

use std::fmt;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Weak;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::stream::FuturesUnordered;
use futures_util::{Stream, StreamExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use socketio_proto::socketio_packet::Packet;
use socketio_proto::{BroadcastOptions, Payload, Str};
use tokio::sync::oneshot;

use crate::api::node::LocalNode;
use crate::api::server::Shared;
use crate::api::socket::Socket;
use crate::cluster::{AdapterError, RemoteSocket};
use crate::error::{AckError, EmitError};

/// One or more room names.
///
/// ```
/// # fn f(socket: socketio_tokio::Socket) {
/// socket.join("a");
/// socket.join(String::from("b"));
/// socket.join(["c", "d"]);
/// socket.join(vec!["e".to_string()]);
/// # }
/// ```
pub trait RoomParam {
    /// The room names.
    fn into_rooms(self) -> Vec<Str>;
}

impl RoomParam for &str {
    fn into_rooms(self) -> Vec<Str> {
        vec![Str::from(self)]
    }
}

impl RoomParam for String {
    fn into_rooms(self) -> Vec<Str> {
        vec![Str::from(self)]
    }
}

impl RoomParam for &String {
    fn into_rooms(self) -> Vec<Str> {
        vec![Str::from(self.as_str())]
    }
}

impl RoomParam for Str {
    fn into_rooms(self) -> Vec<Str> {
        vec![self]
    }
}

impl<T: RoomParam> RoomParam for Vec<T> {
    fn into_rooms(self) -> Vec<Str> {
        self.into_iter().flat_map(RoomParam::into_rooms).collect()
    }
}

impl<T: RoomParam, const N: usize> RoomParam for [T; N] {
    fn into_rooms(self) -> Vec<Str> {
        self.into_iter().flat_map(RoomParam::into_rooms).collect()
    }
}

/// A selection of sockets of one namespace, built with `to`, `except`,
/// `local`, `volatile` and `timeout`, then used once: emit, emit with
/// acknowledgements, fetch, join, leave, or disconnect.
///
/// ```
/// # fn f(io: socketio_tokio::SocketIo) -> Result<(), socketio_tokio::EmitError> {
/// use std::time::Duration;
/// io.of("/chat").to("room1").except("muted").emit("news", &"hello")?;
/// io.to(["a", "b"]).volatile().emit("tick", &1)?;
/// io.of("/chat").to("room1").join("room2");
/// let n = io.of("/chat").sockets().len();
/// # let _ = n;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct BroadcastOperator {
    pub(crate) shared: Weak<Shared>,
    pub(crate) nsp: Str,
    pub(crate) opts: BroadcastOptions,
    pub(crate) timeout: Option<Duration>,
}

impl fmt::Debug for BroadcastOperator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BroadcastOperator")
            .field("nsp", &self.nsp)
            .field("rooms", &self.opts.rooms)
            .field("except", &self.opts.except)
            .field("local", &self.opts.local)
            .field("volatile", &self.opts.volatile)
            .field("compress", &self.opts.compress)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl BroadcastOperator {
    pub(crate) fn new(shared: Weak<Shared>, nsp: Str, sender: Option<Str>) -> Self {
        BroadcastOperator {
            shared,
            nsp,
            opts: BroadcastOptions {
                except: sender.into_iter().collect(),
                ..BroadcastOptions::default()
            },
            timeout: None,
        }
    }

    /// Only sockets in one of `rooms` (added to earlier ones).
    pub fn to(mut self, rooms: impl RoomParam) -> Self {
        self.opts.rooms.extend(rooms.into_rooms());
        self
    }

    /// An alias of [`to`](BroadcastOperator::to).
    pub fn within(self, rooms: impl RoomParam) -> Self {
        self.to(rooms)
    }

    /// Not the sockets in any of `rooms` (a socket id is a room).
    pub fn except(mut self, rooms: impl RoomParam) -> Self {
        self.opts.except.extend(rooms.into_rooms());
        self
    }

    /// Only sockets on this node: nothing goes to the other nodes of a cluster.
    pub fn local(mut self) -> Self {
        self.opts.local = true;
        self
    }

    /// The emit may be dropped for a client that cannot take it now.
    pub fn volatile(mut self) -> Self {
        self.opts.volatile = true;
        self
    }

    /// Whether the emit's WebSocket frames may be compressed (the
    /// reference's `io.compress(false).emit(...)`; default true): see
    /// [`Socket::compress`](crate::Socket::compress).
    pub fn compress(mut self, compress: bool) -> Self {
        self.opts.compress = compress;
        self
    }

    /// The acknowledgement timeout of [`emit_with_ack`](BroadcastOperator::emit_with_ack).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Emits `event` to the selected sockets: encoded once, then handed to
    /// each socket's connection.
    ///
    /// # Errors
    ///
    /// [`EmitError::Encode`] when `args` cannot be serialized.
    pub fn emit<T: Serialize + ?Sized>(self, event: &str, args: &T) -> Result<(), EmitError> {
        let packet = Packet::event(self.nsp.clone(), event, args, None)?;
        if let Some(shared) = self.shared.upgrade() {
            shared.broadcast(packet, &self.opts);
        }
        Ok(())
    }

    /// Emits `event` to the selected sockets and collects their
    /// acknowledgements as a stream of `(socket id, result)`, one per
    /// socket, ending when all answered or timed out.
    ///
    /// ```
    /// # async fn f(io: socketio_tokio::SocketIo) -> Result<(), socketio_tokio::EmitError> {
    /// use futures_util::StreamExt;
    /// let mut acks = io.of("/").emit_with_ack::<(String,), _>("name?", &())?;
    /// while let Some((id, answer)) = acks.next().await {
    ///     println!("{id}: {answer:?}");
    /// }
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`EmitError::Encode`] when `args` cannot be serialized.
    pub fn emit_with_ack<V, T>(self, event: &str, args: &T) -> Result<AckStream<V>, EmitError>
    where
        V: DeserializeOwned,
        T: Serialize + ?Sized,
    {
        let packet = Packet::event(self.nsp.clone(), event, args, None)?;
        let pending = FuturesUnordered::new();
        if let Some(shared) = self.shared.upgrade() {
            let timeout = self.timeout.unwrap_or(shared.options.ack_timeout);
            for (sid, rx) in shared.emit_with_acks(&packet, &self.opts, timeout) {
                pending.push(AckWait { sid, rx });
            }
        }
        Ok(AckStream {
            pending,
            _v: PhantomData,
        })
    }

    /// The selected sockets.
    pub fn sockets(self) -> Vec<Socket> {
        match self.shared.upgrade() {
            Some(shared) => shared.sockets(&self.nsp, &self.opts),
            None => Vec::new(),
        }
    }

    /// Makes the selected sockets join `rooms`.
    pub fn join(self, rooms: impl RoomParam) {
        let rooms = rooms.into_rooms();
        if let Some(shared) = self.shared.upgrade() {
            shared.lock().add_sockets(&self.nsp, &self.opts, &rooms);
        }
    }

    /// Makes the selected sockets leave `rooms`.
    pub fn leave(self, rooms: impl RoomParam) {
        let rooms = rooms.into_rooms();
        if let Some(shared) = self.shared.upgrade() {
            shared.lock().del_sockets(&self.nsp, &self.opts, &rooms);
        }
    }

    /// Disconnects the selected sockets ("server namespace disconnect").
    ///
    /// # Errors
    ///
    /// None today; kept for adapters that may fail.
    pub fn disconnect(self) -> Result<(), EmitError> {
        if let Some(shared) = self.shared.upgrade() {
            shared.disconnect(&self.nsp, &self.opts, false);
        }
        Ok(())
    }

    /// Closes the connections of the selected sockets ("forced server close").
    pub fn close(self) {
        if let Some(shared) = self.shared.upgrade() {
            shared.disconnect(&self.nsp, &self.opts, true);
        }
    }

    /// The selected sockets on every node of the cluster (only this node's
    /// when [`local`](BroadcastOperator::local) or without an adapter), as
    /// descriptions: id, handshake, rooms, data.
    ///
    /// # Errors
    ///
    /// [`AdapterError`] when a node did not answer in time.
    pub async fn fetch_sockets(self) -> Result<Vec<RemoteSocket>, AdapterError> {
        let Some(shared) = self.shared.upgrade() else {
            return Ok(Vec::new());
        };
        let node = LocalNode::new(self.shared.clone());
        let mut sockets = node.fetch_sockets(&self.nsp, &self.opts);
        if !self.opts.local
            && let Some(adapter) = shared.adapter.get().cloned()
        {
            drop(shared);
            sockets.extend(adapter.fetch_sockets(self.nsp, self.opts).await?);
        }
        Ok(sockets)
    }

    /// Emits `event` to the selected sockets on every node of the cluster
    /// and collects the first argument of each acknowledgement (the
    /// reference's `io.timeout(t).emitWithAck(...)`): complete once every
    /// selected socket answered, an error when the timeout (set with
    /// [`timeout`](BroadcastOperator::timeout), else the ack timeout)
    /// passes first. Sockets that disconnect meanwhile are not waited for.
    ///
    /// # Errors
    ///
    /// [`AdapterError::Timeout`] when not every socket answered in time;
    /// [`AdapterError::Encode`] when `args` cannot be serialized or an
    /// answer is not a `V`.
    pub async fn emit_with_ack_all<V, T>(
        self,
        event: &str,
        args: &T,
    ) -> Result<Vec<V>, AdapterError>
    where
        V: DeserializeOwned,
        T: Serialize + ?Sized,
    {
        let packet = Packet::event(self.nsp.clone(), event, args, None)
            .map_err(|e| AdapterError::Encode(e.to_string()))?;
        let Some(shared) = self.shared.upgrade() else {
            return Ok(Vec::new());
        };
        let timeout = self.timeout.unwrap_or(shared.options.ack_timeout);
        let adapter = if self.opts.local {
            None
        } else {
            shared.adapter.get().cloned()
        };
        drop(shared);
        let node = LocalNode::new(self.shared.clone());
        let (_, mut local) = node.broadcast_with_ack(packet.clone(), &self.opts, timeout);
        let remote = adapter.map(|a| a.broadcast_with_ack(packet, self.opts.clone(), timeout));
        let local = async {
            let mut answers = Vec::new();
            while let Some(answer) = local.next().await {
                match answer {
                    Ok(payload) => answers.push(payload),
                    Err(AckError::Timeout) => return Err(AdapterError::Timeout("emitWithAck")),
                    Err(_) => {}
                }
            }
            Ok(answers)
        };
        let (local, remote) = match remote {
            Some(remote) => futures_util::future::join(local, remote).await,
            None => (local.await, Ok(Vec::new())),
        };
        local?
            .into_iter()
            .chain(remote?)
            .map(|p| {
                p.args::<(V,)>(0)
                    .map(|(v,)| v)
                    .map_err(|e| AdapterError::Encode(e.to_string()))
            })
            .collect()
    }
}

struct AckWait {
    sid: Str,
    rx: oneshot::Receiver<Result<Payload, AckError>>,
}

impl std::future::Future for AckWait {
    type Output = (Str, Result<Payload, AckError>);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match Pin::new(&mut self.rx).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(r) => {
                Poll::Ready((self.sid.clone(), r.unwrap_or(Err(AckError::Disconnected))))
            }
        }
    }
}

/// The acknowledgements of a broadcast, as they come: `(socket id, result)`.
#[must_use = "streams do nothing unless polled"]
pub struct AckStream<V> {
    pending: FuturesUnordered<AckWait>,
    _v: PhantomData<fn() -> V>,
}

impl<V> fmt::Debug for AckStream<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AckStream")
            .field("pending", &self.pending.len())
            .finish()
    }
}

impl<V> AckStream<V> {
    /// How many acknowledgements are still awaited.
    pub fn remaining(&self) -> usize {
        self.pending.len()
    }
}

impl<V: DeserializeOwned> Stream for AckStream<V> {
    type Item = (Str, Result<V, AckError>);

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match Pin::new(&mut self.pending).poll_next(cx) {
            Poll::Ready(Some((sid, r))) => Poll::Ready(Some((
                sid,
                r.and_then(|p| p.args(0).map_err(AckError::from)),
            ))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}
