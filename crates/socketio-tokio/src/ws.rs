//! One server WebSocket over an upgraded HTTP connection: the framing of
//! [`websocket_frame`] on a socket, with buffers that exist only while they
//! hold something.
//!
//! An idle WebSocket holds no buffer at all. With no read buffer, a read goes
//! into a scratch buffer of the thread, and what it got is copied into a
//! buffer of its exact size (a read that finds nothing allocates nothing);
//! the read buffer grows only for a frame longer than what is there, and is
//! given back when a read finds no more data and nothing is left of a frame.
//! The write buffer is given back when it has all been written. A message
//! that arrived in one frame is handed over as a slice of the read buffer,
//! without a copy.
//! Frames queued in one turn of the connection's task go out in one write;
//! a frame queued alone (the common case: one message per wake-up) is
//! written from its own bytes with its header beside it, with no copy and no
//! buffer.
//!
//! A WebSocket over a TCP stream (the standalone server's, or hyper's on a
//! plain `TcpStream`) holds the stream through a shared handle, read and
//! written with the runtime's readiness: while the connection's task is
//! idle and nothing is queued here, its link writes broadcasts on it
//! directly (see `api::link`), and a frame of which the socket took only a
//! part comes back here, ahead of everything ([`WsConn::resume`]).
//!
//! With permessage-deflate agreed, a message of the threshold and more is
//! compressed when it is queued, and compressed messages from the peer are
//! inflated under the message limit; the deflate state is the thread's, so
//! an idle WebSocket holds none (see `websocket_frame::deflate`).

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use socketio_proto::{Data, Str};
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;
use websocket_frame::deflate::Deflater;
use websocket_frame::{Decoder, Message, OpCode, ProtocolError, close_code};

/// The first read of a WebSocket with no buffer, into a scratch buffer of
/// the thread: most messages of a real-time application fit.
const FIRST_READ: usize = 1024;
thread_local! {
    /// Where reads with no buffer go first: one per thread, zeroed once.
    static FIRST: std::cell::RefCell<Box<[u8; FIRST_READ]>> =
        std::cell::RefCell::new(Box::new([0; FIRST_READ]));
}

/// Below this much free room, the read buffer grows before a read.
const MIN_READ: usize = 256;

/// The `Sec-WebSocket-Accept` answer to a client's `Sec-WebSocket-Key`
/// (RFC 6455, section 4.2.2): the key and the protocol's GUID, SHA-1, base64.
pub(crate) fn accept_key(key: &[u8]) -> String {
    use base64::Engine;
    use sha1::Digest;
    let mut sha = sha1::Sha1::new();
    sha.update(key);
    sha.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64::engine::general_purpose::STANDARD.encode(sha.finalize())
}

/// Why a WebSocket stopped.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WsError {
    /// The peer broke the protocol; a close frame with its code is queued.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// The socket failed.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// More is waiting to be written than the write buffer's bound.
    #[error("the write buffer is full")]
    Full,
}

/// What a read gives.
#[derive(Debug)]
pub(crate) enum Incoming {
    /// A text or binary message.
    Message(Data),
    /// A ping or pong: an answer may be queued, to be flushed.
    Control,
    /// The peer's close frame; the answer is queued.
    Close,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadState {
    Open,
    /// The peer's close frame arrived: the read side is done.
    CloseReceived,
    /// The peer ended the stream, or broke the protocol, or the socket failed.
    Done,
}

/// Limits of one WebSocket, in bytes: 32-bit numbers, as a connection
/// keeps them for its life (a limit past 4 GiB counts as 4 GiB).
#[derive(Debug, Clone, Copy)]
pub(crate) struct WsLimits {
    /// The longest message taken from the peer.
    pub(crate) max_message: u32,
    /// How much a read asks for once a buffer is in use.
    pub(crate) read_chunk: u32,
    /// From this many bytes queued, a write goes out before more are queued.
    pub(crate) write_chunk: u32,
    /// The most bytes that may wait to be written.
    pub(crate) max_write: u32,
}

impl WsLimits {
    /// A limit of `n` bytes, as kept: at most 4 GiB.
    pub(crate) fn bytes(n: usize) -> u32 {
        u32::try_from(n).unwrap_or(u32::MAX)
    }
}

/// A frame queued alone, written from its payload's own bytes; also a
/// frame a broadcast wrote itself on an idle socket (see `api::link`), of
/// which the socket may have taken only a part.
pub(crate) struct Single {
    header: [u8; websocket_frame::MAX_SERVER_HEADER_LEN],
    /// How much of `header` is the frame's (at most 10 bytes).
    header_len: u8,
    payload: Bytes,
    /// How much of header and payload is written.
    written: usize,
}

impl Single {
    /// The uncompressed frame of `data`, none of it written.
    pub(crate) fn new(data: &Data) -> Single {
        let (opcode, payload) = match data {
            Data::Text(s) => (OpCode::Text, s.clone().into_bytes()),
            Data::Binary(b) => (OpCode::Binary, b.clone()),
        };
        let (header, header_len) = websocket_frame::header(opcode, payload.len());
        Single::frame(header, header_len, payload)
    }

