//! Connection state recovery: the sessions of sockets that dropped, and the
//! packets they may have missed.
//!
//! The wire behaviour is the reference's (`connectionStateRecovery`, Socket.IO
//! 4.6 and later):
//!
//! - the CONNECT answer carries a private session id (`pid`) beside the
//!   socket id: `{"sid":"…","pid":"…"}`;
//! - every stored packet (an event with no acknowledgement that is not
//!   volatile) carries its offset as its last argument, a string;
//! - a client that lost its connection sends `pid` and the offset of the last
//!   packet it got in its CONNECT's auth object;
//! - if the session is known and the offset too, the socket gets its old id,
//!   its rooms and its data back, and the packets it missed, in order.
//!   Otherwise it is a new socket with a new `pid`, which tells the client it
//!   was not recovered.
//!
//! Unlike the reference, whose store keeps every packet for the whole window,
//! the [`Store`] is bounded: in packets and bytes in total, in saved sessions,
//! and in what one session may have missed. At a bound the oldest packets and
//! sessions go first, and a client whose missed packets are no longer all
//! there gets a new session rather than a replay with holes.

use std::any::Any;
use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::BuildHasher;
use std::time::{Duration, Instant};

use engineio_packet::Str;
use socketio_packet::{Packet, PacketKind};

use crate::config::Recovery;
use crate::ids::IdGenerator;
use crate::types::{Encoded, Resume, shrink};

/// The bytes a stored packet is counted for beyond its encoded bytes, its
/// offset and its rooms: its entry, the offset's index entry and the
/// allocations around them, as measured by
/// `examples/recovery_memory.rs` (497 heap bytes for a chat message of 131).
pub const PACKET_OVERHEAD: usize = 320;

/// The bytes a saved session is counted for beyond its ids, rooms and data,
/// as measured by `examples/recovery_memory.rs` (558 heap bytes for a
/// session in three rooms).
pub const SESSION_OVERHEAD: usize = 448;

/// A value of the binding's kept with a saved session and given back with
/// it (see [`Endpoint::keep_with_session`](crate::Endpoint::keep_with_session)),
/// such as the typed values an application attached to the socket.
pub struct Kept(pub Box<dyn Any + Send + Sync>);

impl std::fmt::Debug for Kept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kept(..)")
    }
}

/// The bytes a kept value is counted for in the store's bound: its size is
/// the binding's secret.
const KEPT_COST: usize = 64;

/// A session given back: the socket's id, private id, rooms and data, and the
/// packets it missed, oldest first.
#[derive(Debug)]
pub struct Restored {
    /// The namespace.
    pub nsp: Str,
    /// The socket id, as before.
    pub sid: Str,
    /// The private session id, as before.
    pub pid: Str,
    /// The rooms it was in (its own id among them while it was in that room).
    pub rooms: Vec<Str>,
    /// The application's data saved with it (see
    /// [`Endpoint::set_session_data`](crate::Endpoint::set_session_data)).
    pub data: Option<Str>,
    /// What the binding kept with it (see
    /// [`Endpoint::keep_with_session`](crate::Endpoint::keep_with_session)).
    pub kept: Option<Kept>,
    /// The packets it missed, in the order they were sent.
    pub missed: Vec<Encoded>,
    /// The store's sequence number of the first of them (or of the next
    /// packet when it missed none): should it drop again, it is owed
    /// everything from there.
    pub since: u64,
}

/// Why a session was not recovered (the client gets a new one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotRecovered {
    /// Recovery is off.
    #[error("connection state recovery is off")]
    Off,
    /// No saved session has that `pid`: it never existed, was recovered
    /// already, belongs to a socket still connected, or was evicted.
    #[error("no such session")]
    UnknownSession,
    /// The session was kept for `max_disconnection_duration`, and no longer.
    #[error("the session expired")]
    Expired,
    /// The session belongs to another namespace (or, given back by the
    /// cluster, to one it does not name while the namespace's middlewares
    /// were skipped).
    #[error("the session belongs to another namespace")]
    OtherNamespace,
    /// The offset is not among the stored packets: forged, from the future,
    /// or of a packet no longer kept.
    #[error("unknown offset")]
    UnknownOffset,
    /// The offset is of a packet of another namespace.
    #[error("the offset is of a packet of another namespace")]
    ForeignOffset,
    /// The session missed more than `max_missed_packets` or
    /// `max_missed_bytes`.
    #[error("the session missed too much")]
    TooMuchMissed,
}

#[derive(Debug)]
struct StoredPacket {
    offset: Str,
    nsp: Str,
    rooms: Box<[Str]>,
    except: Box<[Str]>,
    encoded: Encoded,
    at: Instant,
    cost: u32,
}

