//! The network side: one task per HTTP request, one per WebSocket; each reports to the
//! client's task through a bounded channel.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use socketio_client_proto::{Data, Method, RequestId, Str};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::url::Target;

/// What the network tasks report.
#[derive(Debug)]
pub(crate) enum IoEvent {
    /// An HTTP answer; `None` when the request failed or its body went over the limit.
    Response(RequestId, Option<(u16, Bytes)>),
    /// A WebSocket opened; frames for it go into the sender.
    WsOpen(RequestId, mpsc::Sender<Data>),
    WsMessage(RequestId, Data),
    /// A WebSocket ended (`true`: with an error).
    WsClosed(RequestId, bool),
}

/// What every request needs.
pub(crate) struct Endpoint {
    pub(crate) target: Target,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) max_incoming: usize,
    /// The TLS client, for `https` and `wss`.
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<tokio_rustls::TlsConnector>,
}

/// A byte stream to the server: TCP, or TLS over TCP.
trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}

impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Stream for T {}

/// Connects to the server, with TLS when the URL asks for it.
async fn connect(endpoint: &Endpoint) -> Result<Box<dyn Stream>, BoxError> {
    let tcp = TcpStream::connect((endpoint.target.host.as_str(), endpoint.target.port)).await?;
    tcp.set_nodelay(true)?;
    if !endpoint.target.tls {
        return Ok(Box::new(tcp));
    }
    #[cfg(feature = "tls")]
    if let Some(tls) = &endpoint.tls {
        let name = rustls_pki_types::ServerName::try_from(endpoint.target.host.clone())?;
        return Ok(Box::new(tls.connect(name, tcp).await?));
    }
    Err("TLS is not supported by this build".into())
}

/// Frames waiting for one WebSocket's writer.
const WS_WRITE_QUEUE: usize = 256;

/// Sends one HTTP request and reports its answer.
pub(crate) async fn http(
    endpoint: Arc<Endpoint>,
    id: RequestId,
    method: Method,
    path_and_query: String,
    body: Bytes,
    tx: mpsc::Sender<IoEvent>,
) {
    let result = request(&endpoint, method, &path_and_query, body).await;
    if let Err(e) = &result {
        tracing::debug!(target: "socketio_client::io", ?id, "request failed: {e}");
    }
    let _ = tx.send(IoEvent::Response(id, result.ok())).await;
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

async fn request(
    endpoint: &Endpoint,
    method: Method,
    path_and_query: &str,
    body: Bytes,
) -> Result<(u16, Bytes), BoxError> {
    let stream = connect(endpoint).await?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    let conn = tokio::spawn(conn);
    let mut req = http::Request::builder()
        .method(match method {
            Method::Get => http::Method::GET,
            Method::Post => http::Method::POST,
        })
        .uri(path_and_query)
        .header(http::header::HOST, endpoint.target.authority());
    if method == Method::Post {
        req = req.header(http::header::CONTENT_TYPE, "text/plain;charset=UTF-8");
    }
    for (k, v) in &endpoint.headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let response = sender.send_request(req.body(Full::new(body))?).await;
    let result = async {
        let response = response?;
        let status = response.status().as_u16();
        let mut body = response.into_body();
        let mut out = BytesMut::new();
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame?.into_data() {
                if out.len() + data.len() > endpoint.max_incoming {
                    return Err::<_, BoxError>("response body over the limit".into());
                }
                out.extend_from_slice(&data);
            }
        }
        Ok((status, out.freeze()))
    }
    .await;
    conn.abort();
    result
}

/// Opens a WebSocket, reports it, then pumps its messages both ways until it ends.
pub(crate) async fn websocket(
    endpoint: Arc<Endpoint>,
    id: RequestId,
    path_and_query: String,
    tx: mpsc::Sender<IoEvent>,
) {
    let error = match run_websocket(&endpoint, id, &path_and_query, &tx).await {
        Ok(()) => false,
        Err(e) => {
            tracing::debug!(target: "socketio_client::io", ?id, "websocket: {e}");
            true
        }
    };
    let _ = tx.send(IoEvent::WsClosed(id, error)).await;
}

async fn run_websocket(
    endpoint: &Endpoint,
    id: RequestId,
    path_and_query: &str,
    tx: &mpsc::Sender<IoEvent>,
) -> Result<(), BoxError> {
    let stream = connect(endpoint).await?;
    let scheme = if endpoint.target.tls { "wss" } else { "ws" };
    let url = format!(
        "{scheme}://{}{}",
        endpoint.target.authority(),
        path_and_query
    );
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(url)?;
    for (k, v) in &endpoint.headers {
        request.headers_mut().insert(
            http::HeaderName::from_bytes(k.as_bytes())?,
            http::HeaderValue::from_str(v)?,
        );
    }
    let config = WebSocketConfig::default()
        .max_message_size(Some(endpoint.max_incoming))
        .max_frame_size(Some(endpoint.max_incoming));
    let (ws, _) =
        tokio_tungstenite::client_async_with_config(request, stream, Some(config)).await?;
    let (mut sink, mut stream) = ws.split();
    let (frames_tx, mut frames_rx) = mpsc::channel::<Data>(WS_WRITE_QUEUE);
    tx.send(IoEvent::WsOpen(id, frames_tx)).await?;
    let writer = async {
        while let Some(frame) = frames_rx.recv().await {
            let msg = match frame {
                Data::Text(t) => Message::text(t.as_str()),
                Data::Binary(b) => Message::binary(b),
            };
            sink.send(msg).await?;
        }
        // The client's task dropped the sender: close.
        let _ = sink.close().await;
        Ok::<(), BoxError>(())
    };
    let reader = async {
        while let Some(msg) = stream.next().await {
            let data = match msg? {
                Message::Text(t) => {
                    let bytes = Bytes::from(t);
                    Data::Text(Str::from_utf8(bytes).map_err(|_| "invalid utf-8")?)
                }
                Message::Binary(b) => Data::Binary(b),
                Message::Close(_) => return Ok(()),
                _ => continue,
            };
            tx.send(IoEvent::WsMessage(id, data)).await?;
        }
        Ok::<(), BoxError>(())
    };
    tokio::select! {
        r = writer => r,
        r = reader => r,
    }
}
