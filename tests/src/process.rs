//! The real `herald` binary under test.
//!
//! [`HeraldProcess`] runs `herald edge` (or `herald router` with
//! [`HeraldProcess::router`], or any command line) as a child process, with
//! `HERALD_*` variables set on the child's `Command` only (the test process
//! environment is never changed), and learns its port from the
//! `listening on <addr>` log line. Tests signal it (SIGTERM, SIGHUP) or
//! kill it outright ([`HeraldProcess::sigkill`]).
//!
//! # Where the `herald` binary comes from
//!
//! Cargo builds a binary for integration tests only within its own package
//! (`CARGO_BIN_EXE_<name>`), and `herald` lives in `services/herald`. So the
//! first [`HeraldProcess`] of a test binary runs
//! `cargo build -p herald --bin herald` (with the `cargo` that runs the
//! tests, into the same target directory and profile as the test binary,
//! found from `std::env::current_exe()`), which is a no-op when it is up to
//! date, and uses `target/<profile>/herald`. Cargo releases its build lock
//! before it runs tests, so this does not deadlock. Set `HERALD_BIN` to use
//! another binary instead.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use crate::edge::ws_url;
use crate::nats::NatsServer;

/// The `herald` binary to run, built if need be (see the module docs).
pub fn herald_binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY
        .get_or_init(|| {
            if let Some(path) = std::env::var_os("HERALD_BIN") {
                return PathBuf::from(path);
            }
            let exe = std::env::current_exe().expect("current_exe");
            // target/<profile>/deps/<test binary>
            let profile_dir = exe
                .parent()
                .and_then(|deps| deps.parent())
                .unwrap_or_else(|| panic!("cannot find the target directory from {}", exe.display()))
                .to_path_buf();
            let target_dir = profile_dir.parent().expect("target directory").to_path_buf();
            let profile = profile_dir.file_name().and_then(|p| p.to_str()).expect("profile directory").to_owned();
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let mut build = std::process::Command::new(cargo);
            build
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .args(["build", "--quiet", "-p", "herald", "--bin", "herald", "--target-dir"])
                .arg(&target_dir);
            // Without the variables cargo sets for this test binary: ring's
            // build script reruns when CARGO_MANIFEST_DIR changes, which
            // rebuilt herald and half its tree (minutes) whenever a test
            // built it after a plain `cargo build`, and back again.
            for (name, _) in std::env::vars_os() {
                if let Some(name) = name.to_str()
                    && [
                        "CARGO_MANIFEST_",
                        "CARGO_PKG_",
                        "CARGO_CRATE_",
                        "CARGO_BIN_",
                        "CARGO_PRIMARY_",
                        "CARGO_TARGET_TMPDIR",
                    ]
                    .iter()
                    .any(|prefix| name.starts_with(prefix))
                {
                    build.env_remove(name);
                }
            }
            match profile.as_str() {
                "debug" => {}
                "release" => {
                    build.arg("--release");
                }
                other => {
                    build.args(["--profile", other]);
                }
            }
            let status = build.status().unwrap_or_else(|e| panic!("cannot run cargo to build herald: {e}"));
            assert!(status.success(), "`cargo build -p herald` failed ({status})");
            let binary = profile_dir.join("herald");
            assert!(binary.exists(), "{} missing after cargo build", binary.display());
            binary
        })
        .clone()
}

/// A `herald` command line about to run.
#[must_use]
#[derive(Debug)]
pub struct HeraldCommand {
    args: Vec<String>,
    envs: Vec<(String, String)>,
}

