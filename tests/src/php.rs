//! Real `php` from Debian, for the PHP SDK's and the PHP example's tests.
//!
//! - [`PhpServer`]: `php -S` serving a directory (a handler endpoint, the
//!   example app) on a free port, killed on drop.
//! - [`PhpDriver`]: one `php` process running the SDK driver
//!   (`sdk/php/tests/integration/driver.php`), which reads one JSON command
//!   per line (make an SDK object, call one of its methods) and answers one
//!   JSON line: the call's result, or the exception it threw with its class,
//!   status and message. One process serves a whole test, so a test can
//!   stop NATS between two calls of the same publisher.
//!
//! The binary is `php` on `PATH`, or `PHP_BIN`. [`Php::Minimal`] runs it
//! with `-n` (no ini files: no ext-curl, no mbstring), the smallest PHP the
//! SDK supports, which makes it take the streams path.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::process::{Child, Command};
use tokio::time::Instant;

use crate::json_lines::JsonLines;

/// How long one driver command may take (a timeout test waits 1 s).
const CALL_TIMEOUT: Duration = Duration::from_secs(15);

/// The repository's root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ is in the repository").to_path_buf()
}

/// Which PHP runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Php {
    /// `php` as installed, with its extensions (ext-curl).
    Full,
    /// `php -n`: no ini files, so no ext-curl: the SDK's streams path.
    Minimal,
}

impl Php {
    fn command(self) -> Command {
        let mut command = Command::new(std::env::var("PHP_BIN").unwrap_or_else(|_| "php".to_owned()));
        if self == Php::Minimal {
            command.arg("-n");
        }
        // Warnings and notices to stderr, never into an answer.
        command.args(["-d", "display_errors=stderr", "-d", "error_reporting=-1"]);
        command.kill_on_drop(true);
        command
    }
}

/// `php -S` serving a directory.
#[derive(Debug)]
pub struct PhpServer {
    addr: SocketAddr,
    child: Child,
}

impl PhpServer {
    /// Serves `root` (relative to the repository) with `env` set, on a free
    /// port of 127.0.0.1, once it takes connections.
    pub async fn start(root: &str, env: &[(&str, String)]) -> PhpServer {
        for _ in 0..5 {
            // The port may be taken between the probe and php's bind: retry.
            if let Some(server) = PhpServer::spawn(free_addr(), root, env).await {
                return server;
            }
        }
        panic!("php -S did not start serving {root}");
    }

    /// Like [`PhpServer::start`], on `addr`, which must be free.
    pub async fn start_at(addr: SocketAddr, root: &str, env: &[(&str, String)]) -> PhpServer {
        PhpServer::spawn(addr, root, env)
            .await
            .unwrap_or_else(|| panic!("php -S did not start serving {root} on {addr}"))
    }

    async fn spawn(addr: SocketAddr, root: &str, env: &[(&str, String)]) -> Option<PhpServer> {
        let mut command = Php::Full.command();
        command
            // A group of its own: with workers, `php -S` forks, and the
            // whole group is killed on drop.
            .process_group(0)
            .arg("-S")
            .arg(addr.to_string())
            .arg("-t")
            .arg(repo().join(root))
            // Herald's call to a handler may come while a page's request runs.
            .env("PHP_CLI_SERVER_WORKERS", "4")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(if std::env::var_os("HERALD_TEST_LOGS").is_some() { Stdio::inherit() } else { Stdio::null() });
        for (name, value) in env {
            command.env(name, value);
        }
        let child = command.spawn().unwrap_or_else(|e| panic!("cannot run php (install php-cli): {e}"));
        let mut server = PhpServer { addr, child };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if server.child.try_wait().expect("php -S status").is_some() {
                return None;
            }
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return Some(server);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for PhpServer {
    /// Kills `php -S` and its workers.
    #[allow(unsafe_code, reason = "kill(2) of a process group has no wrapper in std")]
    fn drop(&mut self) {
        if let Some(pid) = self.child.id().and_then(|pid| libc::pid_t::try_from(pid).ok()) {
            // SAFETY: kill(2) on the process group this server leads.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
        }
        let _ = self.child.start_kill();
    }
}

/// A `php` process running the SDK driver.
#[derive(Debug)]
pub struct PhpDriver {
    driver: JsonLines<Php>,
}

impl PhpDriver {
    pub fn start(php: Php) -> PhpDriver {
        let mut command = php.command();
        command.arg(repo().join("sdk/php/tests/integration/driver.php"));
        PhpDriver { driver: JsonLines::spawn(php, command, CALL_TIMEOUT) }
    }

    pub fn php(&self) -> Php {
        *self.driver.name()
    }

    /// Sends one command and returns its answer: `{"ok": result}` or
    /// `{"error": {"class", "status", "message"}}`.
    pub async fn send(&mut self, command: Value) -> Value {
        self.driver.send(&command).await
    }

    /// `$objects[name] = new class(...args)`; panics if it throws.
    pub async fn new_object(&mut self, name: &str, class: &str, args: Value) {
        self.ok(json!({"new": class, "as": name, "args": args})).await;
    }

    /// `$objects[on]->method(...args)`: the answer, which may be an error.
    pub async fn call(&mut self, on: &str, method: &str, args: Value) -> Value {
        self.send(json!({"on": on, "call": method, "args": args})).await
    }

    /// A call that must succeed: its result.
    pub async fn ok_call(&mut self, on: &str, method: &str, args: Value) -> Value {
        self.ok(json!({"on": on, "call": method, "args": args})).await
    }

    /// A call that must throw: the exception's `{class, status, message}`.
    pub async fn error_call(&mut self, on: &str, method: &str, args: Value) -> Value {
        let answer = self.call(on, method, args.clone()).await;
        answer
            .get("error")
            .cloned()
            .unwrap_or_else(|| panic!("{:?}: {on}->{method}({args}) succeeded: {answer}", self.php()))
    }

    /// `Class::method(...args)`, which must succeed.
    pub async fn ok_static(&mut self, method: &str, args: Value) -> Value {
        self.ok(json!({"static": method, "args": args})).await
    }

    async fn ok(&mut self, command: Value) -> Value {
        let answer = self.send(command.clone()).await;
        match answer.get("ok") {
            Some(result) => result.clone(),
            None => panic!("{:?}: {command} failed: {answer}", self.php()),
        }
    }
}

/// An address of 127.0.0.1 nobody listens on right now.
pub fn free_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], crate::nats::free_port()))
}