    /// The frame of `header` (its first `header_len` bytes) and `payload`,
    /// none of it written.
    fn frame(
        header: [u8; websocket_frame::MAX_SERVER_HEADER_LEN],
        header_len: usize,
        payload: Bytes,
    ) -> Single {
        Single {
            header,
            // A header is at most MAX_SERVER_HEADER_LEN (10) bytes.
            header_len: u8::try_from(header_len).unwrap_or(u8::MAX),
            payload,
            written: 0,
        }
    }

    fn header_len(&self) -> usize {
        usize::from(self.header_len)
    }

    pub(crate) fn remaining(&self) -> usize {
        self.header_len() + self.payload.len() - self.written
    }

    /// What is left to write: of the header, of the payload.
    pub(crate) fn slices(&self) -> (&[u8], &[u8]) {
        let header_len = self.header_len();
        let header = &self.header[self.written.min(header_len)..header_len];
        let payload = &self.payload[self.written.saturating_sub(header_len)..];
        (header, payload)
    }

    /// Writes what is left with one non-blocking system call at most (none
    /// when the runtime knows the socket is not writable); true when all of
    /// it is written. An error is left for the connection's task to meet on
    /// its next write.
    pub(crate) fn try_write(&mut self, stream: &TcpStream) -> bool {
        let (header, payload) = self.slices();
        let slices = [IoSlice::new(header), IoSlice::new(payload)];
        if let Ok(n) = stream.try_write_vectored(&slices) {
            self.written += n;
        }
        self.remaining() == 0
    }

    /// Counts `n` more bytes written; what of `n` is past this frame.
    pub(crate) fn advance(&mut self, n: usize) -> usize {
        let took = n.min(self.remaining());
        self.written += took;
        n - took
    }

    /// This frame, leaving an empty one in its place.
    pub(crate) fn take(&mut self) -> Single {
        std::mem::replace(
            self,
            Single::frame([0; websocket_frame::MAX_SERVER_HEADER_LEN], 0, Bytes::new()),
        )
    }

