//! Broadcast operators: select sockets of a namespace, then emit to them,
//! collect their acknowledgements, or act on them.

use std::collections::VecDeque;
use std::fmt;
use std::future::IntoFuture;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;
use futures_util::{Stream, StreamExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use socketio_proto::socketio_packet::Packet;
use socketio_proto::{BroadcastOptions, Payload, Str};
use tokio::sync::oneshot;

use crate::api::node::LocalNode;
use crate::api::ns::NsInner;
use crate::api::server::{Shared, SocketIo};
use crate::api::socket::Socket;
use crate::args::{RoomParam, arg_values, event_packet, from_args};
use crate::cluster::{Actions, AdapterError, RemoteSocket, SocketAction};
use crate::error::{AckError, EmitError};

/// A selection of sockets of one namespace (or of every namespace a
/// dynamic namespace serves), built with `to`, `except`, `local`,
/// `volatile` and `timeout`, then used once: emit, emit with
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
    /// A dynamic namespace: the operator acts on each namespace it serves.
    pub(crate) parent: Option<Arc<NsInner>>,
    pub(crate) opts: BroadcastOptions,
    pub(crate) timeout: Option<Duration>,
}

impl fmt::Debug for BroadcastOperator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BroadcastOperator")
            .field("nsp", &self.nsp)
            .field("dynamic", &self.parent.is_some())
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
            parent: None,
            opts: BroadcastOptions {
                except: sender.into_iter().collect(),
                ..BroadcastOptions::default()
            },
            timeout: None,
        }
    }

    /// The operator of a dynamic namespace: on each namespace it serves.
    pub(crate) fn children(io: &SocketIo, parent: Arc<NsInner>) -> Self {
        BroadcastOperator {
            parent: Some(parent),
            ..BroadcastOperator::new(Arc::downgrade(&io.shared), Str::from_static("/"), None)
        }
    }

    /// The namespaces acted on.
    fn namespaces(&self) -> Vec<Str> {
        match &self.parent {
            Some(parent) => parent.children(),
            None => vec![self.nsp.clone()],
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

    /// Emits `event` to the selected sockets, `args` as
    /// [`Socket::emit`](crate::Socket::emit) takes them: encoded once, then
    /// handed to each socket's connection (and, unless
    /// [`local`](BroadcastOperator::local), to the other nodes).
    ///
    /// # Errors
    ///
    /// [`EmitError::Encode`] when `args` cannot be serialized.
    pub fn emit<T: Serialize + ?Sized>(self, event: &str, args: &T) -> Result<(), EmitError> {
        let packet = event_packet(self.nsp.clone(), event, args)?;
        let Some(shared) = self.shared.upgrade() else {
            return Ok(());
        };
        let recipients = match self.parent {
            None => shared.broadcast(packet, &self.opts),
            Some(_) => self
                .namespaces()
                .into_iter()
                .map(|nsp| {
                    let packet = Packet {
                        nsp,
                        kind: packet.kind.clone(),
                    };
                    shared.broadcast(packet, &self.opts)
                })
                .sum(),
        };
        shared.stats.broadcast(recipients);
        Ok(())
    }

    /// Emits `event` to the selected sockets, on every node of the cluster
    /// unless [`local`](BroadcastOperator::local), and collects their
    /// acknowledgements, for the timeout set with
    /// [`timeout`](BroadcastOperator::timeout) (else the server's ack
    /// timeout).
    ///
    /// The [`AckStream`] yields each answer as it comes; awaited whole, it
    /// gives every answer once all came (the reference's
    /// `io.timeout(t).emitWithAck(...)`), or [`AckError::Timeout`] when one
    /// did not come in time.
    ///
    /// ```
    /// # async fn f(io: socketio_tokio::SocketIo) -> Result<(), Box<dyn std::error::Error>> {
    /// use futures_util::StreamExt;
    /// use std::time::Duration;
    /// let mut acks = io.of("/").emit_with_ack::<String, _>("name?", &())?;
    /// while let Some(ack) = acks.next().await {
    ///     println!("{:?}: {:?}", ack.socket, ack.result);
    /// }
    /// // Or all at once:
    /// let names: Vec<String> = io
    ///     .timeout(Duration::from_secs(2))
    ///     .emit_with_ack("name?", &())?
    ///     .await?;
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
        let packet = event_packet(self.nsp.clone(), event, args)?;
        let mut stream = AckStream {
            pending: FuturesUnordered::new(),
            remote: None,
            ready: VecDeque::new(),
            _v: PhantomData,
        };
        let Some(shared) = self.shared.upgrade() else {
            return Ok(stream);
        };
        let timeout = self.timeout.unwrap_or(shared.options.ack_timeout);
        let adapter = match self.opts.local {
            true => None,
            false => shared.adapter.get().cloned(),
        };
        for nsp in self.namespaces() {
            let packet = Packet {
                nsp,
                kind: packet.kind.clone(),
            };
            let pending = shared.emit_with_acks(&packet, &self.opts, timeout);
            shared.stats.broadcast(pending.len());
            for (sid, rx) in pending {
                stream.pending.push(AckWait { sid, rx });
            }
            if let Some(adapter) = &adapter {
                let remote = adapter.broadcast_with_ack(packet, self.opts.clone(), timeout);
                stream.remote = Some(match stream.remote.take() {
                    None => remote,
                    Some(before) => Box::pin(async move {
                        let (a, b) = futures_util::future::join(before, remote).await;
                        let mut all = a?;
                        all.extend(b?);
                        Ok(all)
                    }),
                });
            }
        }
        Ok(stream)
    }

    /// The selected sockets on this node.
    pub fn sockets(self) -> Vec<Socket> {
        let Some(shared) = self.shared.upgrade() else {
            return Vec::new();
        };
        self.namespaces()
            .iter()
            .flat_map(|nsp| shared.sockets(nsp, &self.opts))
            .collect()
    }

    /// Makes the selected sockets join `rooms`, on every node unless
    /// [`local`](BroadcastOperator::local).
    pub fn join(self, rooms: impl RoomParam) {
        let rooms = rooms.into_rooms();
        if let Some(shared) = self.shared.upgrade() {
            for nsp in self.namespaces() {
                shared.lock().add_sockets(&nsp, &self.opts, &rooms);
            }
        }
    }

    /// Makes the selected sockets leave `rooms`, on every node unless
    /// [`local`](BroadcastOperator::local).
    pub fn leave(self, rooms: impl RoomParam) {
        let rooms = rooms.into_rooms();
        if let Some(shared) = self.shared.upgrade() {
            for nsp in self.namespaces() {
                shared.lock().del_sockets(&nsp, &self.opts, &rooms);
            }
        }
    }

    /// Disconnects the selected sockets ("server namespace disconnect").
    ///
    /// # Errors
    ///
    /// None today; kept for adapters that may fail.
    pub fn disconnect(self) -> Result<(), EmitError> {
        if let Some(shared) = self.shared.upgrade() {
            for nsp in self.namespaces() {
                shared.disconnect(&nsp, &self.opts, false);
            }
        }
        Ok(())
    }

    /// Closes the connections of the selected sockets ("forced server close").
    pub fn close(self) {
        if let Some(shared) = self.shared.upgrade() {
            for nsp in self.namespaces() {
                shared.disconnect(&nsp, &self.opts, true);
            }
        }
    }

    /// The selected sockets on every node of the cluster (only this node's
    /// when [`local`](BroadcastOperator::local) or without an adapter):
    /// their id, handshake, rooms and data, and what can be done to each
    /// wherever it is ([`RemoteSocket::emit`], [`join`](RemoteSocket::join),
    /// [`leave`](RemoteSocket::leave), [`disconnect`](RemoteSocket::disconnect)).
    ///
    /// # Errors
    ///
    /// [`AdapterError`] when a node did not answer in time.
    pub async fn fetch_sockets(self) -> Result<Vec<RemoteSocket>, AdapterError> {
        let Some(shared) = self.shared.upgrade() else {
            return Ok(Vec::new());
        };
        let adapter = match self.opts.local {
            true => None,
            false => shared.adapter.get().cloned(),
        };
        drop(shared);
        let node = LocalNode::new(self.shared.clone());
        let mut all = Vec::new();
        for nsp in self.namespaces() {
            let mut sockets = node.fetch_sockets(&nsp, &self.opts);
            if let Some(adapter) = &adapter {
                sockets.extend(
                    adapter
                        .fetch_sockets(nsp.clone(), self.opts.clone())
                        .await?,
                );
            }
            let actions = Actions(Some(socket_actions(self.shared.clone(), nsp)));
            for socket in &mut sockets {
                socket.actions = actions.clone();
            }
            all.extend(sockets);
        }
        Ok(all)
    }

    /// Sends `event` with `args` to the other nodes of the cluster (not to
    /// clients) on this namespace, `args` by the one convention (the
    /// reference's `namespace.serverSideEmit`); nothing without an adapter.
    ///
    /// # Errors
    ///
    /// [`AdapterError::Encode`] when `args` cannot be serialized.
    pub fn server_side_emit<T: Serialize + ?Sized>(
        &self,
        event: &str,
        args: &T,
    ) -> Result<(), AdapterError> {
        let data = server_side_data(event, args)?;
        if let Some(adapter) = self.shared.upgrade().and_then(|s| s.adapter.get().cloned()) {
            // Without an ack the future publishes at once and is ready.
            drop(adapter.server_side_emit(self.nsp.clone(), data, false));
        }
        Ok(())
    }

    /// Sends `event` with `args` to the other nodes and waits for one
    /// answer from each, each answer's arguments as `V` by the one
    /// convention (the reference's `serverSideEmitWithAck`).
    ///
    /// # Errors
    ///
    /// [`AdapterError::Timeout`] when a node did not answer in time;
    /// [`AdapterError::Encode`] when `args` cannot be serialized or an
    /// answer is not a `V`.
    pub async fn server_side_emit_with_ack<V: DeserializeOwned, T: Serialize + ?Sized>(
        &self,
        event: &str,
        args: &T,
    ) -> Result<Vec<V>, AdapterError> {
        let data = server_side_data(event, args)?;
        let Some(adapter) = self.shared.upgrade().and_then(|s| s.adapter.get().cloned()) else {
            return Ok(Vec::new());
        };
        adapter
            .server_side_emit(self.nsp.clone(), data, true)
            .await?
            .into_iter()
            .map(|v| serde_json::from_value(v).map_err(|e| AdapterError::Encode(e.to_string())))
            .collect()
    }
}

