//! The physical floor: the least a process can do to answer `GET /health/ready` over TCP.
//!
//! Std only, one thread, no parsing beyond finding the end of the request head, so its start-up
//! time and memory are what exec, the dynamic loader and the kernel cost on this machine. The
//! function binaries are compared against it.

use std::env;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};

const BODY: &str = r#"{"status":"ready"}"#;

fn main() -> io::Result<()> {
    let host = env::var("HOST").unwrap_or_else(|_| "0.0.0.0".to_owned());
    let port = match env::var("PORT") {
        Ok(port) => port.parse::<u16>().map_err(|e| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("PORT={port}: {e}"))
        })?,
        Err(_) => 8080,
    };
    let listener = TcpListener::bind((host.as_str(), port))?;
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{BODY}",
        BODY.len()
    );
    // A client that hangs up early must not take the floor down: move on to the next one.
    for stream in listener.incoming().flatten() {
        let _ = serve(&stream, response.as_bytes());
    }
    Ok(())
}

/// Reads one request head (up to the blank line) and answers with `response`.
fn serve(stream: &TcpStream, response: &[u8]) -> io::Result<()> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    loop {
        line.clear();
        // Reading the whole head first means the close below never resets unread request bytes.
        if reader.read_line(&mut line)? == 0 || line.trim_end().is_empty() {
            break;
        }
    }
    let mut writer = stream;
    writer.write_all(response)
}
