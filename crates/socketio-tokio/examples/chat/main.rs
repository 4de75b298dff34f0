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
    redis: Option<String>,
    metrics: bool,
    redis_cluster: Option<String>,
    redis_streams: Option<String>,
    postgres: Option<String>,
    admin: Option<String>,
    admin_ui: PathBuf,
}

/// The arguments, or `None` when help was asked for.
fn parse_args() -> Result<Option<Args>, String> {
    let mut ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let mut port: Option<u16> = None;
    let mut addr: Option<SocketAddr> = None;
    let mut client = server::default_client_path();
    let mut redis = None;
    let mut metrics = false;
    let mut redis_cluster = None;
    let mut redis_streams = None;
    let mut postgres = None;
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
            "--redis" => redis = Some(value()?),
            "--redis-cluster" => redis_cluster = Some(value()?),
            "--redis-streams" => redis_streams = Some(value()?),
            "--postgres" => postgres = Some(value()?),
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
    let backends = [
        redis.is_some(),
        redis_cluster.is_some(),
        redis_streams.is_some(),
        postgres.is_some(),
    ];
    if backends.into_iter().filter(|b| *b).count() > 1 {
        return Err(format!(
            "--redis, --redis-cluster, --redis-streams and --postgres exclude each other\n\n{USAGE}"
        ));
    }
    Ok(Some(Args {
        addr,
        client,
        redis,
        metrics,
        redis_cluster,
        redis_streams,
        postgres,
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
    let _adapter = match attach_adapter(&io, &args).await {
        Ok(adapter) => adapter,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
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

/// The cluster adapter the flags ask for (at most one), attached to `io`.
async fn attach_adapter(
    io: &socketio_tokio::SocketIo,
    args: &Args,
) -> Result<Option<Box<dyn std::any::Any>>, String> {
    fn kept<A: 'static>(adapter: A, joined: String) -> Option<Box<dyn std::any::Any>> {
        println!("in the cluster of {joined}");
        Some(Box::new(adapter))
    }
    let error = |e: &dyn std::fmt::Display| e.to_string();
    if let Some(url) = &args.redis {
        let adapter = socketio_redis::RedisAdapter::builder(url).attach(io).await;
        return Ok(kept(adapter.map_err(|e| error(&e))?, url.clone()));
    }
    if let Some(urls) = &args.redis_cluster {
        let nodes = urls.split(',').map(str::to_owned);
        let adapter = socketio_redis::ShardedRedisAdapter::builder(nodes)
            .attach(io)
            .await;
        let joined = format!("the Redis Cluster {urls}");
        return Ok(kept(adapter.map_err(|e| error(&e))?, joined));
    }
    if let Some(url) = &args.redis_streams {
        let adapter = socketio_redis::StreamsRedisAdapter::builder(url)
            .attach(io)
            .await;
        let joined = format!("the Redis Streams of {url}");
        return Ok(kept(adapter.map_err(|e| error(&e))?, joined));
    }
    if let Some(config) = &args.postgres {
        let adapter = socketio_postgres::PostgresAdapter::builder(config)
            .attach(io)
            .await;
        return Ok(kept(
            adapter.map_err(|e| error(&e))?,
            format!("Postgres {config}"),
        ));
    }
    Ok(None)
}