    /// What is left to write of `frames`, in order, as one frame (of which
    /// nothing is written): the rest of a write that the socket took only
    /// in part, for the connection's task.
    pub(crate) fn joined(mut frames: Vec<Single>) -> Option<Single> {
        if frames.len() <= 1 {
            return frames.pop();
        }
        let len = frames.iter().map(Single::remaining).sum();
        let mut bytes = Vec::with_capacity(len);
        for frame in &frames {
            let (header, payload) = frame.slices();
            bytes.extend_from_slice(header);
            bytes.extend_from_slice(payload);
        }
        Some(Single::frame(
            [0; websocket_frame::MAX_SERVER_HEADER_LEN],
            0,
            Bytes::from(bytes),
        ))
    }
}

/// The frames a broadcast's batch hands to one system call at most (two
/// slices each, under every system's limit of 1,024).
pub(crate) const FRAMES_PER_WRITE: usize = 16;

/// The socket under a WebSocket.
pub(crate) enum WsIo {
    /// A TCP stream, which the connection's link may write on while the
    /// connection's task is idle (see `api::link`).
    Tcp(TcpIo),
    /// Any other upgraded connection (TLS, or an I/O type this crate does
    /// not know).
    Other(Upgrade),
}

/// A TCP stream taken out of an upgraded HTTP connection.
pub(crate) struct TcpIo {
    stream: Arc<TcpStream>,
    /// What the HTTP server read past the upgrade request, then what it
    /// left unread of the connection's first bytes.
    prefix: Bytes,
    /// What must live as long as the connection (its place under the
    /// server's connection caps).
    _keep: Option<Box<dyn Send + Sync>>,
}

impl TcpIo {
    /// `stream`, with the bytes already read from it, and what must live as
    /// long as it.
    pub(crate) fn new(
        stream: TcpStream,
        prefix: Bytes,
        keep: Option<Box<dyn Send + Sync>>,
    ) -> TcpIo {
        TcpIo {
            stream: Arc::new(stream),
            // An empty prefix would keep the HTTP server's read buffer.
            prefix: if prefix.is_empty() {
                Bytes::new()
            } else {
                prefix
            },
            _keep: keep,
        }
    }
}

/// Whether a read that fills less than its buffer shows that the socket's
/// receive queue is empty, so that its readiness may be cleared: with
/// mio's edge-triggered selectors (epoll, kqueue), as in tokio's own
/// `poll_read`. Elsewhere (Windows, poll(2)) mio asks for the next event
/// only when one of its own reads finds nothing.
const SHORT_READ_DRAINS: bool = cfg!(all(
    not(mio_unsupported_force_poll_poll),
    any(
        target_os = "android",
        target_os = "illumos",
        target_os = "linux",
        target_os = "redox",
        target_os = "dragonfly",
        target_os = "freebsd",
        target_os = "ios",
        target_os = "macos",
        target_os = "netbsd",
        target_os = "openbsd",
        target_os = "tvos",
        target_os = "visionos",
        target_os = "watchos",
    )
));

/// Gives `buf` what it has room for of `prefix` (bytes read from a socket
/// before its reader came); true when there were any. An emptied prefix
/// lets the buffer it was a slice of go.
pub(crate) fn take_prefix(prefix: &mut Bytes, buf: &mut ReadBuf<'_>) -> bool {
    if prefix.is_empty() {
        return false;
    }
    let n = prefix.len().min(buf.remaining());
    buf.put_slice(&prefix.split_to(n));
    if prefix.is_empty() {
        *prefix = Bytes::new();
    }
    true
}

/// Reads from `stream` into `buf` and, when the read filled less than
/// `buf` and [`SHORT_READ_DRAINS`], clears the stream's read readiness, as
/// tokio's own `poll_read` does: the socket's receive queue is then empty,
/// and the next read waits for the next readiness event rather than making
/// a system call that would only say `EAGAIN`. Data that comes in after the
/// read raises a new event, which the clearing does not take away.
pub(crate) fn read_clearing(stream: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    let len = buf.len();
    read_clearing_with(stream, len, || stream.try_read(buf))
}

/// [`read_clearing`] with `read`, a non-blocking read of `stream` of up to
/// `len` bytes.
pub(crate) fn read_clearing_with(
    stream: &TcpStream,
    len: usize,
    mut read: impl FnMut() -> io::Result<usize>,
) -> io::Result<usize> {
    if !SHORT_READ_DRAINS {
        return read();
    }
    let mut short = None;
    let cleared = stream.try_io(Interest::READABLE, || {
        let n = read()?;
        if n > 0 && n < len {
            // Returning `WouldBlock` is what clears the readiness.
            short = Some(n);
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    });
    match (cleared, short) {
        (_, Some(n)) => Ok(n),
        (read, None) => read,
    }
}

impl AsyncRead for WsIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            WsIo::Other(io) => Pin::new(io).poll_read(cx, buf),
            WsIo::Tcp(tcp) => {
                if take_prefix(&mut tcp.prefix, buf) {
                    return Poll::Ready(Ok(()));
                }
                loop {
                    ready!(tcp.stream.poll_read_ready(cx))?;
                    match read_clearing(&tcp.stream, buf.initialize_unfilled()) {
                        Ok(n) => {
                            buf.advance(n);
                            return Poll::Ready(Ok(()));
                        }
                        // The readiness was cleared: wait for the next.
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(e) => return Poll::Ready(Err(e)),
                    }
                }
            }
        }
    }
}

impl AsyncWrite for WsIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            WsIo::Other(io) => Pin::new(io).poll_write_vectored(cx, bufs),
            WsIo::Tcp(tcp) => loop {
                ready!(tcp.stream.poll_write_ready(cx))?;
                match tcp.stream.try_write_vectored(bufs) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    written => return Poll::Ready(written),
                }
            },
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            WsIo::Other(io) => io.is_write_vectored(),
            WsIo::Tcp(_) => true,
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            WsIo::Other(io) => Pin::new(io).poll_flush(cx),
            WsIo::Tcp(_) => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            WsIo::Other(io) => Pin::new(io).poll_shutdown(cx),
            // The link holds the stream only between the task's steps, and
            // this runs in one: the stream is the task's alone. Were it
            // not, the stream would close when the last holder drops it.
            WsIo::Tcp(tcp) => match Arc::get_mut(&mut tcp.stream) {
                Some(stream) => Pin::new(stream).poll_shutdown(cx),
                None => Poll::Ready(Ok(())),
            },
        }
    }
}

/// The socket of an upgraded HTTP connection.
pub(crate) type Upgrade = TokioIo<Upgraded>;

