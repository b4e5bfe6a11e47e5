//! The server processes of a suite: NATS and Redis for the whole run, and a
//! fresh gateway (Herald edges, or one peer) for every step, so no step
//! inherits another's allocator state or half-closed connections.
//!
//! Every process is started on a free loopback port, is ready once its port
//! takes a TCP connection, and is stopped with SIGTERM (then killed) when
//! its [`Server`] is stopped or dropped.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Serialize;
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

use crate::protocol::{Protocol, pusher};

/// How long a server may take to take connections: soketi loads for 15 s
/// and more on a busy machine.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a server may take to exit after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a starting server's port is tried.
const START_POLL: Duration = Duration::from_millis(20);

/// The Pusher app every Pusher-speaking gateway serves; its secret is the
/// run's token secret.
pub const PUSHER_APP_ID: &str = "bench";
pub const PUSHER_APP_KEY: &str = "bench-key";
/// soketi's entry point under the peers' `node_modules`.
pub const SOKETI_SERVER: &str = "node_modules/@soketi/soketi/bin/server.js";

/// A gateway the suite measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Contender {
    /// Herald edges (with NATS).
    Herald,
    /// uWebSockets.js, `bench/peers/uws.mjs`.
    Uws,
    /// Node `ws`, `bench/peers/ws.mjs`.
    Ws,
    /// Socket.IO with the Redis adapter, `bench/peers/socketio.mjs`.
    SocketIo,
    /// Herald edges serving socket.io-client on `/socket.io/`, published to
    /// on NATS.
    HeraldSocketIo,
    /// Herald edges speaking Pusher on `/app/<key>`, published to on NATS.
    HeraldPusher,
    /// The same, published to through a router's Pusher HTTP API.
    HeraldPusherRest,
    /// soketi (npm `@soketi/soketi`, on uWebSockets.js), a Pusher server.
    Soketi,
    /// sockudo (`cargo install sockudo`), a Pusher server in Rust.
    Sockudo,
}

impl Contender {
    pub const ALL: [Contender; 9] = [
        Contender::Herald,
        Contender::Uws,
        Contender::Ws,
        Contender::SocketIo,
        Contender::HeraldSocketIo,
        Contender::HeraldPusher,
        Contender::HeraldPusherRest,
        Contender::Soketi,
        Contender::Sockudo,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Contender::Herald => "Herald",
            Contender::Uws => "uWebSockets.js",
            Contender::Ws => "ws",
            Contender::SocketIo => "Socket.IO",
            Contender::HeraldSocketIo => "Herald (Socket.IO)",
            Contender::HeraldPusher => "Herald (Pusher)",
            Contender::HeraldPusherRest => "Herald (Pusher, REST)",
            Contender::Soketi => "soketi",
            Contender::Sockudo => "sockudo",
        }
    }

    pub fn protocol(self) -> Protocol {
        match self {
            Contender::Herald => Protocol::Herald,
            Contender::Uws | Contender::Ws => Protocol::Plain,
            Contender::SocketIo => Protocol::SocketIo,
            Contender::HeraldSocketIo => Protocol::HeraldSocketIo,
            Contender::HeraldPusher | Contender::HeraldPusherRest | Contender::Soketi | Contender::Sockudo => {
                Protocol::Pusher
            }
        }
    }

    /// Whether it is Herald (edges on NATS), in any of the protocols.
    pub fn is_herald(self) -> bool {
        matches!(
            self,
            Contender::Herald | Contender::HeraldSocketIo | Contender::HeraldPusher | Contender::HeraldPusherRest
        )
    }

    /// Whether it is a Pusher server (measured in the Pusher steps).
    pub fn speaks_pusher(self) -> bool {
        self.protocol() == Protocol::Pusher
    }

    /// Whether it is a Node program from the peers' directory.
    pub fn runs_on_node(self) -> bool {
        matches!(self, Contender::Uws | Contender::Ws | Contender::SocketIo | Contender::Soketi)
    }

    /// How a Pusher server is published to: its HTTP API, but NATS for
    /// [`Contender::HeraldPusher`].
    pub fn pusher_publish(self) -> pusher::Publish {
        if self == Contender::HeraldPusher { pusher::Publish::Nats } else { pusher::Publish::Rest }
    }

    /// The receivers' URL on a server listening on `addr`.
    pub fn url(self, addr: SocketAddr) -> String {
        match self {
            Contender::Herald | Contender::Uws | Contender::Ws => format!("ws://{addr}/ws"),
            Contender::SocketIo | Contender::HeraldSocketIo => {
                format!("ws://{addr}/socket.io/?EIO=4&transport=websocket")
            }
            Contender::HeraldPusher | Contender::HeraldPusherRest | Contender::Soketi | Contender::Sockudo => {
                format!("ws://{addr}/app/{PUSHER_APP_KEY}")
            }
        }
    }
}