impl HeraldCommand {
    /// Sets a variable on the child only.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.envs.push((name.to_owned(), value.to_owned()));
        self
    }

    async fn command(&self) -> Command {
        let binary = tokio::task::spawn_blocking(herald_binary).await.expect("building herald");
        let mut command = Command::new(binary);
        command.args(&self.args);
        // Only what the test sets: no HERALD_*, OTEL_* or log settings leak
        // in from the environment the tests run in.
        for (name, _) in std::env::vars_os() {
            if let Some(name) = name.to_str()
                && (name.starts_with("HERALD_") || name.starts_with("OTEL_") || name == "RUST_LOG")
            {
                command.env_remove(name);
            }
        }
        command.env("NO_COLOR", "1");
        for (name, value) in &self.envs {
            command.env(name, value);
        }
        command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
        command
    }

    /// Starts it and waits for its `listening on <addr>` line.
    pub async fn spawn(self) -> HeraldProcess {
        let mut child = self.command().await.spawn().expect("spawn herald");
        let output = Output::default();
        let (lines_tx, mut lines) = mpsc::unbounded_channel();
        output.collect(child.stdout.take().expect("stdout"), Stream::Stdout, lines_tx.clone());
        output.collect(child.stderr.take().expect("stderr"), Stream::Stderr, lines_tx);
        let wait = async {
            while let Some(line) = lines.recv().await {
                if let Some(addr) = parse_listening(&line) {
                    return Some(addr);
                }
            }
            None
        };
        let addr = match tokio::time::timeout(Duration::from_secs(30), wait).await {
            Ok(Some(addr)) => addr,
            Ok(None) => {
                let status = child.wait().await;
                panic!("herald exited ({status:?}) without a `listening on` line; output:\n{}", output.all())
            }
            Err(_) => panic!("herald printed no `listening on <addr>` line within 30 s; output:\n{}", output.all()),
        };
        HeraldProcess { child, addr, output }
    }

    /// Runs it until it exits (it must, within `timeout`): status, stderr
    /// lines, stdout lines.
    pub async fn run_to_exit(self, timeout: Duration) -> (ExitStatus, Vec<String>, Vec<String>) {
        let mut command = self.command().await;
        let child = command.spawn().expect("spawn herald");
        let output = tokio::time::timeout(timeout, child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("herald did not exit within {timeout:?}"))
            .expect("herald output");
        let lines = |bytes: &[u8]| String::from_utf8_lossy(bytes).lines().map(str::to_owned).collect::<Vec<_>>();
        (output.status, lines(&output.stderr), lines(&output.stdout))
    }
}

#[derive(Debug, Clone, Copy)]
enum Stream {
    Stdout,
    Stderr,
}

/// Everything a child printed, line by line.
#[derive(Debug, Clone, Default)]
struct Output {
    lines: Arc<Mutex<Vec<(Stream, String)>>>,
}

impl Output {
    fn collect<R: AsyncRead + Unpin + Send + 'static>(
        &self,
        from: R,
        stream: Stream,
        tx: mpsc::UnboundedSender<String>,
    ) {
        let lines = self.lines.clone();
        tokio::spawn(async move {
            let mut reader = BufReader::new(from).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                lines.lock().unwrap().push((stream, line.clone()));
                let _ = tx.send(line);
            }
        });
    }

    fn of(&self, wanted: fn(Stream) -> bool) -> Vec<String> {
        self.lines.lock().unwrap().iter().filter(|(s, _)| wanted(*s)).map(|(_, l)| l.clone()).collect()
    }

    fn all(&self) -> String {
        self.lines.lock().unwrap().iter().map(|(s, l)| format!("{s:?}: {l}")).collect::<Vec<_>>().join("\n")
    }
}

/// Finds the address in a `listening on <addr>` log line, in plain or JSON
/// log format, with or without colours.
pub fn parse_listening(line: &str) -> Option<SocketAddr> {
    let line = strip_ansi(line);
    let at = line.find("listening on")?;
    line[at + "listening on".len()..]
        .split(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '=' | ',' | '{' | '}' | '/' | '`'))
        .find_map(|token| token.parse().ok())
}

fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // ESC [ ... final byte in @..~
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) && c != '[' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The `herald` binary, running.
#[derive(Debug)]
pub struct HeraldProcess {
    child: Child,
    addr: SocketAddr,
    output: Output,
}

impl HeraldProcess {
    /// `herald <args>`, e.g. `HeraldProcess::command(&["edge"])`.
    pub fn command(args: &[&str]) -> HeraldCommand {
        HeraldCommand { args: args.iter().map(|a| (*a).to_owned()).collect(), envs: Vec::new() }
    }

    /// `herald edge` on `nats`, listening on 127.0.0.1:0, verifying tokens
    /// with the test HS256 secret.
    pub fn edge(nats: &NatsServer) -> HeraldCommand {
        HeraldProcess::command(&["edge"])
            .env("HERALD_NATS_URL", &nats.url())
            .env("HERALD_LISTEN", "127.0.0.1:0")
            .env("HERALD_JWT_SECRET", std::str::from_utf8(crate::TEST_SECRET).expect("ASCII secret"))
    }

