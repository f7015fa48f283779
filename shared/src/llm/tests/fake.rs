//! A loopback HTTP/1.1 server (RFC 9112 framing: `Content-Length` request bodies, chunked
//! streamed answers) that plays a script of answers, one per request, and records what it was
//! sent. The bodies it streams are each test's reproduction of a provider's documented format.

use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

use crate::outbound::Url;

/// One scripted answer.
#[derive(Debug, Clone)]
pub(super) enum Reply {
    /// A whole answer: status line text (`429 Too Many Requests`), extra header lines (each
    /// ending `\r\n`) and a body sent with `Content-Length`.
    Whole {
        status: &'static str,
        headers: String,
        body: String,
    },
    /// `200 OK` with this content type, each part as one chunk, then `end`.
    Stream {
        content_type: &'static str,
        parts: Vec<String>,
        end: End,
    },
    /// Reads the request and never answers (a model that is still loading).
    Silent,
}

/// How a streamed answer ends.
#[derive(Debug, Clone, Copy)]
pub(super) enum End {
    /// The last chunk (`0\r\n\r\n`), then the connection closes.
    Complete,
    /// Nothing more: the connection stays open until the client closes it, which the server
    /// reports through [`Fake::disconnected`].
    Hold,
    /// The connection closes without ending the body.
    Cut,
}

/// A request as the server read it.
#[derive(Debug, Clone)]
pub(super) struct Recorded {
    /// Request line and headers.
    pub(super) head: String,
    /// The JSON body.
    pub(super) body: Value,
}

pub(super) struct Fake {
    base: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
    disconnected: Arc<Notify>,
}

impl Fake {
    /// Request n (from 0) gets `script[n]`, or the script's last answer past its end.
    pub(super) async fn start(script: Vec<Reply>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let disconnected = Arc::new(Notify::new());
        let (log, gone) = (Arc::clone(&requests), Arc::clone(&disconnected));
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (log, gone) = (Arc::clone(&log), Arc::clone(&gone));
                let script = script.clone();
                tokio::spawn(async move {
                    let Some(recorded) = read_request(&mut stream).await else {
                        return;
                    };
                    let n = {
                        let mut log = log.lock().unwrap();
                        log.push(recorded);
                        log.len() - 1
                    };
                    let reply = script[n.min(script.len() - 1)].clone();
                    play(stream, reply, &gone).await;
                });
            }
        });
        Self {
            base,
            requests,
            disconnected,
        }
    }

    pub(super) fn url(&self) -> Url {
        Url::parse(&self.base).unwrap()
    }

    /// A base URL with a path, as OpenAI-compatible servers have (`/v1`).
    pub(super) fn url_at(&self, path: &str) -> Url {
        Url::parse(&format!("{}{path}", self.base)).unwrap()
    }

    pub(super) fn host(&self) -> String {
        self.base.trim_start_matches("http://").to_owned()
    }

    pub(super) fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    /// Returns once a held connection has been closed by the client.
    pub(super) async fn disconnected(&self) {
        self.disconnected.notified().await;
    }
}

async fn read_request(stream: &mut TcpStream) -> Option<Recorded> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await.ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let length = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await.ok()?;
    Some(Recorded {
        head,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    })
}

async fn play(mut stream: TcpStream, reply: Reply, gone: &Notify) {
    match reply {
        Reply::Whole {
            status,
            headers,
            body,
        } => {
            let answer = format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(answer.as_bytes()).await;
        }
        Reply::Stream {
            content_type,
            parts,
            end,
        } => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            );
            if stream.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            for part in parts {
                let chunk = format!("{:x}\r\n{part}\r\n", part.len());
                if stream.write_all(chunk.as_bytes()).await.is_err() {
                    return;
                }
                let _ = stream.flush().await;
            }
            match end {
                End::Complete => {
                    let _ = stream.write_all(b"0\r\n\r\n").await;
                }
                End::Cut => {}
                End::Hold => hold(stream, gone).await,
            }
        }
        Reply::Silent => hold(stream, gone).await,
    }
}

/// Waits for the client to close the connection (a read of 0 bytes or an error), then says so.
async fn hold(mut stream: TcpStream, gone: &Notify) {
    let mut buf = [0u8; 256];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    gone.notify_one();
}