/// Where the programs are, and the shared services' addresses.
#[derive(Debug)]
pub struct Environment {
    pub herald: PathBuf,
    pub peers: PathBuf,
    /// The sockudo program (a path, or a name looked up on `PATH`).
    pub sockudo: PathBuf,
    /// An empty directory the Pusher peers run in, so no stray `.env` or
    /// `config/config.toml` where the suite runs changes their settings.
    pub scratch: PathBuf,
    pub nats_url: String,
    /// The suite's nats-server, whose CPU counts as Herald's in the steps
    /// that measure CPU (Herald's edges do their work through it); `None`
    /// where a run measures only its edges.
    pub nats_pid: Option<u32>,
    pub redis_url: String,
    /// What Herald edges verify tokens with, and every Pusher app's secret.
    pub token_secret: String,
    /// Where Herald's processes export their traces (`--traces`); none
    /// exports when `None`, as shipped.
    pub traces: Option<super::traces::Receiver>,
}

impl Environment {
    /// For a run of Herald alone (no peers, no Redis, no traces): `herald`
    /// on `nats_url`, tokens signed with a fresh secret named after `run`.
    pub fn herald_only(herald: &Path, nats_url: String, scratch: PathBuf, run: &str) -> Environment {
        Environment {
            herald: herald.to_owned(),
            peers: PathBuf::new(),
            sockudo: PathBuf::new(),
            scratch,
            nats_url,
            nats_pid: None,
            redis_url: String::new(),
            token_secret: format!("{run}-{}", crate::publish::unix_nanos()),
            traces: None,
        }
    }
}

/// How the suite knows a started process is ready.
enum Ready<'a> {
    /// It takes TCP connections on this address.
    Listening(SocketAddr),
    /// It answers NATS requests on this subject.
    Answering { nats: &'a async_nats::Client, subject: &'static str },
}

impl Ready<'_> {
    async fn now(&self) -> bool {
        match self {
            Ready::Listening(addr) => TcpStream::connect(addr).await.is_ok(),
            Ready::Answering { nats, subject } => nats.request(*subject, "{}".into()).await.is_ok(),
        }
    }
}

/// A running server process.
#[derive(Debug)]
pub struct Server {
    what: String,
    child: Child,
    pub pid: u32,
}

impl Server {
    /// Starts `command`, which listens on `addr`, and waits until it does.
    async fn start(what: String, command: Command, addr: SocketAddr) -> Result<Server> {
        Server::start_until(what, command, Ready::Listening(addr)).await
    }

    /// How it exited, if it did.
    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(format!("{} exited ({status})", self.what)),
            Ok(None) => None,
            Err(e) => Some(format!("{}: cannot tell whether it runs: {e}", self.what)),
        }
    }

    async fn start_until(what: String, mut command: Command, ready: Ready<'_>) -> Result<Server> {
        command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::inherit()).kill_on_drop(true);
        let mut child = command.spawn().with_context(|| format!("cannot start {what}"))?;
        let pid = child.id().context("a just-started process has a pid")?;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if ready.now().await {
                return Ok(Server { what, child, pid });
            }
            if let Some(status) = child.try_wait()? {
                bail!("{what} exited at start ({status}); its errors are above");
            }
            if Instant::now() > deadline {
                bail!("{what} was not ready within {} s", START_TIMEOUT.as_secs());
            }
            tokio::time::sleep(START_POLL).await;
        }
    }

    /// SIGKILL, as a crash or an OOM kill would end it.
    pub async fn kill(mut self) {
        let _ = self.child.kill().await;
    }

    /// SIGTERM, and SIGKILL if it has not exited in time.
    #[allow(unsafe_code, reason = "kill(2) with SIGTERM has no wrapper in std")]
    pub async fn stop(mut self) {
        // SAFETY: kill(2) on the pid of a child not yet reaped; at worst it
        // has exited and the signal goes nowhere.
        unsafe { libc::kill(self.pid as libc::pid_t, libc::SIGTERM) };
        if tokio::time::timeout(STOP_TIMEOUT, self.child.wait()).await.is_err() {
            eprintln!("{} did not stop on SIGTERM within {} s; killing it", self.what, STOP_TIMEOUT.as_secs());
            let _ = self.child.kill().await;
        }
    }
}

/// A free loopback port: bound and released, so a server started right
/// after can take it.
pub fn free_addr() -> Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").context("cannot find a free port")?;
    listener.local_addr().context("cannot find a free port")
}

/// A nats-server on a free port, from `PATH`, and its URL.
pub async fn nats() -> Result<(Server, String)> {
    nats_with(&[]).await
}

