//! Loopback upstreams for the functions' outbound calls: plain HTTP/1.1 servers (message
//! framing as RFC 9112 defines it: `Content-Length` or `Transfer-Encoding: chunked`) that
//! answer a fixed response, never answer, or stream a huge body generated on the fly.

use super::*;
use std::io::Write as _;
use std::net::TcpListener;

/// What an [`Upstream`] does with each request.
#[derive(Clone, Copy)]
enum Behaviour {
    /// The same status line, extra headers and body every time.
    Answer(&'static str, &'static str, &'static str),
    /// Reads the request and never answers (the connection stays open).
    Hang,
    /// `200`, `application/json`, chunked: `[` then blanks up to this many bytes, generated
    /// chunk by chunk and never held in memory.
    Huge(usize),
}

/// A loopback server on its own threads, until the test process ends.
pub struct Upstream {
    /// Where it listens.
    pub addr: SocketAddr,
    heads: Arc<Mutex<Vec<String>>>,
    sent: Arc<AtomicUsize>,
}

const HUGE_CHUNK_BYTES: usize = 64 * 1024;

impl Upstream {
    /// Answers every request with `status` (`"302 Found"`), `headers` (each ending in CRLF)
    /// and `body`.
    pub fn answering(status: &'static str, headers: &'static str, body: &'static str) -> Self {
        Self::start(Behaviour::Answer(status, headers, body))
    }

    /// Accepts connections and reads requests but never answers.
    pub fn hanging() -> Self {
        Self::start(Behaviour::Hang)
    }

    /// Answers every request with a JSON-looking body of `bytes` bytes, streamed.
    pub fn huge(bytes: usize) -> Self {
        Self::start(Behaviour::Huge(bytes))
    }

    /// `http://ADDR`.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request head received so far.
    pub fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }

    /// Hanging: how many clients have closed their connection (gave up or were cancelled).
    pub fn hung_up(&self) -> usize {
        self.sent.load(Ordering::SeqCst)
    }

    /// Body bytes written to connections so far (huge bodies).
    pub fn sent(&self) -> usize {
        self.sent.load(Ordering::SeqCst)
    }

    fn start(behaviour: Behaviour) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind upstream");
        let addr = listener.local_addr().expect("local addr");
        let heads = Arc::new(Mutex::new(Vec::new()));
        let sent = Arc::new(AtomicUsize::new(0));
        let (log, counter) = (heads.clone(), sent.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (log, counter) = (log.clone(), counter.clone());
                std::thread::spawn(move || serve(stream, behaviour, &log, &counter));
            }
        });
        Self { addr, heads, sent }
    }
}

fn serve(
    mut stream: TcpStream,
    behaviour: Behaviour,
    log: &Mutex<Vec<String>>,
    sent: &AtomicUsize,
) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
    let mut head = String::new();
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) if line == "\r\n" => break,
            Ok(_) => head.push_str(&line),
        }
    }
    log.lock().unwrap().push(head);
    match behaviour {
        Behaviour::Answer(status, headers, body) => {
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
        Behaviour::Hang => {
            // Hold the connection until the client gives up, then count that it did.
            let _ = reader.read_to_end(&mut Vec::new());
            sent.fetch_add(1, Ordering::SeqCst);
        }
        Behaviour::Huge(total) => {
            let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                        Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n1\r\n[\r\n";
            if stream.write_all(head.as_bytes()).is_err() {
                return;
            }
            let chunk = format!(
                "{HUGE_CHUNK_BYTES:x}\r\n{}\r\n",
                " ".repeat(HUGE_CHUNK_BYTES)
            );
            let mut written = 1;
            while written < total && stream.write_all(chunk.as_bytes()).is_ok() {
                written += HUGE_CHUNK_BYTES;
                sent.fetch_add(HUGE_CHUNK_BYTES, Ordering::SeqCst);
            }
            let _ = stream.write_all(b"0\r\n\r\n");
        }
    }
}