impl StoredPacket {
    /// Whether a socket in `rooms` was sent this packet.
    fn reaches(&self, rooms: &HashSet<&str>) -> bool {
        reaches(&self.rooms, &self.except, rooms)
    }
}

/// Whether a socket in `rooms` was sent a packet for `to` but `except` (the
/// reference's rule). A packet names few rooms: each is looked up in the
/// socket's.
pub(crate) fn reaches(to: &[Str], except: &[Str], rooms: &HashSet<&str>) -> bool {
    let included = to.is_empty() || to.iter().any(|r| rooms.contains(&**r));
    let excluded = except.iter().any(|r| rooms.contains(&**r));
    included && !excluded
}

#[derive(Debug)]
struct SavedSession {
    nsp: Str,
    sid: Str,
    rooms: Box<[Str]>,
    /// The sequence number of the first packet sent after the socket
    /// joined: nothing before it is replayed.
    since: u64,
    data: Option<Str>,
    kept: Option<Kept>,
    at: Instant,
    cost: usize,
}

/// The recovery store of an endpoint: the packets sent lately, each with its
/// offset, and the sessions of sockets that dropped.
#[derive(Debug)]
pub(crate) struct Store {
    config: Recovery,
    /// The most bytes one session may have missed: the option, within the
    /// send buffer's bound.
    max_missed_bytes: usize,
    packets: VecDeque<StoredPacket>,
    /// The sequence number of `packets[0]`.
    first_seq: u64,
    /// The packets' sequence numbers by their offsets' hashes (a lookup
    /// checks the offset itself; two offsets with one hash, at odds of one
    /// in 2^64, make the older one unknown).
    offsets: HashMap<u64, u64>,
    hasher: RandomState,
    /// Boxed: a map's slots are made ahead, and a session is large.
    sessions: HashMap<Str, Box<SavedSession>>,
    /// The saved sessions' `pid`s, oldest first (stale entries are skipped).
    session_order: VecDeque<(Instant, Str)>,
    bytes: usize,
}

impl Store {
    pub(crate) fn new(config: Recovery, max_buffer_size: usize) -> Store {
        Store {
            max_missed_bytes: config.max_missed_bytes.min(max_buffer_size / 2),
            config,
            packets: VecDeque::new(),
            first_seq: 0,
            offsets: HashMap::new(),
            hasher: RandomState::new(),
            sessions: HashMap::new(),
            session_order: VecDeque::new(),
            bytes: 0,
        }
    }

    /// The sequence number the next packet gets.
    pub(crate) fn next_seq(&self) -> u64 {
        self.first_seq + self.packets.len() as u64
    }

    /// The packets kept.
    pub(crate) fn packet_count(&self) -> usize {
        self.packets.len()
    }

    /// The saved sessions.
    pub(crate) fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// The bytes counted against [`Recovery::max_bytes`].
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether `packet` is kept for recovery: an event without an
    /// acknowledgement that is not `volatile`.
    pub(crate) fn keeps(packet: &Packet, volatile: bool) -> bool {
        matches!(packet.kind, PacketKind::Event { id: None, .. }) && !volatile
    }

    /// `packet` with a new offset appended to its arguments, and that offset;
    /// `None` when the packet is not kept (see [`Store::keeps`]).
    pub(crate) fn stamp(packet: &Packet, ids: &mut IdGenerator) -> Option<(Packet, Str)> {
        let offset = ids.next_id();
        Store::stamp_with(packet, offset)
    }

    /// `packet` with `offset` appended to its arguments, and that offset;
    /// `None` when the packet is not an event.
    pub(crate) fn stamp_with(packet: &Packet, offset: Str) -> Option<(Packet, Str)> {
        let PacketKind::Event { name, data, id } = &packet.kind else {
            return None;
        };
        let data = data.with_str_arg(&offset)?;
        let stamped = Packet {
            nsp: packet.nsp.clone(),
            kind: PacketKind::Event {
                name: name.clone(),
                data,
                id: *id,
            },
        };
        Some((stamped, offset))
    }

    /// Keeps a stamped packet (see [`Store::stamp`]) sent to `rooms` but
    /// `except`.
    pub(crate) fn push(
        &mut self,
        now: Instant,
        offset: Str,
        nsp: Str,
        rooms: &[Str],
        except: &[Str],
        encoded: Encoded,
    ) {
        self.expire(now);
        let cost = encoded.size()
            + offset.len()
            + rooms.iter().chain(except).map(|r| r.len()).sum::<usize>()
            + PACKET_OVERHEAD;
        let seq = self.first_seq + self.packets.len() as u64;
        self.offsets.insert(self.hasher.hash_one(&*offset), seq);
        self.packets.push_back(StoredPacket {
            offset,
            nsp,
            rooms: rooms.into(),
            except: except.into(),
            encoded,
            at: now,
            cost: u32::try_from(cost).unwrap_or(u32::MAX),
        });
        self.bytes += cost;
        while self.packets.len() > self.config.max_packets
            || (self.bytes > self.config.max_bytes && !self.packets.is_empty())
        {
            self.pop_packet();
        }
    }