/// A nats-server as [`nats`], with its monitoring endpoint (`/subsz`,
/// `/connz`, ...) on another free port, and that endpoint's base URL.
pub async fn nats_monitored() -> Result<(Server, String, String)> {
    let monitor = free_addr()?;
    let (server, url) = nats_with(&["-m", &monitor.port().to_string()]).await?;
    Ok((server, url, format!("http://{monitor}")))
}

/// A nats-server as [`nats`] with JetStream, its store in `store`.
pub async fn nats_jetstream(store: &Path) -> Result<(Server, String)> {
    nats_with(&["--jetstream", "--store_dir", &store.to_string_lossy()]).await
}

async fn nats_with(extra: &[&str]) -> Result<(Server, String)> {
    let addr = free_addr()?;
    let mut command = Command::new("nats-server");
    command.args(["--addr", "127.0.0.1", "--port", &addr.port().to_string()]).args(extra);
    Ok((Server::start("nats-server".to_owned(), command, addr).await?, format!("nats://{addr}")))
}

/// A redis-server on a free port, from `PATH`, that keeps nothing on disk,
/// and its URL.
pub async fn redis() -> Result<(Server, String)> {
    let addr = free_addr()?;
    let mut command = Command::new("redis-server");
    command.args(["--bind", "127.0.0.1", "--port", &addr.port().to_string(), "--save", "", "--appendonly", "no"]);
    Ok((Server::start("redis-server".to_owned(), command, addr).await?, format!("redis://{addr}")))
}

/// One gateway process of `contender` on a free port, and its address.
pub async fn gateway(contender: Contender, env: &Environment) -> Result<(Server, SocketAddr)> {
    let addr = free_addr()?;
    let command = match contender {
        Contender::Herald | Contender::HeraldSocketIo | Contender::HeraldPusher | Contender::HeraldPusherRest => {
            let mut command = herald_edge(env, addr);
            if contender.speaks_pusher() {
                pusher_app(&mut command, env);
            }
            command
        }
        Contender::Uws => node(&env.peers, "uws.mjs", addr),
        Contender::Ws => node(&env.peers, "ws.mjs", addr),
        Contender::SocketIo => {
            let mut command = node(&env.peers, "socketio.mjs", addr);
            command.env("REDIS_URL", &env.redis_url);
            command
        }
        Contender::Soketi => soketi(env, addr)?,
        Contender::Sockudo => sockudo(env, addr)?,
    };
    Ok((Server::start(format!("{} on {addr}", contender.name()), command, addr).await?, addr))
}

/// A Herald edge with `settings` (HERALD_ variables) on a free port, and
/// its address.
pub async fn herald_edge_with(env: &Environment, settings: &[(&str, &str)]) -> Result<(Server, SocketAddr)> {
    let addr = free_addr()?;
    let mut command = herald_edge(env, addr);
    command.envs(settings.iter().copied());
    Ok((Server::start(format!("herald edge on {addr}"), command, addr).await?, addr))
}

/// `herald edge` on `addr`, verifying tokens with the token secret.
fn herald_edge(env: &Environment, addr: SocketAddr) -> Command {
    let mut command = herald("edge", env, addr);
    command.env("HERALD_JWT_SECRET", &env.token_secret);
    command
}

/// `herald <role>` on `addr`, on the run's NATS, logging warnings only,
/// exporting its traces when the run says so (`--traces`).
fn herald(role: &str, env: &Environment, addr: SocketAddr) -> Command {
    let mut command = Command::new(&env.herald);
    command
        .arg(role)
        .env("HERALD_LISTEN", addr.to_string())
        .env("HERALD_NATS_URL", &env.nats_url)
        .env("HERALD_LOG", "warn");
    if let Some(traces) = &env.traces {
        traces.export_from(&mut command);
    }
    command
}

/// The Pusher app for a Herald edge or router, as the contract names it.
fn pusher_app(command: &mut Command, env: &Environment) {
    command
        .env("HERALD_PUSHER_APP_ID", PUSHER_APP_ID)
        .env("HERALD_PUSHER_KEY", PUSHER_APP_KEY)
        .env("HERALD_PUSHER_SECRET", &env.token_secret);
}

