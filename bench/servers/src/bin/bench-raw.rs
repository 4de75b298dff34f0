//! The ceiling: a raw tokio-tungstenite WebSocket server with no Engine.IO or
//! Socket.IO, on a current-thread runtime. It accepts a WebSocket on any path
//! and echoes every text and binary frame; it answers pings itself. Its
//! read buffer is 4 KiB (tungstenite's default is 128 KiB), as ours, and it
//! sets TCP_NODELAY as the other servers do.

use bench_servers::announce;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listener = bench_servers::listen()?;
    announce(listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let config = WebSocketConfig::default()
                .read_buffer_size(4 * 1024)
                .write_buffer_size(4 * 1024);
            let Ok(mut ws) =
                tokio_tungstenite::accept_async_with_config(stream, Some(config)).await
            else {
                return;
            };
            while let Some(Ok(msg)) = ws.next().await {
                if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
                    break;
                }
            }
        });
    }
}
