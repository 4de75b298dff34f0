//! Long-polling sessions on a multi-threaded runtime while the server
//! broadcasts to them all the time: a request takes its session's step on
//! its own task when the session's task is idle, and the session's task and
//! the requests keep finding each other busy. Every echo must come back, in
//! order, and every session must keep answering.

#![allow(clippy::unwrap_used)]

#[path = "common/raw.rs"]
mod raw;

use std::net::SocketAddr;
use std::time::Duration;

use raw::*;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const SESSIONS: usize = 16;
const ECHOES: usize = 60;

/// One keep-alive connection for GETs and one for POSTs, as a browser has.
struct Session {
    sid: String,
    get: TcpStream,
    post: TcpStream,
    addr: SocketAddr,
}

impl Session {
    async fn open(addr: SocketAddr) -> Session {
        let mut get = TcpStream::connect(addr).await.unwrap();
        let post = TcpStream::connect(addr).await.unwrap();
        let open = request(&mut get, addr, "GET", "EIO=4&transport=polling", "").await;
        let sid = open.body.split('"').nth(3).unwrap().to_owned();
        let mut session = Session {
            sid,
            get,
            post,
            addr,
        };
        session.post("40").await;
        session.until(|p| p.starts_with("40{")).await;
        session
    }

    fn query(&self) -> String {
        format!("EIO=4&transport=polling&sid={}", self.sid)
    }

    async fn post(&mut self, body: &str) {
        let query = self.query();
        let reply = request(&mut self.post, self.addr, "POST", &query, body).await;
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (200, "ok"),
            "{reply:?}"
        );
    }

    /// Polls until a packet for which `wanted` holds, answering pings.
    async fn until(&mut self, wanted: impl Fn(&str) -> bool) -> String {
        loop {
            let query = self.query();
            let reply = request(&mut self.get, self.addr, "GET", &query, "").await;
            assert_eq!(reply.status, 200, "{reply:?}");
            let mut found = None;
            for packet in reply.body.split('\x1e') {
                if packet == "2" {
                    self.post("3").await;
                } else if found.is_none() && wanted(packet) {
                    found = Some(packet.to_owned());
                }
            }
            if let Some(packet) = found {
                return packet;
            }
        }
    }
}

async fn request(
    stream: &mut TcpStream,
    addr: SocketAddr,
    method: &str,
    query: &str,
    body: &str,
) -> Reply {
    let head = format!(
        "{method} /socket.io/?{query} HTTP/1.1\r\nHost: {addr}\r\n\
         Content-Type: text/plain;charset=UTF-8\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let work = async {
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(body.as_bytes()).await.unwrap();
        read_reply(stream).await
    };
    tokio::time::timeout(WAIT, work)
        .await
        .expect("the session answers")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn polling_sessions_keep_answering_while_their_tasks_are_busy() {
    let server = start().await;
    // Commands from another task all the time: every session's task keeps
    // waking up while requests take its steps.
    let io = server.io.clone();
    let ticker = tokio::spawn(async move {
        let mut n = 0u64;
        loop {
            n += 1;
            let _ = io.emit("tick", &n);
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    });
    let mut clients = Vec::new();
    for _ in 0..SESSIONS {
        let addr = server.addr;
        clients.push(tokio::spawn(async move {
            let mut session = Session::open(addr).await;
            for i in 0..ECHOES {
                session.post(&format!("42[\"echo\",{i}]")).await;
                let back = session.until(|p| p.starts_with("42[\"echo-back\"")).await;
                assert_eq!(back, format!("42[\"echo-back\",{i}]"));
            }
        }));
    }
    for client in clients {
        client.await.unwrap();
    }
    ticker.abort();
    assert_eq!(server.io.connection_count(), SESSIONS);
    assert_eq!(server.io.task_count(), SESSIONS);
    assert_eq!(panics(), 0);
}
