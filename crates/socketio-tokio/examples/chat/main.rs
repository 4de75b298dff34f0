//! A chat in the browser: names, rooms with their members, messages
//! acknowledged by the server, typing indicators, the last 50 messages of a
//! room on joining, and automatic reconnection. Everything is in memory.
//!
//! ```text
//! npm ci --prefix interop      # once: the official browser client
//! cargo run --release -p socketio-tokio --example chat
//! ```
//!
//! Then open <http://127.0.0.1:3000>. Flags: `--addr <ip>` (default
//! 127.0.0.1), `--port <port>` (default 3000), `--client <path>` (the
//! `socket.io.min.js` to serve), `--redis <url>` (join the cluster of every
//! instance started with the same Redis: messages, typing and presence
//! events reach the members of a room on every instance; each instance
//! keeps its own member lists and history), `--redis-cluster <url,...>`
//! (the same through a Redis Cluster, with the sharded adapter),
//! `--redis-streams <url>` (the same through Redis Streams),
//! `--postgres <connection string>` (the same through Postgres),
//! `--metrics` (Prometheus metrics at `/metrics`), `--admin <password>` (the
//! Socket.IO Admin UI at `/admin/`, user `admin`; `--admin-ui <path>`: the
//! UI's files, the npm package's `ui/dist`). The event contract is in
//! `README.md`.

mod server;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "\
usage: chat [--addr <ip>] [--port <port>] [--client <path to socket.io.min.js>]
            [--redis <redis://host:port>]
            [--redis-cluster <redis://host:port,...>]
            [--redis-streams <redis://host:port>]
            [--postgres <postgresql://user@host:port/db>] [--metrics]
            [--admin <password>] [--admin-ui <path to @socket.io/admin-ui/ui/dist>]

Serves the chat page and its Socket.IO endpoint on http://<addr>:<port>
(default http://127.0.0.1:3000). With --redis, every instance started with
the same Redis forms one cluster; --redis-cluster does the same through the
nodes of a Redis Cluster (sharded pub/sub), --redis-streams through Redis
Streams, --postgres through Postgres. With --metrics, Prometheus metrics
are served at /metrics. With --admin, the Socket.IO Admin UI is at
http://<addr>:<port>/admin/ (user admin, the password given).";

struct Args {
    addr: SocketAddr,
    client: PathBuf,
    cluster: Option<server::Backend>,
    metrics: bool,
    admin: Option<String>,
    admin_ui: PathBuf,
}

/// The arguments, or `None` when help was asked for.
fn parse_args() -> Result<Option<Args>, String> {
    let mut ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let mut port: Option<u16> = None;
    let mut addr: Option<SocketAddr> = None;
    let mut client = server::default_client_path();
    let mut clusters = Vec::new();
    let mut metrics = false;
    let mut admin = None;
    let mut admin_ui = server::default_admin_ui_path();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f.to_owned(), Some(v.to_owned())),
            None => (arg.clone(), None),
        };
        if flag == "-h" || flag == "--help" {
            println!("{USAGE}");
            return Ok(None);
        }
        if flag == "--metrics" {
            metrics = true;
            continue;
        }
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{flag} needs a value\n\n{USAGE}"))
        };
        match flag.as_str() {
            "--addr" => {
                let v = value()?;
                // An address with its port (`0.0.0.0:8080`) or an IP alone.
                if let Ok(a) = v.parse::<SocketAddr>() {
                    addr = Some(a);
                } else {
                    ip = v
                        .parse()
                        .map_err(|_| format!("--addr: `{v}` is not an IP address"))?;
                }
            }
            "--port" => {
                let v = value()?;
                port = Some(
                    v.parse()
                        .map_err(|_| format!("--port: `{v}` is not a port number"))?,
                );
            }
            "--client" => client = PathBuf::from(value()?),
            "--redis" => clusters.push(server::Backend::Redis(value()?)),
            "--redis-cluster" => clusters.push(server::Backend::RedisCluster(value()?)),
            "--redis-streams" => clusters.push(server::Backend::RedisStreams(value()?)),
            "--postgres" => clusters.push(server::Backend::Postgres(value()?)),
            "--admin" => admin = Some(value()?),
            "--admin-ui" => admin_ui = PathBuf::from(value()?),
            _ => return Err(format!("unknown argument `{arg}`\n\n{USAGE}")),
        }
    }
    let addr = match (addr, port) {
        (Some(a), Some(p)) => SocketAddr::new(a.ip(), p),
        (Some(a), None) => a,
        (None, p) => SocketAddr::new(ip, p.unwrap_or(3000)),
    };
    if clusters.len() > 1 {
        return Err(format!(
            "--redis, --redis-cluster, --redis-streams and --postgres exclude each other\n\n{USAGE}"
        ));
    }
    Ok(Some(Args {
        addr,
        client,
        cluster: clusters.pop(),
        metrics,
        admin,
        admin_ui,
    }))
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = match parse_args() {
        Ok(Some(a)) => a,
        Ok(None) => return ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let client_js = match server::load_client(&args.client) {
        Ok(js) => js,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::FAILURE;
        }
    };
    let listener = match tokio::net::TcpListener::bind(args.addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot listen on {}: {e}", args.addr);
            return ExitCode::FAILURE;
        }
    };
    match listener.local_addr() {
        Ok(addr) => println!("chat on http://{addr}"),
        Err(_) => println!("chat on http://{}", args.addr),
    }
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let io = match server::new_server() {
        Ok(io) => io,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Kept alive for as long as the server runs.
    let _adapter = match &args.cluster {
        Some(cluster) => match cluster.join(&io).await {
            Ok((adapter, joined)) => {
                println!("in the cluster of {joined}");
                Some(adapter)
            }
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        },
        None => None,
    };
    let mut routes = axum::Router::new();
    if let Some(password) = &args.admin {
        let server_id = match listener.local_addr() {
            Ok(addr) => format!("chat@{addr}"),
            Err(_) => format!("chat@{}", args.addr),
        };
        match server::admin(&io, password, server_id, &args.admin_ui) {
            Ok(ui) => {
                println!("admin UI on /admin/ (user admin)");
                routes = routes.merge(server::admin_routes(ui));
            }
            Err(message) => {
                eprintln!("error: {message}");
                return ExitCode::FAILURE;
            }
        }
    }
    if args.metrics {
        let metrics = socketio_metrics::Metrics::new(&io);
        routes = routes.route_service("/metrics", metrics);
        println!("metrics on /metrics");
    }
    let http = server::http_server(&io);
    match server::serve_with_routes(io, http, listener, client_js, routes, stop).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
