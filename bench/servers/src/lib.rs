//! What the benchmark servers share: the command line (`--port N`, 0 for any
//! free port) and the line that tells the runner where they listen.
//!
//! Every server has the same four handlers on `/`, written the same way in
//! each (the load generator's arguments are two integers, read as typed
//! data and written back):
//! - `echo`: emits `echo` back with the same arguments;
//! - `echo_text` (ours and the Node server only, for the compression
//!   benchmark `bench/node/deflate.mjs`): emits `echo_text` back with its one
//!   argument, a string;
//! - `echo_ack`: acknowledges with the same arguments;
//! - `join`: joins the room named by its first argument and acknowledges;
//! - `broadcast`: emits `bcast` with its arguments (two integers) to the room `bench`;
//! - `stats`: acknowledges with the number of connections the server holds (the fault
//!   benchmarks, `bench/faults`, watch it fall as the server closes peers), and, from
//!   the Rust servers, the tasks alive on the server's tokio runtime as a second argument
//!   (the soak samples it).
//!
//! `--recovery` turns connection state recovery on with the reference's defaults (ours
//! and the Node server; socketioxide 0.18 does not have it).
//! `--ping-interval S` (ours and socketioxide) sets the interval between pings, so that a
//! run under valgrind, many times slower, sends no ping (the instruction counts of
//! `cargo xtask bench --instructions` leave pings out).

use std::net::SocketAddr;

/// The room `broadcast` emits to.
pub const ROOM: &str = "bench";

/// The port given as `--port N` (0 when absent).
pub fn port() -> u16 {
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--port" {
            return args.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        }
    }
    0
}

/// The interval given as `--ping-interval S` in seconds, if any.
pub fn ping_interval() -> Option<std::time::Duration> {
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--ping-interval" {
            let secs = args.next().and_then(|s| s.parse::<f64>().ok());
            return secs
                .filter(|s| s.is_finite() && *s > 0.0)
                .map(std::time::Duration::from_secs_f64);
        }
    }
    None
}

/// The value given as `--<name> VALUE`, if any.
pub fn value(name: &str) -> Option<String> {
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg.strip_prefix("--") == Some(name) {
            return args.next();
        }
    }
    None
}

/// Whether `--<name>` is on the command line.
pub fn flag(name: &str) -> bool {
    std::env::args()
        .skip(1)
        .any(|a| a.strip_prefix("--") == Some(name))
}

/// The listen backlog of every Rust server. tokio's `TcpListener::bind`
/// asks for 128, fewer than the generator's handshakes in flight: a burst
/// then overflows the accept queue, the kernel drops SYNs and the clients
/// retry a second later, and a storm measures those drops more than the
/// server. Node's default is 511.
pub const BACKLOG: u32 = 1024;

/// Listens on 127.0.0.1 at the `--port` given, with [`BACKLOG`].
pub fn listen() -> std::io::Result<tokio::net::TcpListener> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(SocketAddr::from(([127, 0, 0, 1], port())))?;
    socket.listen(BACKLOG)
}

/// Prints `listening on <addr>`, the line the runner waits for.
pub fn announce(addr: SocketAddr) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "listening on {addr}");
    let _ = out.flush();
}

/// Runs our benchmark server (`bench-ours`, `bench-ours-mimalloc`) on a
/// current-thread runtime: `--deflate` turns on permessage-deflate with the
/// reference's defaults, `--recovery` connection state recovery.
///
/// # Errors
/// When the runtime, the server or the listener cannot be made.
pub fn run_ours() -> Result<(), Box<dyn std::error::Error>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut builder = socketio_tokio::SocketIo::builder();
        if flag("deflate") {
            builder = builder.per_message_deflate(Some(socketio_tokio::PerMessageDeflate::new()));
        }
        if let Some(interval) = ping_interval() {
            builder = builder.ping_interval(interval);
        }
        if flag("recovery") {
            builder = builder.connection_state_recovery(socketio_tokio::Recovery::default());
        }
        let io = builder.build()?;
        ours_handlers(&io);
        let listener = listen()?;
        announce(listener.local_addr()?);
        io.serve(listener).await?;
        Ok(())
    })
}

/// The tasks alive on the current tokio runtime (0 outside of one).
pub fn alive_tasks() -> usize {
    tokio::runtime::Handle::try_current().map_or(0, |h| h.metrics().num_alive_tasks())
}

/// Our handlers on `/` of `io` (shared by `bench-ours` and `bench-ours-http1`).
pub fn ours_handlers(io: &socketio_tokio::SocketIo) {
    use socketio_tokio::{AckSender, Data, Socket, SocketIo};
    // `--burst`: the handlers of the `burst` and `broadcast_burst`
    // scenarios, which emit to their own connection, or broadcast to the
    // room, several times in one go (off by default, so that the idle
    // memory counts the six handlers below).
    let burst = flag("burst");
    io.ns("/", move |socket: Socket| async move {
        if burst {
            socket.on(
                "burst",
                |socket: Socket, Data((a, b, n)): Data<(u64, u64, u64)>| async move {
                    for _ in 0..n.min(64) {
                        let _ = socket.emit("echo", &(a, b));
                    }
                },
            );
            socket.on(
                "broadcast_burst",
                |socket: Socket, Data((a, b, n)): Data<(u64, u64, u64)>| async move {
                    for _ in 0..n.min(64) {
                        let _ = socket.within(ROOM).emit("bcast", &(a, b));
                    }
                },
            );
        }
        socket.on(
            "echo",
            |socket: Socket, Data(args): Data<(u64, u64)>| async move {
                let _ = socket.emit("echo", &args);
            },
        );
        socket.on(
            "echo_text",
            |socket: Socket, Data(text): Data<String>| async move {
                let _ = socket.emit("echo_text", &text);
            },
        );
        socket.on(
            "echo_ack",
            |Data(args): Data<(u64, u64)>, ack: AckSender| async move {
                let _ = ack.send(&args);
            },
        );
        socket.on(
            "join",
            |socket: Socket, Data(room): Data<String>, ack: AckSender| async move {
                socket.join(room);
                let _ = ack.send(&());
            },
        );
        socket.on(
            "broadcast",
            |socket: Socket, Data(args): Data<(u64, u64)>| async move {
                let _ = socket.within(ROOM).emit("bcast", &args);
            },
        );
        socket.on("stats", |io: SocketIo, ack: AckSender| async move {
            let _ = ack.send(&(io.connection_count(), alive_tasks()));
        });
    });
}