    fn pop_packet(&mut self) {
        if let Some(p) = self.packets.pop_front() {
            let key = self.hasher.hash_one(&*p.offset);
            if self.offsets.get(&key) == Some(&self.first_seq) {
                self.offsets.remove(&key);
            }
            self.bytes -= p.cost as usize;
            self.first_seq += 1;
            shrink(&mut self.packets);
            shrink(&mut self.offsets);
        }
    }

    /// The sequence number of the packet with `offset`, if it is kept.
    fn seq_of(&self, offset: &str) -> Option<u64> {
        let seq = *self.offsets.get(&self.hasher.hash_one(offset))?;
        let packet = self
            .packets
            .get((seq.checked_sub(self.first_seq)?) as usize)?;
        (&*packet.offset == offset).then_some(seq)
    }

    /// Saves the session of a socket that dropped: `pid`, its namespace, id
    /// and rooms.
    pub(crate) fn persist(
        &mut self,
        now: Instant,
        pid: Str,
        nsp: Str,
        sid: Str,
        rooms: Vec<Str>,
        since: u64,
    ) {
        self.expire(now);
        if self.config.max_sessions == 0 {
            return;
        }
        let cost =
            pid.len() + sid.len() + rooms.iter().map(|r| r.len()).sum::<usize>() + SESSION_OVERHEAD;
        if let Some(old) = self.sessions.remove(&pid) {
            self.bytes -= old.cost;
        }
        self.session_order.push_back((now, pid.clone()));
        if self.session_order.len() > 2 * self.sessions.len() + 64 {
            // Entries of sessions recovered or replaced since: keep the order's length in step.
            let sessions = &self.sessions;
            self.session_order
                .retain(|(at, pid)| sessions.get(pid).is_some_and(|s| s.at == *at));
            self.session_order.push_back((now, pid.clone()));
        }
        self.sessions.insert(
            pid,
            Box::new(SavedSession {
                nsp,
                sid,
                rooms: rooms.into(),
                since,
                data: None,
                kept: None,
                at: now,
                cost,
            }),
        );
        self.bytes += cost;
        // The oldest packets make room first: only sessions that dropped
        // long ago need them.
        while self.bytes > self.config.max_bytes && !self.packets.is_empty() {
            self.pop_packet();
        }
        while self.sessions.len() > self.config.max_sessions || self.bytes > self.config.max_bytes {
            if !self.pop_session() {
                break;
            }
        }
    }

    /// Drops the oldest saved session; false when there is none.
    fn pop_session(&mut self) -> bool {
        while let Some((at, pid)) = self.session_order.pop_front() {
            if self.sessions.get(&pid).is_some_and(|s| s.at == at) {
                self.drop_session(&pid);
                return true;
            }
        }
        false
    }

    fn drop_session(&mut self, pid: &str) -> Option<Box<SavedSession>> {
        let session = self.sessions.remove(pid)?;
        self.bytes -= session.cost;
        shrink(&mut self.sessions);
        // The order's entries of sessions gone, at its front: they would
        // only say to look again.
        while let Some((at, pid)) = self.session_order.front() {
            if self.sessions.get(pid).is_some_and(|s| s.at == *at) {
                break;
            }
            self.session_order.pop_front();
        }
        shrink(&mut self.session_order);
        Some(session)
    }

    /// Attaches the application's `data` (JSON) to the saved session `pid`;
    /// false when there is none, or when even without any packet the store
    /// would be over [`Recovery::max_bytes`] (the session is then dropped:
    /// it cannot be given back whole). The oldest packets make room first.
    pub(crate) fn set_data(&mut self, pid: &str, data: Str) -> bool {
        let Some(session) = self.sessions.get_mut(pid) else {
            return false;
        };
        let old = session.data.as_ref().map_or(0, |d| d.len());
        session.cost = session.cost - old + data.len();
        self.bytes = self.bytes - old + data.len();
        session.data = Some(data);
        self.make_room(pid)
    }

    /// Drops the oldest packets while the store is over its bound in bytes;
    /// when that is not enough, session `pid` goes (false).
    fn make_room(&mut self, pid: &str) -> bool {
        while self.bytes > self.config.max_bytes && !self.packets.is_empty() {
            self.pop_packet();
        }
        if self.bytes > self.config.max_bytes {
            self.drop_session(pid);
            return false;
        }
        true
    }

