//! Broadcast operators: select sockets of a namespace, then emit to them,
//! collect their acknowledgements, or act on them.

use std::fmt;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::Stream;
use futures_util::stream::FuturesUnordered;
use serde::Serialize;
use serde::de::DeserializeOwned;
use socketio_proto::socketio_packet::Packet;
use socketio_proto::{BroadcastOptions, DisconnectReason, PacketKind, Payload, Str};
use tokio::sync::oneshot;

use crate::driver::{Cmd, Outgoing};
use crate::error::{AckError, EmitError};
use crate::io::Shared;
use crate::socket::Socket;

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
        let Some(shared) = self.shared.upgrade() else {
            return Ok(());
        };
        let (msg, targets, volatile) = {
            let mut state = shared.lock();
            let plan = state.endpoint.broadcast(&packet, &self.opts);
            crate::adapter::flush(&shared, &mut state);
            let targets: Vec<_> = plan
                .targets
                .iter()
                .filter_map(|h| state.conns.get(h).cloned())
                .collect();
            (
                Arc::new(Outgoing {
                    packet,
                    encoded: plan.encoded,
                }),
                targets,
                plan.volatile,
            )
        };
        for tx in targets {
            // A recipient over its bound is closed ("transport error") or,
            // for a volatile packet, skipped; the others still get it.
            let _ = tx.offer(msg.clone(), volatile, true);
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
        let Some(shared) = self.shared.upgrade() else {
            return Ok(AckStream {
                pending,
                _v: PhantomData,
            });
        };
        let timeout = self.timeout.unwrap_or(shared.options.ack_timeout);
        let targets: Vec<(Str, Socket)> = {
            let state = shared.lock();
            state
                .endpoint
                .sockets(&self.nsp, &self.opts)
                .into_iter()
                .filter_map(|(sid, _)| {
                    let socket = state.sockets.get(&sid)?;
                    Some((sid, Socket(socket.clone())))
                })
                .collect()
        };
        for (sid, socket) in targets {
            if let PacketKind::Event { name, data, .. } = &packet.kind {
                socket.notify_outgoing(name, data);
            }
            let (reply, rx) = oneshot::channel();
            // A socket over its bound is being closed: no ack to wait for.
            if socket.connected()
                && socket.0.tx.offer_with_ack(Cmd::EmitWithAck {
                    packet: Box::new(packet.clone()),
                    timeout,
                    reply,
                }) == crate::queue::Offer::Queued
            {
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
        let Some(shared) = self.shared.upgrade() else {
            return Vec::new();
        };
        let state = shared.lock();
        state
            .endpoint
            .sockets(&self.nsp, &self.opts)
            .into_iter()
            .filter_map(|(sid, _)| state.sockets.get(&sid).cloned().map(Socket))
            .collect()
    }

    /// Makes the selected sockets join `rooms`.
    pub fn join(self, rooms: impl RoomParam) {
        let rooms = rooms.into_rooms();
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        let mut state = shared.lock();
        state.endpoint.add_sockets(&self.nsp, &self.opts, &rooms);
        crate::adapter::flush(&shared, &mut state);
    }

    /// Makes the selected sockets leave `rooms`.
    pub fn leave(self, rooms: impl RoomParam) {
        let rooms = rooms.into_rooms();
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        let mut state = shared.lock();
        state.endpoint.del_sockets(&self.nsp, &self.opts, &rooms);
        crate::adapter::flush(&shared, &mut state);
    }

    /// Disconnects the selected sockets ("server namespace disconnect").
    ///
    /// # Errors
    ///
    /// None today; kept for adapters that may fail.
    pub fn disconnect(self) -> Result<(), EmitError> {
        let Some(shared) = self.shared.upgrade() else {
            return Ok(());
        };
        let targets: Vec<_> = {
            let mut state = shared.lock();
            let selected = state
                .endpoint
                .disconnect_sockets(&self.nsp, &self.opts, false);
            crate::adapter::flush(&shared, &mut state);
            selected
                .into_iter()
                .filter_map(|(_, h)| state.conns.get(&h).cloned())
                .collect()
        };
        for tx in targets {
            let _ = tx.send(Cmd::Disconnect {
                nsp: self.nsp.clone(),
            });
        }
        Ok(())
    }

    /// Closes the connections of the selected sockets ("forced server close").
    pub fn close(self) {
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        let targets: Vec<_> = {
            let mut state = shared.lock();
            let selected = state
                .endpoint
                .disconnect_sockets(&self.nsp, &self.opts, true);
            crate::adapter::flush(&shared, &mut state);
            selected
                .into_iter()
                .filter_map(|(_, h)| state.conns.get(&h).cloned())
                .collect()
        };
        for tx in targets {
            let _ = tx.send(Cmd::Close {
                reason: DisconnectReason::ForcedServerClose,
            });
        }
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