/// A server WebSocket over `T` (an upgraded connection).
pub(crate) struct WsConn<T = WsIo> {
    io: T,
    decoder: Decoder,
    limits: WsLimits,
    /// How messages are compressed, when permessage-deflate was agreed.
    /// (Boxed: most connections compress nothing.)
    deflater: Option<Box<Deflater>>,
    rbuf: BytesMut,
    /// A frame queued alone, before anything in `wbuf`.
    single: Option<Single>,
    wbuf: Vec<u8>,
    /// How much of `wbuf` is written.
    written: usize,
    /// Whether the socket takes several buffers in one write.
    vectored: bool,
    read: ReadState,
    close_sent: bool,
    shut_down: bool,
}

impl<T: AsyncRead + AsyncWrite + Unpin> WsConn<T> {
    /// A WebSocket over `io`; `deflater`: permessage-deflate was agreed.
    pub(crate) fn new(io: T, limits: WsLimits, deflater: Option<Deflater>) -> WsConn<T> {
        WsConn {
            vectored: io.is_write_vectored(),
            io,
            decoder: Decoder::new(limits.max_message as usize)
                .permessage_deflate(deflater.is_some()),
            limits,
            deflater: deflater.map(Box::new),
            rbuf: BytesMut::new(),
            single: None,
            wbuf: Vec::new(),
            written: 0,
            read: ReadState::Open,
            close_sent: false,
            shut_down: false,
        }
    }

    /// Reads the next message. `None` once the read side is over (after the
    /// peer's close frame has been answered, the end of the stream, or an
    /// error).
    pub(crate) fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Incoming, WsError>>> {
        match self.read {
            ReadState::Open => {}
            ReadState::CloseReceived => {
                // The answer to the peer's close goes out, then the socket closes.
                return match ready!(self.poll_finish(cx)) {
                    Ok(()) => Poll::Ready(None),
                    Err(e) => Poll::Ready(Some(Err(e.into()))),
                };
            }
            ReadState::Done => return Poll::Ready(None),
        }
        loop {
            match self.decoder.decode(&mut self.rbuf) {
                Ok(Some(message)) => return Poll::Ready(Some(Ok(self.on_message(message)))),
                Ok(None) => {}
                Err(e) => {
                    self.read = ReadState::Done;
                    self.rbuf = BytesMut::new();
                    self.queue_close(e.close_code());
                    return Poll::Ready(Some(Err(e.into())));
                }
            }
            let read = if self.rbuf.capacity() == 0 {
                // No buffer: read into the thread's scratch buffer first, so that a read that
                // finds nothing allocates nothing, and a message that comes
                // whole gets a buffer of its exact size (which its payload
                // then takes over, with no copy and no shared header).
                let io = Pin::new(&mut self.io);
                match ready!(FIRST.with_borrow_mut(|first| {
                    let mut into = ReadBuf::new(&mut first[..]);
                    io.poll_read(cx, &mut into)
                        .map_ok(|()| BytesMut::from(into.filled()))
                })) {
                    Ok(read) => {
                        self.rbuf = read;
                        Ok(self.rbuf.len())
                    }
                    Err(e) => Err(e),
                }
            } else {
                if self.rbuf.capacity() - self.rbuf.len() < MIN_READ {
                    self.rbuf.reserve(self.limits.read_chunk as usize);
                }
                match tokio_util::io::poll_read_buf(Pin::new(&mut self.io), cx, &mut self.rbuf) {
                    Poll::Pending => {
                        if self.rbuf.is_empty() {
                            // Idle: give the buffer back.
                            self.rbuf = BytesMut::new();
                        }
                        return Poll::Pending;
                    }
                    Poll::Ready(read) => read,
                }
            };
            match read {
                Ok(0) => {
                    self.read = ReadState::Done;
                    self.rbuf = BytesMut::new();
                    return Poll::Ready(None);
                }
                Ok(_) => {}
                Err(e) => {
                    self.read = ReadState::Done;
                    self.rbuf = BytesMut::new();
                    return Poll::Ready(Some(Err(e.into())));
                }
            }
        }
    }

    fn on_message(&mut self, message: Message) -> Incoming {
        match message {
            Message::Text(text) => Incoming::Message(Data::Text(Str::from(text))),
            Message::Binary(bytes) => Incoming::Message(Data::Binary(bytes)),
            Message::Ping(data) => {
                if !self.close_sent {
                    self.push(OpCode::Pong, &data);
                }
                Incoming::Control
            }
            Message::Pong(_) => Incoming::Control,
            Message::Close(frame) => {
                self.read = ReadState::CloseReceived;
                self.rbuf = BytesMut::new();
                // Echo the peer's code, as RFC 6455 section 5.5.1 suggests.
                let code = frame.map_or(close_code::NORMAL, |f| f.code);
                self.queue_close(code);
                Incoming::Close
            }
        }
    }