    /// `herald router` on `nats`, listening on 127.0.0.1:0, with the API
    /// key `api_key`. Add `HERALD_ROUTES_FILE` (see
    /// [`RoutesFile`](crate::router::RoutesFile)) and
    /// `HERALD_WEBHOOK_SECRET` as the test needs.
    pub fn router(nats: &NatsServer, api_key: &str) -> HeraldCommand {
        HeraldProcess::command(&["router"])
            .env("HERALD_NATS_URL", &nats.url())
            .env("HERALD_LISTEN", "127.0.0.1:0")
            .env("HERALD_API_KEY", api_key)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn ws_url(&self, token: Option<&str>) -> String {
        ws_url(self.addr, token)
    }

    pub async fn http(&self, path: &str) -> (u16, String) {
        crate::http::get(self.addr, path).await
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("herald already reaped")
    }

    /// Sends SIGTERM.
    pub fn sigterm(&self) {
        self.signal(libc::SIGTERM);
    }

    /// Sends SIGHUP (`herald router` reloads its routes file).
    pub fn sighup(&self) {
        self.signal(libc::SIGHUP);
    }

    /// Kills it with SIGKILL, as a crash or the OOM killer would: no drain,
    /// no goodbye on NATS. Returns once it is reaped.
    pub async fn sigkill(&mut self) {
        self.signal(libc::SIGKILL);
        let status = self.wait(Duration::from_secs(10)).await;
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(libc::SIGKILL),
            "herald was not killed by SIGKILL: {status}"
        );
    }

    #[allow(unsafe_code, reason = "kill(2) with any signal has no wrapper in std")]
    fn signal(&self, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.pid()).expect("pid fits pid_t");
        // SAFETY: kill(2) with a pid we spawned and have not reaped yet.
        let result = unsafe { libc::kill(pid, signal) };
        assert_eq!(result, 0, "kill -{signal} {pid}: {}", std::io::Error::last_os_error());
    }

    /// A call to the backend API of a `herald router`; see
    /// [`crate::http::api`].
    pub async fn api(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
        key: Option<&str>,
    ) -> (u16, serde_json::Value) {
        crate::http::api(self.addr, method, path, body, key).await
    }

    /// The value of an unlabelled metric on its `/metrics`.
    pub async fn metric(&self, name: &str) -> u64 {
        let (status, page) = self.http("/metrics").await;
        assert_eq!(status, 200, "GET /metrics: {page}");
        crate::http::metric(&page, name).unwrap_or_else(|| panic!("no metric {name} in:\n{page}"))
    }

    /// Waits for it to exit, at most `timeout`.
    pub async fn wait(&mut self, timeout: Duration) -> ExitStatus {
        match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(status) => status.expect("wait for herald"),
            Err(_) => panic!("herald did not exit within {timeout:?}; output:\n{}", self.output.all()),
        }
    }

    pub fn stderr(&self) -> Vec<String> {
        self.output.of(|s| matches!(s, Stream::Stderr))
    }

    pub fn stdout(&self) -> Vec<String> {
        self.output.of(|s| matches!(s, Stream::Stdout))
    }

    /// How many lines it printed so far (either stream) contain `text`.
    pub fn lines_containing(&self, text: &str) -> usize {
        self.output.lines.lock().unwrap().iter().filter(|(_, line)| line.contains(text)).count()
    }

    /// Everything it printed so far, for failure messages.
    pub fn output(&self) -> String {
        self.output.all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_address_in_log_lines() {
        let addr: SocketAddr = "127.0.0.1:4711".parse().unwrap();
        for line in [
            "2026-01-01T00:00:00Z  INFO herald: listening on 127.0.0.1:4711",
            "INFO herald_edge: listening on addr=127.0.0.1:4711",
            "\u{1b}[32m INFO\u{1b}[0m listening on \u{1b}[3maddr\u{1b}[0m\u{1b}[2m=\u{1b}[0m127.0.0.1:4711",
            r#"{"level":"INFO","fields":{"message":"listening on 127.0.0.1:4711"}}"#,
            r#"{"level":"INFO","fields":{"message":"listening on","addr":"127.0.0.1:4711"}}"#,
            "listening on http://127.0.0.1:4711/ws",
        ] {
            assert_eq!(parse_listening(line), Some(addr), "{line}");
        }
        assert_eq!(parse_listening("connected to nats://127.0.0.1:4222"), None);
    }
}
