//! The `herald` binary as an operator meets it: start-up errors, the
//! listening line, and a clean exit on SIGTERM.
//!
//! Every run gets a cleared environment, so `HERALD_*` variables of the
//! shell running the tests cannot change what is tested. No NATS is needed:
//! the edge starts without it (reporting itself unready) and drains without
//! it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// How long any one step may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(20);

/// `herald` with `args` and only the variables in `env`.
fn herald(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_herald"));
    command.args(args).env_clear().envs(env.iter().copied());
    command
}

/// Runs `herald` to its end, expecting it to refuse to start.
fn refused(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let output = herald(args, env).output().unwrap();
    (output.status.code(), String::from_utf8(output.stderr).unwrap())
}

#[test]
fn a_bad_setting_is_one_line_on_stderr_and_exit_code_2() {
    let env = [("HERALD_ALLOW_ANONYMOUS", "true"), ("HERALD_MAX_MESSAGE_BYTES", "abc")];
    let (code, stderr) = refused(&["edge"], &env);
    assert_eq!(code, Some(2));
    assert_eq!(
        stderr,
        "herald: bad setting HERALD_MAX_MESSAGE_BYTES=\"abc\" (from environment): \
         expected a whole number of at least 256\n"
    );
}

#[test]
fn a_missing_key_is_one_line_naming_the_secret_setting() {
    let (code, stderr) = refused(&["edge"], &[]);
    assert_eq!(code, Some(2));
    assert!(stderr.starts_with("herald: missing setting HERALD_JWT_SECRET: "), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn a_bad_flag_value_is_reported_as_a_setting_not_as_usage() {
    let (code, stderr) = refused(&["edge", "--allow-anonymous", "maybe"], &[]);
    assert_eq!(code, Some(2));
    assert_eq!(
        stderr,
        "herald: bad setting HERALD_ALLOW_ANONYMOUS=\"maybe\" (from flag --allow-anonymous): \
         expected true or false (or 1/0, yes/no)\n"
    );
}

/// A running `herald edge` whose log lines arrive on a channel.
struct Running {
    /// The process.
    child: Child,
    /// Its standard output, line by line.
    lines: mpsc::Receiver<String>,
}

impl Running {
    fn start(args: &[&str], env: &[(&str, &str)]) -> Running {
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

    /// Waits for a log line containing `needle` and returns it.
    fn line_containing(&self, needle: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).unwrap_or_else(|_| panic!("no log line with {needle:?}"));
            if line.contains(needle) {
                return line;
            }
        }
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill").arg(format!("-{name}")).arg(self.child.id().to_string()).status().unwrap();
        assert!(status.success());
    }

    fn wait(&mut self) -> ExitStatus {
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

/// `GET path` over plain HTTP/1.1, returning the whole response.
fn get(addr: SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn the_edge_says_where_it_listens_and_exits_0_on_sigterm() {
    let env = [
        ("HERALD_ALLOW_ANONYMOUS", "true"),
        // Nothing listens on port 1: the edge must start and stop without NATS.
        ("HERALD_NATS_URL", "nats://127.0.0.1:1"),
        ("HERALD_LOG", "herald=info"),
        // Short, so that an edge that overruns its drain fails the test soon.
        ("HERALD_DRAIN_TIMEOUT_MS", "1000"),
    ];
    let mut edge = Running::start(&["edge", "--listen", "127.0.0.1:0"], &env);
    let line = edge.line_containing(" listening on ");
    let (_, addr) = line.split_once(" listening on ").unwrap();
    let addr: SocketAddr = addr.trim().parse().unwrap();
    assert!(line.contains(" edge "), "{line}");
    assert!(get(addr, "/healthz").starts_with("HTTP/1.1 200"));

    edge.signal("TERM");
    edge.line_containing("SIGTERM received: draining");
    assert_eq!(edge.wait().code(), Some(0));
}

#[test]
fn sigint_drains_too() {
    let env = [
        ("HERALD_JWT_SECRET", "test-secret"),
        ("HERALD_NATS_URL", "nats://127.0.0.1:1"),
        ("HERALD_DRAIN_TIMEOUT_MS", "1000"),
    ];
    let mut edge = Running::start(&["edge", "--listen", "127.0.0.1:0", "--log", "herald=info"], &env);
    edge.line_containing(" listening on ");
    edge.signal("INT");
    assert_eq!(edge.wait().code(), Some(0));
}
