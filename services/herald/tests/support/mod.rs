//! What the tests of the `herald` binary share: running it with a clean
//! environment, reading its output, and plain HTTP requests to it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// How long any one step may take before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// `herald` with `args` and only the variables in `env`, so `HERALD_*`
/// variables of the shell running the tests cannot change what is tested.
pub fn herald(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_herald"));
    command.args(args).env_clear().envs(env.iter().copied());
    command
}

/// A running `herald` whose output lines arrive on a channel.
pub struct Running {
    /// The process.
    child: Child,
    /// Its standard output, line by line.
    lines: mpsc::Receiver<String>,
}

impl Running {
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> Running {
        let mut child = herald(args, env).stdout(Stdio::piped()).spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (send, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Running { child, lines }
    }

    /// Waits for an output line containing `needle` and returns it.
    pub fn line_containing(&self, needle: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).unwrap_or_else(|_| panic!("no output line with {needle:?}"));
            if line.contains(needle) {
                return line;
            }
        }
    }

    /// Waits for the `... listening on <addr>` line (the address maybe
    /// given as an `http://` URL); returns it and the address.
    pub fn listening(&self) -> (String, SocketAddr) {
        let line = self.line_containing(" listening on ");
        let (_, addr) = line.split_once(" listening on ").unwrap();
        let addr = addr.trim().trim_start_matches("http://");
        let addr = addr.parse().unwrap_or_else(|_| panic!("no address in {line:?}"));
        (line, addr)
    }

    pub fn signal(&self, name: &str) {
        let status = Command::new("kill").arg(format!("-{name}")).arg(self.child.id().to_string()).status().unwrap();
        assert!(status.success());
    }

    pub fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            thread::sleep(Duration::from_millis(20));
        }
        panic!("herald did not exit within {PATIENCE:?}");
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // Never leave a server behind when a test fails half-way.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP response, read whole.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// Header lines, names in lower case.
    headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    /// The value of header `name` (lower case), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(header, _)| header == name).map(|(_, value)| value.as_str())
    }

    /// The body, read as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }
}

/// `method path` with `headers` and `body` over plain HTTP/1.1. Bodies the
/// tests read are never chunked: `herald` answers with known lengths.
pub fn request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Response {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\n", body.len());
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    write!(stream, "{head}Connection: close\r\n\r\n{body}").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no HTTP response: {response:?}"));
    let mut lines = head.lines();
    let status = lines.next().and_then(|line| line.split(' ').nth(1)).and_then(|code| code.parse().ok());
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    Response { status: status.unwrap_or_else(|| panic!("no status in {head:?}")), headers, body: body.to_owned() }
}

/// `GET path`.
pub fn get(addr: SocketAddr, path: &str) -> Response {
    request(addr, "GET", path, &[], "")
}