    /// Keeps the binding's `value` with the saved session `pid`; false when
    /// there is none, or when it would take the store over
    /// [`Recovery::max_bytes`] (the session is then dropped).
    pub(crate) fn keep(&mut self, pid: &str, value: Kept) -> bool {
        let Some(session) = self.sessions.get_mut(pid) else {
            return false;
        };
        let extra = if session.kept.is_some() { 0 } else { KEPT_COST };
        self.bytes += extra;
        session.cost += extra;
        session.kept = Some(value);
        self.make_room(pid)
    }

    /// Gives back session `resume.pid` on `nsp` with the packets it missed
    /// since `resume.offset`, and forgets it: a session is recovered at most
    /// once.
    pub(crate) fn restore(
        &mut self,
        now: Instant,
        nsp: &str,
        resume: &Resume,
    ) -> Result<Restored, NotRecovered> {
        self.expire(now);
        let Some(session) = self.sessions.get(&resume.pid) else {
            return Err(NotRecovered::UnknownSession);
        };
        if now.saturating_duration_since(session.at) > self.config.max_disconnection_duration {
            self.drop_session(&resume.pid);
            return Err(NotRecovered::Expired);
        }
        if &*session.nsp != nsp {
            // Not dropped: the client may still ask for it on its namespace.
            return Err(NotRecovered::OtherNamespace);
        }
        let result = self.missed(session, resume.offset.as_ref());
        let session = self.drop_session(&resume.pid).expect("looked up above");
        let (missed, since) = result?;
        Ok(Restored {
            nsp: session.nsp,
            sid: session.sid,
            pid: resume.pid.clone(),
            rooms: session.rooms.into_vec(),
            data: session.data,
            kept: session.kept,
            missed,
            since,
        })
    }

    /// The packets `session` missed after `offset` (after it joined, without
    /// one), and the sequence number where they start.
    fn missed(
        &self,
        session: &SavedSession,
        offset: Option<&Str>,
    ) -> Result<(Vec<Encoded>, u64), NotRecovered> {
        // The first packet to replay: the one after the client's offset,
        // never one from before the socket joined (an offset the client
        // kept from an earlier session).
        let first = match offset {
            Some(offset) => {
                let Some(seq) = self.seq_of(offset) else {
                    return Err(NotRecovered::UnknownOffset);
                };
                // The offset only says where to start: what is replayed is
                // what the session's rooms were sent. One of another
                // namespace cannot be the client's.
                let last = &self.packets[(seq - self.first_seq) as usize];
                if seq >= session.since && last.nsp != session.nsp {
                    return Err(NotRecovered::ForeignOffset);
                }
                (seq + 1).max(session.since)
            }
            None => session.since,
        };
        if first < self.first_seq {
            // Packets it missed are no longer kept.
            return Err(NotRecovered::UnknownOffset);
        }
        let start = (first - self.first_seq) as usize;
        let rooms: HashSet<&str> = session.rooms.iter().map(|r| &**r).collect();
        let mut missed = Vec::new();
        let mut bytes = 0;
        for p in self.packets.range(start.min(self.packets.len())..) {
            if p.nsp != session.nsp || !p.reaches(&rooms) {
                continue;
            }
            bytes += p.encoded.size();
            if missed.len() == self.config.max_missed_packets || bytes > self.max_missed_bytes {
                return Err(NotRecovered::TooMuchMissed);
            }
            missed.push(p.encoded.clone());
        }
        Ok((missed, first))
    }

    /// The most packets, and bytes, one session may replay.
    pub(crate) fn missed_bounds(&self) -> (usize, usize) {
        (self.config.max_missed_packets, self.max_missed_bytes)
    }

    /// Drops what is older than the window, as of `now`: what a binding
    /// calls at [`Store::next_expiry`] when nothing else touched the store.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        self.expire(now);
    }

    /// When the oldest packet or session kept passes the window and is to be
    /// dropped; `None` when the store is empty.
    pub(crate) fn next_expiry(&self) -> Option<Instant> {
        let packet = self.packets.front().map(|p| p.at);
        let session = self.session_order.front().map(|(at, _)| *at);
        // Dropped once strictly older than the window.
        let window = self.config.max_disconnection_duration + Duration::from_millis(1);
        let oldest = packet.into_iter().chain(session).min()?;
        Some(oldest.checked_add(window).unwrap_or(oldest))
    }

    /// Drops what is older than the window.
    fn expire(&mut self, now: Instant) {
        let window = self.config.max_disconnection_duration;
        let old = |at: Instant| now.saturating_duration_since(at) > window;
        while self.packets.front().is_some_and(|p| old(p.at)) {
            self.pop_packet();
        }
        while let Some((at, pid)) = self.session_order.front() {
            if !old(*at) {
                break;
            }
            let (at, pid) = (*at, pid.clone());
            self.session_order.pop_front();
            if self.sessions.get(&pid).is_some_and(|s| s.at == at) {
                self.drop_session(&pid);
            }
        }
    }
}