/// A server-side emit's data: the event name, then the arguments.
fn server_side_data<T: Serialize + ?Sized>(
    event: &str,
    args: &T,
) -> Result<Vec<serde_json::Value>, AdapterError> {
    let mut data = vec![serde_json::Value::from(event)];
    data.extend(arg_values(args).map_err(|e| AdapterError::Encode(e.to_string()))?);
    Ok(data)
}

/// What a fetched socket of `nsp` is made to do: the same operations as a
/// broadcast operator's, on the socket's own room, on every node.
fn socket_actions(shared: Weak<Shared>, nsp: Str) -> crate::cluster::ActionFn {
    Arc::new(move |sid: &str, action: SocketAction| {
        let op = BroadcastOperator::new(shared.clone(), nsp.clone(), None).to(sid);
        match action {
            SocketAction::Emit(mut packet) => {
                packet.nsp = nsp.clone();
                if let Some(shared) = op.shared.upgrade() {
                    let _ = shared.broadcast(packet, &op.opts);
                }
            }
            SocketAction::Join(rooms) => op.join(rooms),
            SocketAction::Leave(rooms) => op.leave(rooms),
            SocketAction::Disconnect { close: false } => {
                let _ = op.disconnect();
            }
            SocketAction::Disconnect { close: true } => op.close(),
        }
    })
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

/// One socket's acknowledgement of a broadcast.
#[derive(Debug)]
pub struct Ack<V> {
    /// The socket, when it is on this node (the other nodes' answers do
    /// not say which socket answered).
    pub socket: Option<Str>,
    /// Its arguments, as `V` by the one convention, or why none came.
    pub result: Result<V, AckError>,
}

/// The acknowledgements of a broadcast: a stream of [`Ack`]s as they come,
/// or, awaited, every answer at once.
#[must_use = "streams do nothing unless polled"]
pub struct AckStream<V> {
    pending: FuturesUnordered<AckWait>,
    remote: Option<BoxFuture<'static, Result<Vec<Payload>, AdapterError>>>,
    ready: VecDeque<Ack<Payload>>,
    _v: PhantomData<fn() -> V>,
}

impl<V> fmt::Debug for AckStream<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AckStream")
            .field("pending", &self.pending.len())
            .field("remote", &self.remote.is_some())
            .finish()
    }
}

