//! Everything a router can be told, already validated and typed. The
//! defaults are the settings' own ([`herald_settings::router`]), written
//! once there.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use herald_proto::pusher::app::Apps;
use herald_proto::subject::Subjects;
use herald_settings::router as settings;

use crate::push_port::PushPortConfig;
use crate::routes::RouteTable;

/// A router's configuration.
#[derive(Debug, Clone)]
pub struct RouterConfig {
    /// Address of the backend HTTP API, health and metrics.
    pub listen: SocketAddr,
    pub subjects: Subjects,
    /// The key backends present as `Authorization: Bearer <key>`.
    pub api_key: String,
    /// The routes at start-up.
    pub routes: RouteTable,
    /// Where the routes came from; re-read on reload. `None`: no file, no
    /// reload.
    pub routes_file: Option<PathBuf>,
    /// Signs requests to HTTP handlers; required when any route is HTTP.
    pub webhook_secret: Option<Vec<u8>>,
    /// Handler requests one router works on at once; more are answered 503
    /// so that an overloaded router sheds load instead of queuing it.
    pub max_inflight: usize,
    /// Largest backend API request body.
    pub max_body_bytes: usize,
    /// How long a presence query waits for the edges' answers.
    pub presence_timeout: Duration,
    /// The Workerman-style push port; `None`: off.
    pub push_port: Option<PushPortConfig>,
    /// The Pusher apps whose HTTP API and webhooks this router serves;
    /// none: the Pusher API answers 404.
    pub pusher_apps: Apps,
}

impl RouterConfig {
    /// A configuration with every default, listening on `listen`.
    pub fn new(listen: SocketAddr, api_key: String, routes: RouteTable) -> RouterConfig {
        RouterConfig {
            listen,
            subjects: Subjects::default(),
            api_key,
            routes,
            routes_file: None,
            webhook_secret: None,
            max_inflight: settings::ROUTER_MAX_INFLIGHT.default_value(),
            max_body_bytes: settings::MAX_API_BODY_BYTES.default_value(),
            presence_timeout: settings::PRESENCE_TIMEOUT_MS.default_value(),
            push_port: None,
            pusher_apps: Apps::default(),
        }
    }
}
