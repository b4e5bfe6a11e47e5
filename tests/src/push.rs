//! A client of the router's Workerman-style push port: plain TCP, one line
//! out, one line back, as Workerman's push example speaks it.

use std::net::SocketAddr;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use crate::RECV_TIMEOUT;

/// One connection to a push port.
#[derive(Debug)]
pub struct PushClient {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

impl PushClient {
    pub async fn connect(addr: SocketAddr) -> PushClient {
        let stream = TcpStream::connect(addr).await.unwrap_or_else(|e| panic!("push port {addr}: {e}"));
        let (reader, writer) = stream.into_split();
        PushClient { reader: BufReader::new(reader), writer }
    }

    /// Writes `bytes` as they are (no newline added).
    pub async fn write(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).await.expect("write to the push port");
    }

    /// Writes `line` and a newline, and returns the answer line.
    pub async fn push(&mut self, line: &str) -> String {
        self.write(format!("{line}\n").as_bytes()).await;
        self.answer().await
    }

    /// The next answer line, without its newline; panics at the end of the
    /// stream or after [`RECV_TIMEOUT`].
    pub async fn answer(&mut self) -> String {
        self.next_line().await.expect("the push port closed the connection instead of answering")
    }

    /// The next line, or `None` once the port closed the connection. A
    /// reset is a close too: the kernel resets a connection closed with
    /// bytes it never read (half a line the port had not read yet).
    pub async fn next_line(&mut self) -> Option<String> {
        let mut line = String::new();
        let read = tokio::time::timeout(RECV_TIMEOUT, self.reader.read_line(&mut line))
            .await
            .expect("no answer from the push port in time");
        match read {
            Ok(read) => (read > 0).then(|| line.trim_end_matches('\n').to_owned()),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => None,
            Err(e) => panic!("read from the push port: {e}"),
        }
    }
}