/// soketi on `addr` with the Pusher app, client events enabled, and its
/// other settings left as shipped (no metrics; its `/usage` server on a
/// free port, as it always starts one). See bench/peers/README.md.
fn soketi(env: &Environment, addr: SocketAddr) -> Result<Command> {
    let mut command = Command::new("node");
    command
        .arg(std::path::absolute(env.peers.join(SOKETI_SERVER))?)
        .arg("start")
        .current_dir(&env.scratch)
        .env("SOKETI_HOST", addr.ip().to_string())
        .env("SOKETI_PORT", addr.port().to_string())
        .env("SOKETI_METRICS_HOST", "127.0.0.1")
        .env("SOKETI_METRICS_SERVER_PORT", free_addr()?.port().to_string())
        .env("SOKETI_DEFAULT_APP_ID", PUSHER_APP_ID)
        .env("SOKETI_DEFAULT_APP_KEY", PUSHER_APP_KEY)
        .env("SOKETI_DEFAULT_APP_SECRET", &env.token_secret)
        .env("SOKETI_DEFAULT_APP_ENABLE_CLIENT_MESSAGES", "true")
        // Its closing waits this long after closing the sockets (3 s by
        // default); the suite stops it after every step.
        .env("SOKETI_SHUTDOWN_GRACE_PERIOD", "0")
        // aws-sdk v2, which soketi loads for its SQS queue driver, prints
        // an end-of-support notice on every start.
        .env("AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE", "1");
    Ok(command)
}

/// sockudo on `addr` with the Pusher app and client events enabled. Its
/// defaults for one app (100 connections, 100 API calls a minute, 20 new
/// WebSockets a minute per address) would refuse the load itself, so the
/// connection limit and the rate limiter are off; metrics stay on, as
/// shipped, on a free port. See bench/peers/README.md.
fn sockudo(env: &Environment, addr: SocketAddr) -> Result<Command> {
    let mut command = Command::new(&env.sockudo);
    command
        .current_dir(&env.scratch)
        .env("HOST", addr.ip().to_string())
        .env("PORT", addr.port().to_string())
        .env("METRICS_HOST", "127.0.0.1")
        .env("METRICS_PORT", free_addr()?.port().to_string())
        .env("SOCKUDO_DEFAULT_APP_ID", PUSHER_APP_ID)
        .env("SOCKUDO_DEFAULT_APP_KEY", PUSHER_APP_KEY)
        .env("SOCKUDO_DEFAULT_APP_SECRET", &env.token_secret)
        .env("SOCKUDO_DEFAULT_APP_ENABLE_CLIENT_MESSAGES", "true")
        .env("SOCKUDO_DEFAULT_APP_MAX_CONNECTIONS", "0")
        .env("SOCKUDO_DEFAULT_APP_MAX_BACKEND_EVENTS_PER_SECOND", "1000000")
        .env("RATE_LIMITER_ENABLED", "false")
        .env("RUST_LOG", "warn");
    Ok(command)
}

/// `node <peers>/<script>` listening on `addr`.
fn node(peers: &Path, script: &str, addr: SocketAddr) -> Command {
    let mut command = Command::new("node");
    command.arg(peers.join(script)).env("HOST", addr.ip().to_string()).env("PORT", addr.port().to_string());
    command
}

/// The example echo handler (`herald-examples`, beside `herald`), ready
/// once it answers on `subject`.
pub async fn echo_handler(env: &Environment, subject: &'static str) -> Result<Server> {
    examples(env, &["echo"], subject).await
}

/// The example handlers named (`herald-examples`, beside `herald`) in one
/// process, ready once it answers on `subject`.
pub async fn examples(env: &Environment, names: &[&str], subject: &'static str) -> Result<Server> {
    let nats = async_nats::connect(&env.nats_url).await.context("cannot connect to the suite's NATS")?;
    let mut handler = Command::new(env.herald.with_file_name("herald-examples"));
    handler.args(names).env("HERALD_NATS_URL", &env.nats_url).env("HERALD_LOG", "warn");
    let what = format!("the example handlers ({})", names.join(", "));
    Server::start_until(what, handler, Ready::Answering { nats: &nats, subject }).await
}

/// A router with the routes in `routes_file`, its API key the token
/// secret, and the address of its HTTP API and `/metrics`.
pub async fn router(env: &Environment, routes_file: &Path) -> Result<(Server, SocketAddr)> {
    let addr = free_addr()?;
    let mut router = router_command(env, addr);
    router.env("HERALD_ROUTES_FILE", routes_file);
    Ok((Server::start("the router".to_owned(), router, addr).await?, addr))
}

/// A router serving the Pusher app's HTTP API, and its base URL.
pub async fn pusher_router(env: &Environment) -> Result<(Server, String)> {
    let addr = free_addr()?;
    let mut router = router_command(env, addr);
    pusher_app(&mut router, env);
    Ok((Server::start("the Pusher router".to_owned(), router, addr).await?, format!("http://{addr}")))
}

/// `herald router` on `addr`, its API key the token secret.
fn router_command(env: &Environment, addr: SocketAddr) -> Command {
    let mut router = herald("router", env, addr);
    router.env("HERALD_API_KEY", &env.token_secret);
    router
}