impl<V> AckStream<V> {
    /// How many acknowledgements of this node's sockets are still awaited
    /// (the other nodes' come together).
    pub fn remaining(&self) -> usize {
        self.pending.len()
    }
}

impl<V: DeserializeOwned> Stream for AckStream<V> {
    type Item = Ack<V>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if let Some(remote) = &mut this.remote
            && let Poll::Ready(answers) = remote.as_mut().poll(cx)
        {
            this.remote = None;
            match answers {
                Ok(answers) => this.ready.extend(answers.into_iter().map(|p| Ack {
                    socket: None,
                    result: Ok(p),
                })),
                Err(e) => this.ready.push_back(Ack {
                    socket: None,
                    result: Err(match e {
                        AdapterError::Timeout(_) => AckError::Timeout,
                        other => AckError::Cluster(other),
                    }),
                }),
            }
        }
        let ack = match this.ready.pop_front() {
            Some(ack) => ack,
            None => match Pin::new(&mut this.pending).poll_next(cx) {
                Poll::Ready(Some((sid, result))) => Ack {
                    socket: Some(sid),
                    result,
                },
                Poll::Ready(None) if this.remote.is_none() => return Poll::Ready(None),
                Poll::Ready(None) | Poll::Pending => return Poll::Pending,
            },
        };
        Poll::Ready(Some(Ack {
            socket: ack.socket,
            result: ack
                .result
                .and_then(|p| from_args(&p, 0).map_err(AckError::from)),
        }))
    }
}

impl<V: DeserializeOwned + Send + 'static> IntoFuture for AckStream<V> {
    type Output = Result<Vec<V>, AckError>;
    type IntoFuture = BoxFuture<'static, Result<Vec<V>, AckError>>;

    /// Every answer, once all came: [`AckError::Timeout`] when one did not
    /// come in time; sockets that disconnected meanwhile are not waited for.
    fn into_future(mut self) -> Self::IntoFuture {
        Box::pin(async move {
            let mut answers = Vec::new();
            while let Some(ack) = self.next().await {
                match ack.result {
                    Ok(v) => answers.push(v),
                    Err(AckError::Disconnected) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(answers)
        })
    }
}