    /// Bytes queued and not written yet.
    fn queued(&self) -> usize {
        self.single.as_ref().map_or(0, Single::remaining) + self.wbuf.len() - self.written
    }

    /// Whether more frames may be queued now: when enough is queued, it is
    /// written first.
    pub(crate) fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        if self.queued() >= self.limits.write_chunk as usize {
            ready!(self.poll_flush(cx))?;
        }
        Poll::Ready(Ok(()))
    }

    /// Queues a message, compressed when permessage-deflate was agreed,
    /// `compress` allows it and it is long enough. Nothing is queued after a
    /// close frame.
    pub(crate) fn send(&mut self, data: Data, compress: bool) -> Result<(), WsError> {
        if self.close_sent {
            return Ok(());
        }
        let (opcode, mut payload) = match data {
            Data::Text(s) => (OpCode::Text, s.into_bytes()),
            Data::Binary(b) => (OpCode::Binary, b),
        };
        let mut compressed = false;
        if let Some(deflater) = &self.deflater
            && compress
            && payload.len() >= deflater.threshold()
        {
            let mut out = Vec::new();
            if deflater.compress(&payload, &mut out) {
                payload = Bytes::from(out);
                compressed = true;
            }
        }
        if self.queued() + payload.len() > self.limits.max_write as usize {
            return Err(WsError::Full);
        }
        let header = if compressed {
            websocket_frame::compressed_header
        } else {
            websocket_frame::header
        };
        if self.vectored && self.queued() == 0 {
            self.compact();
            let (header, header_len) = header(opcode, payload.len());
            self.single = Some(Single::frame(header, header_len, payload));
        } else {
            self.spill();
            let (header, header_len) = header(opcode, payload.len());
            self.wbuf.reserve(header_len + payload.len());
            self.wbuf.extend_from_slice(&header[..header_len]);
            self.wbuf.extend_from_slice(&payload);
        }
        Ok(())
    }

    fn push(&mut self, opcode: OpCode, payload: &[u8]) {
        self.spill();
        websocket_frame::encode(opcode, payload, &mut self.wbuf);
    }

    fn queue_close(&mut self, code: u16) {
        if !self.close_sent {
            self.close_sent = true;
            self.spill();
            websocket_frame::encode_close(code, "", &mut self.wbuf);
        }
    }

    /// Makes room at the end of the write buffer for another frame: drops
    /// what is written, and copies a frame queued alone in.
    fn spill(&mut self) {
        self.compact();
        if let Some(single) = self.single.take() {
            let (header, payload) = single.slices();
            self.wbuf.reserve(header.len() + payload.len());
            self.wbuf.extend_from_slice(header);
            self.wbuf.extend_from_slice(payload);
        }
    }

    /// Drops what is written from the front of the write buffer.
    fn compact(&mut self) {
        if self.written > 0 && self.written == self.wbuf.len() {
            self.wbuf.clear();
            self.written = 0;
        }
    }

    /// Writes everything queued.
    pub(crate) fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some(single) = &mut self.single {
            let (header, payload) = single.slices();
            let slices = [IoSlice::new(header), IoSlice::new(payload)];
            match ready!(Pin::new(&mut self.io).poll_write_vectored(cx, &slices)) {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(n) => {
                    single.written += n;
                    if single.remaining() == 0 {
                        self.single = None;
                    }
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        while self.written < self.wbuf.len() {
            match ready!(Pin::new(&mut self.io).poll_write(cx, &self.wbuf[self.written..])) {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(n) => self.written += n,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        if !self.wbuf.is_empty() {
            // All written: give the buffer back.
            self.wbuf = Vec::new();
            self.written = 0;
        }
        Pin::new(&mut self.io).poll_flush(cx)
    }

    /// Writes what is queued and shuts the write side down.
    fn poll_finish(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_flush(cx))?;
        if !self.shut_down {
            ready!(Pin::new(&mut self.io).poll_shutdown(cx))?;
            self.shut_down = true;
        }
        Poll::Ready(Ok(()))
    }

    /// The closing handshake from this side: a close frame (1000, unless an
    /// error queued another), then, while the peer's answer is awaited, its
    /// messages are read and dropped; then the socket closes. The caller
    /// bounds how long this may take.
    pub(crate) fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        self.queue_close(close_code::NORMAL);
        ready!(self.poll_flush(cx))?;
        while self.read == ReadState::Open {
            match ready!(self.poll_next(cx)) {
                None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            }
        }
        ready!(self.poll_finish(cx))?;
        Poll::Ready(Ok(()))
    }
}

impl WsConn<WsIo> {
    /// The stream a broadcast may write on itself while the connection's
    /// task is idle: a TCP stream with nothing queued, no compression
    /// agreed and no close frame sent; else none.
    pub(crate) fn idle_stream(&self) -> Option<&Arc<TcpStream>> {
        match &self.io {
            WsIo::Tcp(tcp) if self.deflater.is_none() && !self.close_sent && self.queued() == 0 => {
                Some(&tcp.stream)
            }
            _ => None,
        }
    }
}

impl<T> WsConn<T> {
    /// Takes back a frame of which the socket took only a part (or none):
    /// its rest goes out before anything else.
    pub(crate) fn resume(&mut self, frame: Single) {
        if self.single.is_none() && self.written == self.wbuf.len() {
            self.wbuf.clear();
            self.written = 0;
            self.single = Some(frame);
        } else {
            let (header, payload) = frame.slices();
            let rest: Vec<u8> = [header, payload].concat();
            if let Some(single) = self.single.take() {
                let (h, p) = single.slices();
                let queued: Vec<u8> = [h, p, &self.wbuf[self.written..]].concat();
                self.wbuf = queued;
                self.written = 0;
            }
            self.wbuf.splice(self.written..self.written, rest);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::future::poll_fn;
    use std::io;
    use std::pin::Pin;
    use std::sync::Arc;
    use std::task::{Context, Poll};

    use bytes::Bytes;
    use socketio_proto::Data;
    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream, ReadBuf};

    use super::{Incoming, WsConn, WsLimits};

    /// The example of RFC 6455, section 1.3.
    #[test]
    fn accept_key_of_the_rfc_example() {
        assert_eq!(
            super::accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    /// A read that leaves the socket's receive queue empty clears the read
    /// readiness (with an edge-triggered selector, as on Linux), so that
    /// the next read waits for the peer rather than
    /// making a system call that finds nothing; one that fills the buffer
    /// keeps it, since more may be queued.
    #[tokio::test]
    async fn a_short_read_clears_the_read_readiness() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut peer = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (stream, _) = listener.accept().await.unwrap();
        let mut io = super::WsIo::Tcp(super::TcpIo::new(stream, Bytes::new(), None));
        let super::WsIo::Tcp(tcp) = &io else {
            unreachable!()
        };
        let stream = Arc::clone(&tcp.stream);
        // Whether tokio still takes the socket for readable: `try_io` runs
        // its closure only then.
        let readable = || {
            let mut ran = false;
            let _ = stream.try_io(tokio::io::Interest::READABLE, || {
                ran = true;
                Ok(())
            });
            ran
        };

        peer.write_all(b"0123456789").await.unwrap();
        let mut buf = [0u8; 4];
        io.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"0123");
        assert!(
            readable(),
            "a read that filled its buffer keeps the readiness"
        );
        let mut buf = [0u8; 64];
        let n = io.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"456789");
        // Where the selector is level-triggered, mio keeps the readiness
        // until a read finds nothing.
        assert_eq!(
            readable(),
            !super::SHORT_READ_DRAINS,
            "a short read clears the readiness"
        );

        // What comes next is read all the same.
        peer.write_all(b"more").await.unwrap();
        let n = io.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"more");
    }

    /// A socket that moves at most `max` bytes a call and says "not now"
    /// every other call, taking vectored writes.
    struct Chunky {
        inner: DuplexStream,
        max: usize,
        stall: bool,
    }

    impl Chunky {
        fn stalls(&mut self, cx: &mut Context<'_>) -> bool {
            self.stall = !self.stall;
            if self.stall {
                cx.waker().wake_by_ref();
            }
            self.stall
        }
    }

    impl AsyncRead for Chunky {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            if self.stalls(cx) {
                return Poll::Pending;
            }
            let max = self.max.min(buf.remaining());
            let mut small = vec![0; max];
            let mut into = ReadBuf::new(&mut small);
            let polled = Pin::new(&mut self.inner).poll_read(cx, &mut into);
            buf.put_slice(into.filled());
            polled
        }
    }

    impl AsyncWrite for Chunky {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            if self.stalls(cx) {
                return Poll::Pending;
            }
            let max = self.max.min(buf.len());
            Pin::new(&mut self.inner).poll_write(cx, &buf[..max])
        }

        fn poll_write_vectored(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            bufs: &[io::IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            let joined: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
            self.poll_write(cx, &joined)
        }

        fn is_write_vectored(&self) -> bool {
            true
        }

        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_flush(cx)
        }

        fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_shutdown(cx)
        }
    }

    const LIMITS: WsLimits = WsLimits {
        max_message: 100_000,
        read_chunk: 16,
        write_chunk: 64,
        max_write: 1 << 20,
    };

    fn pair(max: usize) -> (WsConn<Chunky>, DuplexStream) {
        let (a, b) = tokio::io::duplex(1 << 20);
        let io = Chunky {
            inner: a,
            max,
            stall: false,
        };
        (WsConn::new(io, LIMITS, None), b)
    }

    fn masked(opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        websocket_frame::encode_client(
            u8::from(fin) << 7 | opcode,
            payload,
            [9, 200, 31, 77],
            &mut out,
        );
        out
    }

    /// Reads server frames off `peer` until `n` have come: (opcode, payload).
    async fn frames(peer: &mut DuplexStream, n: usize) -> Vec<(u8, Vec<u8>)> {
        let mut bytes = Vec::new();
        let mut out = Vec::new();
        while out.len() < n {
            let mut chunk = [0u8; 4096];
            let read = peer.read(&mut chunk).await.unwrap();
            assert!(read > 0, "the stream ended after {out:?}");
            bytes.extend_from_slice(&chunk[..read]);
            while let Some(&len7) = bytes.get(1) {
                let (len, at) = match len7 {
                    126 if bytes.len() >= 4 => {
                        (usize::from(u16::from_be_bytes([bytes[2], bytes[3]])), 4)
                    }
                    127 if bytes.len() >= 10 => (
                        u64::from_be_bytes(bytes[2..10].try_into().unwrap()) as usize,
                        10,
                    ),
                    126 | 127 => break,
                    n => (usize::from(n), 2),
                };
                if bytes.len() < at + len {
                    break;
                }
                assert_eq!(bytes[0] & 0xf0, 0x80, "a final frame, no reserved bits");
                out.push((bytes[0] & 0x0f, bytes[at..at + len].to_vec()));
                bytes.drain(..at + len);
            }
        }
        out
    }

    async fn next(ws: &mut WsConn<Chunky>) -> Option<Incoming> {
        poll_fn(|cx| ws.poll_next(cx)).await.map(Result::unwrap)
    }

    #[tokio::test]
    async fn messages_cross_a_socket_that_moves_three_bytes_at_a_time() {
        let (mut ws, mut peer) = pair(3);
        let big = vec![7u8; 70_000];
        let mut wire = masked(1, true, "héllo".as_bytes());
        wire.extend(masked(2, false, &big[..30_000]));
        wire.extend(masked(9, true, b"ping"));
        wire.extend(masked(0, true, &big[30_000..]));
        peer.write_all(&wire).await.unwrap();
        let Some(Incoming::Message(Data::Text(text))) = next(&mut ws).await else {
            panic!("a text message")
        };
        assert_eq!(text, "héllo");
        assert!(matches!(next(&mut ws).await, Some(Incoming::Control)));
        let Some(Incoming::Message(Data::Binary(bin))) = next(&mut ws).await else {
            panic!("a binary message")
        };
        assert_eq!(bin, big);
        // The pong, a frame queued alone and left half written, then more
        // frames queued behind it: all go out whole and in order.
        poll_fn(|cx| ws.poll_flush(cx)).await.unwrap();
        ws.send(Data::Binary(Bytes::from(vec![1u8; 300])), true)
            .unwrap();
        for _ in 0..3 {
            let _ = poll_fn(|cx| Poll::Ready(ws.poll_flush(cx))).await;
        }
        let written = ws.single.as_ref().map(|s| s.written);
        assert!(matches!(written, Some(1..300)), "{written:?}");
        ws.send(Data::Text("second".into()), true).unwrap();
        ws.send(Data::Binary(Bytes::from(vec![2u8; 70_000])), true)
            .unwrap();
        poll_fn(|cx| ws.poll_flush(cx)).await.unwrap();
        let got = frames(&mut peer, 4).await;
        assert_eq!(got[0], (10, b"ping".to_vec()));
        assert_eq!(got[1], (2, vec![1u8; 300]));
        assert_eq!(got[2], (1, b"second".to_vec()));
        assert_eq!(got[3], (2, vec![2u8; 70_000]));
        // Idle, it holds no buffer.
        assert!(matches!(
            poll_fn(|cx| Poll::Ready(ws.poll_next(cx))).await,
            Poll::Pending
        ));
        assert_eq!((ws.rbuf.capacity(), ws.wbuf.capacity()), (0, 0));
        assert!(ws.single.is_none());
    }

    #[tokio::test]
    async fn the_closing_handshake_from_either_side() {
        // The peer closes: its code comes back, then the stream ends.
        let (mut ws, mut peer) = pair(5);
        peer.write_all(&masked(8, true, &4001u16.to_be_bytes()))
            .await
            .unwrap();
        assert!(matches!(next(&mut ws).await, Some(Incoming::Close)));
        assert!(next(&mut ws).await.is_none());
        assert_eq!(
            frames(&mut peer, 1).await,
            [(8, 4001u16.to_be_bytes().to_vec())]
        );
        assert_eq!(peer.read(&mut [0u8; 8]).await.unwrap(), 0);

        // The server closes: 1000 goes out, and the close completes once
        // the peer answers; what the peer sent meanwhile is dropped.
        let (mut ws, mut peer) = pair(5);
        let mut answer = masked(1, true, b"late");
        answer.extend(masked(8, true, &1000u16.to_be_bytes()));
        peer.write_all(&answer).await.unwrap();
        poll_fn(|cx| ws.poll_close(cx)).await.unwrap();
        assert_eq!(
            frames(&mut peer, 1).await,
            [(8, 1000u16.to_be_bytes().to_vec())]
        );
        assert_eq!(peer.read(&mut [0u8; 8]).await.unwrap(), 0);
        // Nothing is queued after the close frame.
        ws.send(Data::Text("after".into()), true).unwrap();
        assert_eq!(ws.queued(), 0);
    }

    /// With permessage-deflate: a long message goes out compressed (RSV1),
    /// unless its emit turned compression off; a short one as it is; a
    /// compressed message from the peer is inflated; and the WebSocket holds
    /// no deflate state between messages.
    #[tokio::test]
    async fn compressed_both_ways() {
        let (a, mut peer) = tokio::io::duplex(1 << 20);
        let agreed = websocket_frame::deflate::negotiate(
            &websocket_frame::deflate::DeflateConfig::default(),
            ["permessage-deflate; client_max_window_bits"],
        )
        .unwrap()
        .unwrap();
        let mut ws = WsConn::new(a, LIMITS, Some(agreed.deflater()));
        let long = "{\"text\":\"hello\"}".repeat(100);
        ws.send(Data::Text(long.as_str().into()), true).unwrap();
        ws.send(Data::Text(long.as_str().into()), false).unwrap();
        ws.send(Data::Text("short".into()), true).unwrap();
        poll_fn(|cx| ws.poll_flush(cx)).await.unwrap();
        let mut wire = vec![0u8; 1 << 16];
        let mut got = 0;
        let expected = 4 + long.len() + 2 + 5;
        while got < expected.min(4 + long.len()) + 1 {
            got += peer.read(&mut wire[got..]).await.unwrap();
        }
        // The first frame: RSV1, and much shorter than the message.
        assert_eq!(wire[0], 0xc1, "FIN, RSV1, text");
        let len = usize::from(wire[1]);
        assert!(len < 126, "{len}");
        let mut inflated = Vec::new();
        websocket_frame::deflate::Inflater::new()
            .inflate(&wire[2..2 + len], true, &mut inflated, 10_000)
            .unwrap();
        assert_eq!(inflated, long.as_bytes());
        let rest = 2 + len;
        while got < rest + 4 + long.len() + 2 + 5 {
            got += peer.read(&mut wire[got..]).await.unwrap();
        }
        // The second as it is (compression turned off), the third too (short).
        assert_eq!(wire[rest..rest + 2], [0x81, 126]);
        assert_eq!(&wire[rest + 4..rest + 4 + long.len()], long.as_bytes());
        assert_eq!(&wire[rest + 4 + long.len()..got], b"\x81\x05short");

        // The peer's compressed message.
        let mut z = Vec::new();
        assert!(agreed.deflater().compress(long.as_bytes(), &mut z));
        let mut frame = Vec::new();
        websocket_frame::encode_client(0xc1, &z, [1, 2, 3, 4], &mut frame);
        peer.write_all(&frame).await.unwrap();
        let Some(Ok(Incoming::Message(Data::Text(text)))) = poll_fn(|cx| ws.poll_next(cx)).await
        else {
            panic!("a text message")
        };
        assert_eq!(text, long.as_str());
        assert!(!ws.decoder.in_message());
    }

    #[tokio::test]
    async fn the_write_bound_refuses_more() {
        let (mut ws, _peer) = pair(1);
        ws.limits.max_write = 1000;
        ws.send(Data::Binary(Bytes::from(vec![0u8; 600])), true)
            .unwrap();
        assert!(matches!(
            ws.send(Data::Binary(Bytes::from(vec![0u8; 600])), true),
            Err(super::WsError::Full)
        ));
    }
}
