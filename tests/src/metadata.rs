//! A loopback stand-in for the GCE metadata server.

use super::*;
use std::io::Write as _;
use std::net::TcpListener;
use std::sync::atomic::AtomicBool;

/// Serves `GET /computeMetadata/v1/project/project-id` the way the real metadata server
/// does on the wire: the request must carry `Metadata-Flavor: Google` (else 403), and the
/// answer is the bare id as `application/text` with `Metadata-Flavor: Google`. Other paths
/// get 404. Records each request head it saw.
pub struct FakeMetadataServer {
    /// Where it listens (the value for `GCE_METADATA_HOST`).
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeMetadataServer {
    /// Starts answering with `project_id`.
    pub fn start(project_id: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake metadata server");
        let addr = listener.local_addr().expect("local addr");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen, stopped, project) = (requests.clone(), stop.clone(), project_id.to_owned());
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    let _ = answer(stream, &project, &seen);
                }
            }
        });
        Self {
            addr,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    /// The request heads received so far.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

fn answer(stream: TcpStream, project: &str, seen: &Mutex<Vec<String>>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(WAIT_TIMEOUT))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    seen.lock().unwrap().push(head.clone());
    let path = head.split_whitespace().nth(1).unwrap_or_default();
    let flavored = head.lines().skip(1).any(|l| {
        l.split_once(':').is_some_and(|(n, v)| {
            n.trim().eq_ignore_ascii_case("metadata-flavor") && v.trim() == "Google"
        })
    });
    let (status, body) = if !flavored {
        (
            "403 Forbidden",
            "Missing required header \"Metadata-Flavor\": \"Google\"\n",
        )
    } else if path == "/computeMetadata/v1/project/project-id" {
        ("200 OK", project)
    } else {
        ("404 Not Found", "Not Found\n")
    };
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status}\r\nMetadata-Flavor: Google\r\nContent-Type: application/text\r\n\
         Server: Metadata Server for VM\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}

impl Drop for FakeMetadataServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
