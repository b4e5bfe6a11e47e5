//! A Herald for PHP to talk to, in one of two layouts, every part a process.

use std::net::SocketAddr;
use std::time::Duration;

use herald_tests::{
    Client, HeraldProcess, NatsServer, RoutesFile, TEST_API_KEY, TEST_SECRET, TEST_WEBHOOK_SECRET, Token,
    assert_eventually,
};

/// How Herald runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `herald dev`: one process, no NATS; the API on the WebSocket port.
    Dev,
    /// `herald edge` and `herald router` on a nats-server of their own.
    Split,
}

/// A running Herald, with the test secrets: tokens signed with
/// [`TEST_SECRET`], the API key [`TEST_API_KEY`], handler requests signed
/// with [`TEST_WEBHOOK_SECRET`], the push port open.
pub struct Herald {
    /// Where clients open WebSockets (the edge, or `herald dev`).
    pub ws: SocketAddr,
    /// Where the backend API answers (the router, or `herald dev`).
    pub api: SocketAddr,
    /// The Workerman-style push port.
    pub push_port: SocketAddr,
    /// The NATS server of the split layout.
    pub nats: Option<NatsServer>,
    /// Kept running for the test's life.
    _processes: Vec<HeraldProcess>,
    _routes: RoutesFile,
}

pub fn secret(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).expect("the test secrets are ASCII")
}

impl Herald {
    /// Starts Herald in `layout`, routing as `routes` (TOML) says.
    pub async fn start(layout: Layout, routes: &str) -> Herald {
        let routes = RoutesFile::new(routes);
        let with_routes = |command: herald_tests::process::HeraldCommand| {
            command
                .env("HERALD_ROUTES_FILE", routes.path_str())
                .env("HERALD_WEBHOOK_SECRET", secret(TEST_WEBHOOK_SECRET))
                .env("HERALD_PUSH_PORT_LISTEN", "127.0.0.1:0")
        };
        match layout {
            Layout::Dev => {
                let dev = with_routes(HeraldProcess::command(&["dev"]))
                    .env("HERALD_LISTEN", "127.0.0.1:0")
                    .env("HERALD_API_KEY", TEST_API_KEY)
                    .env("HERALD_JWT_SECRET", secret(TEST_SECRET))
                    .spawn()
                    .await;
                let push_port = push_port_of(&dev);
                Herald {
                    ws: dev.addr(),
                    api: dev.addr(),
                    push_port,
                    nats: None,
                    _processes: vec![dev],
                    _routes: routes,
                }
            }
            Layout::Split => {
                let nats = NatsServer::start().await;
                let edge = HeraldProcess::edge(&nats).spawn().await;
                let router = with_routes(HeraldProcess::router(&nats, TEST_API_KEY)).spawn().await;
                // Presence (and so the push port's ok/fail) asks the edges
                // the router knows of.
                assert_eventually!(router.metric("herald_router_live_edges").await == 1, Duration::from_secs(10));
                assert_eventually!(edge.http("/readyz").await.0 == 200, Duration::from_secs(10));
                let push_port = push_port_of(&router);
                Herald {
                    ws: edge.addr(),
                    api: router.addr(),
                    push_port,
                    nats: Some(nats),
                    _processes: vec![edge, router],
                    _routes: routes,
                }
            }
        }
    }

    /// `http://<api>`.
    pub fn api_url(&self) -> String {
        format!("http://{}", self.api)
    }

    pub fn ws_url(&self, token: Option<&str>) -> String {
        match token {
            Some(token) => format!("ws://{}/ws?token={token}", self.ws),
            None => format!("ws://{}/ws", self.ws),
        }
    }

    /// A client connected with `token`, past `$connected`.
    pub async fn client(&self, token: &str) -> Client {
        Client::open(&self.ws_url(Some(token))).await
    }

    /// A client for `user` in `groups`, with a test token.
    pub async fn user(&self, user: &str, groups: &[&str]) -> Client {
        self.client(&Token::user(user).groups(groups.iter().copied()).hs256()).await
    }
}

/// The push port a `herald dev` or `herald router` said it serves on.
fn push_port_of(process: &HeraldProcess) -> SocketAddr {
    const SAID: &str = "push port serving on ";
    let lines = [process.stderr(), process.stdout()].concat();
    lines
        .iter()
        .find_map(|line| {
            let at = line.find(SAID)?;
            line[at + SAID.len()..].split_whitespace().next()?.parse().ok()
        })
        .unwrap_or_else(|| panic!("no `{SAID}<addr>` line; output:\n{}", process.output()))
}
