//! `faultproxy`: the fault-injecting proxy in a process of its own.
//!
//! ```text
//! faultproxy --target ADDR [--port N] [--seed N]
//!            [--drop-after-bytes MIN-MAX] [--drop-after-ms MIN-MAX]
//!            [--stall-every-ms MIN-MAX --stall-ms N] [--latency-ms N]
//!            [--bandwidth BYTES_PER_SEC] [--half-open-after-ms MIN-MAX]
//!            [--stop-reading-after-ms MIN-MAX]
//! ```
//!
//! It prints `listening on <addr>`, then reads commands, one a line, on its standard
//! input: `cut`, `blackout MS`, `half-open`, `stop-reading`, `calm`, and `stats`, which
//! prints `stats accepted=.. refused=.. dropped=.. cut=.. half_open=.. stopped_reading=..
//! live=..`. Every command but `stats` answers `ok N` with the connections it touched.
//! It ends when its standard input closes.

use std::net::SocketAddr;
use std::time::Duration;

use faultproxy::{Between, Faults, Proxy};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

fn range(text: &str) -> Result<Between<u64>, String> {
    let (min, max) = text.split_once('-').unwrap_or((text, text));
    let parse = |v: &str| v.parse::<u64>().map_err(|e| format!("`{text}`: {e}"));
    Ok(Between::new(parse(min)?, parse(max)?))
}

fn ms(range: Between<u64>) -> Between<Duration> {
    Between::new(
        Duration::from_millis(range.min),
        Duration::from_millis(range.max),
    )
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut target: Option<SocketAddr> = None;
    let (mut port, mut seed) = (0u16, 0u64);
    let mut faults = Faults::default();
    let mut stall_every = None;
    let mut stall_ms = 0;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--target" => target = Some(value.parse()?),
            "--port" => port = value.parse()?,
            "--seed" => seed = value.parse()?,
            "--drop-after-bytes" => faults = faults.drop_after_bytes(range(&value)?),
            "--drop-after-ms" => faults = faults.drop_after(ms(range(&value)?)),
            "--stall-every-ms" => stall_every = Some(ms(range(&value)?)),
            "--stall-ms" => stall_ms = value.parse()?,
            "--latency-ms" => faults = faults.latency(Duration::from_millis(value.parse()?)),
            "--bandwidth" => faults = faults.bandwidth(value.parse()?),
            "--half-open-after-ms" => faults = faults.half_open_after(ms(range(&value)?)),
            "--stop-reading-after-ms" => faults = faults.stop_reading_after(ms(range(&value)?)),
            other => return Err(format!("unknown flag `{other}`").into()),
        }
    }
    if let Some(every) = stall_every {
        faults = faults.stall(every, Duration::from_millis(stall_ms));
    }
    let target = target.ok_or("--target is needed")?;
    let listener = tokio::net::TcpSocket::new_v4()?;
    listener.set_reuseaddr(true)?;
    listener.bind(SocketAddr::from(([127, 0, 0, 1], port)))?;
    let proxy = Proxy::listen(listener.listen(4096)?, target, faults, seed)?;
    let mut out = tokio::io::stdout();
    out.write_all(format!("listening on {}\n", proxy.addr()).as_bytes())
        .await?;
    out.flush().await?;
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        let mut words = line.split_whitespace();
        let answer = match (words.next(), words.next()) {
            (Some("cut"), _) => format!("ok {}", proxy.cut()),
            (Some("blackout"), Some(ms)) => {
                format!("ok {}", proxy.blackout(Duration::from_millis(ms.parse()?)))
            }
            (Some("half-open"), _) => format!("ok {}", proxy.half_open_all()),
            (Some("stop-reading"), _) => format!("ok {}", proxy.stop_reading_all()),
            (Some("calm"), _) => {
                proxy.calm();
                "ok 0".to_owned()
            }
            (Some("stats"), _) => {
                let s = proxy.stats();
                format!(
                    "stats accepted={} refused={} dropped={} cut={} half_open={} stopped_reading={} live={}",
                    s.accepted, s.refused, s.dropped, s.cut, s.half_open, s.stopped_reading, s.live
                )
            }
            _ => format!("error unknown command `{line}`"),
        };
        out.write_all(format!("{answer}\n").as_bytes()).await?;
        out.flush().await?;
    }
    Ok(())
}
