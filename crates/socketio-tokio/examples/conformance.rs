//! The server the official test suites of the protocol specs expect
//! (Socket.IO v5, Engine.IO v4).
//!
//! ```text
//! cargo run --release -p socketio-tokio --example conformance -- socketio
//! cargo run --release -p socketio-tokio --example conformance -- engineio
//! ```
//!
//! Flags: `--port N` (default 3000; 0 for any free port), `--ping-interval MS`
//! (300), `--ping-timeout MS` (200), `--allow-eio3` (also serve Engine.IO v3
//! clients, that is Socket.IO v2 clients, as the reference's `allowEIO3`).
//! It listens on 127.0.0.1 and prints `<mode> conformance server on <address>`.
//!
//! - `socketio`: namespaces `/` and `/custom` emit `auth` with the
//!   handshake's auth object at once; on `/`, `message` is answered with
//!   `message-back` (same arguments, binary included) and
//!   `message-with-ack` is acknowledged with its arguments.
//! - `engineio`: bare Engine.IO at `/engine.io/`, echoing every message.
//!
//! The suites, ported to node's test runner, are `interop/suites/*.mjs`;
//! `tests/protocol_suites.rs` runs them against this server, or by hand:
//!
//! ```text
//! SERVER_URL=http://127.0.0.1:3000 node --test interop/suites/socketio.mjs
//! SERVER_URL=http://127.0.0.1:3000 node --test interop/suites/engineio.mjs
//! ```

use std::time::Duration;

use socketio_tokio::{
    AckSender, Cors, EngineSocket, Payload, RawArgs, Socket, SocketIoBuilder, Str,
};

fn usage() -> ! {
    eprintln!(
        "usage: conformance <socketio|engineio> [--port N] [--ping-interval MS] [--ping-timeout MS] [--allow-eio3]"
    );
    std::process::exit(2)
}

/// Emits `auth` with the auth object as the client sent it (`{}` when none).
fn emit_auth(socket: &Socket) {
    let auth = socket
        .handshake()
        .auth_payload()
        .map_or_else(|| "{}".to_owned(), |p| p.json().to_string());
    if let Ok(args) = Payload::from_json(Str::from(format!("[{auth}]")), Vec::new()) {
        let _ = socket.emit_raw("auth", args);
    }
}

// One thread, like the reference server: the suites send some requests at
// the same instant on two connections (a poll and a POST that closes the
// session) and expect them handled in the order they were sent. A
// multi-thread runtime may run the second one first (a task woken last runs
// first on its worker).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| usage());
    let (mut port, mut interval, mut timeout) = (3000u16, 300u64, 200u64);
    let mut allow_eio3 = false;
    while let Some(flag) = args.next() {
        if flag == "--allow-eio3" {
            allow_eio3 = true;
            continue;
        }
        let value = args.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            "--port" => port = value.parse().unwrap_or_else(|_| usage()),
            "--ping-interval" => interval = value.parse().unwrap_or_else(|_| usage()),
            "--ping-timeout" => timeout = value.parse().unwrap_or_else(|_| usage()),
            _ => usage(),
        }
    }
    let builder = SocketIoBuilder::new()
        .ping_interval(Duration::from_millis(interval))
        .ping_timeout(Duration::from_millis(timeout))
        .max_payload(1_000_000)
        .connect_timeout(Duration::from_millis(1000))
        .allow_eio3(allow_eio3)
        .cors(Cors::any());
    let io = match mode.as_str() {
        "socketio" => {
            let io = builder.build()?;
            io.ns("/", |socket: Socket| async move {
                emit_auth(&socket);
                socket.on(
                    "message",
                    |socket: Socket, RawArgs(args): RawArgs| async move {
                        let _ = socket.emit_raw("message-back", args);
                    },
                );
                socket.on(
                    "message-with-ack",
                    |RawArgs(args): RawArgs, ack: AckSender| async move {
                        let _ = ack.send_raw(args);
                    },
                );
            });
            io.ns("/custom", |socket: Socket| async move {
                emit_auth(&socket);
            });
            io
        }
        "engineio" => builder.build_engine(|mut socket: EngineSocket| async move {
            while let Some(message) = socket.recv().await {
                let _ = socket.send(message);
            }
        })?,
        _ => usage(),
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("{mode} conformance server on {}", listener.local_addr()?);
    let shutdown = io.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            shutdown.shutdown().await;
        }
    });
    io.serve(listener).await?;
    Ok(())
}
