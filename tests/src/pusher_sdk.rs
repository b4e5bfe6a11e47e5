//! Pusher's own server SDKs, driven by the tests: the npm `pusher` (5) and
//! the PyPI `pusher` (3), each in a process of its own running a small
//! driver (`tests/pusher-sdks/driver.mjs`, `driver.py`) that reads one JSON
//! command per line (call a method of the SDK's client, set its clock off,
//! check a webhook) and answers one JSON line. The SDK does all the work —
//! signing, paths, encoding, reading answers — exactly as it does for a
//! backend; the drivers only pass calls and answers through.
//!
//! The npm package is installed by `npm ci --prefix tests/pusher-sdks`, the
//! PyPI one by `pip install pusher` (`scripts/lib/tools.sh`,
//! `ensure_pusher_sdks`).

use std::net::SocketAddr;
use std::time::Duration;

use herald_proto::pusher::app::App;
use serde_json::{Value, json};
use tokio::process::Command;

use crate::json_lines::JsonLines;

use crate::php::repo;

/// How long one call may take (a router waiting on edges answers within
/// its presence timeout).
const CALL_TIMEOUT: Duration = Duration::from_secs(20);

/// Which of Pusher's server SDKs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PusherSdk {
    /// npm `pusher` 5 (pusher-http-node), on `node`.
    Node,
    /// PyPI `pusher` 3 (pusher-http-python), on `python3`.
    Python,
}

impl PusherSdk {
    pub const ALL: [PusherSdk; 2] = [PusherSdk::Node, PusherSdk::Python];

    fn command(self) -> Command {
        let drivers = repo().join("tests/pusher-sdks");
        let mut command = match self {
            PusherSdk::Node => Command::new("node"),
            PusherSdk::Python => Command::new("python3"),
        };
        command.arg(drivers.join(match self {
            PusherSdk::Node => "driver.mjs",
            PusherSdk::Python => "driver.py",
        }));
        command
    }
}

/// An SDK's client of one app, pointed at a router, in a process of its
/// own.
#[derive(Debug)]
pub struct SdkDriver {
    driver: JsonLines<PusherSdk>,
}

impl SdkDriver {
    /// A client of `app` (its id, key and secret, as a Laravel `.env` gives
    /// them) talking to the router at `router`.
    pub fn start(sdk: PusherSdk, app: &App, router: SocketAddr) -> SdkDriver {
        let mut command = sdk.command();
        command
            .env("PUSHER_APP_ID", &app.id)
            .env("PUSHER_KEY", &app.key)
            .env("PUSHER_SECRET", &app.secret)
            .env("PUSHER_HOST", router.ip().to_string())
            .env("PUSHER_PORT", router.port().to_string());
        SdkDriver { driver: JsonLines::spawn(sdk, command, CALL_TIMEOUT) }
    }

    pub fn sdk(&self) -> PusherSdk {
        *self.driver.name()
    }

    /// Sends one command: `Ok(result)` or `Err({"message", ...})` as the
    /// SDK returned or threw it.
    pub async fn send(&mut self, command: Value) -> Result<Value, Value> {
        let mut answer = self.driver.send(&command).await;
        match answer.get_mut("error") {
            Some(error) => Err(error.take()),
            None => Ok(answer["ok"].take()),
        }
    }

    /// `client.<method>(...args)`.
    pub async fn call(&mut self, method: &str, args: Value) -> Result<Value, Value> {
        self.send(json!({"call": method, "args": args})).await
    }

    /// A call that must succeed: its result.
    pub async fn ok(&mut self, method: &str, args: Value) -> Value {
        self.call(method, args.clone())
            .await
            .unwrap_or_else(|error| panic!("{:?}: {method}({args}) failed: {error}", self.sdk()))
    }

    /// A call that must fail: the SDK's error message, which holds the
    /// router's answer.
    pub async fn refused(&mut self, method: &str, args: Value) -> String {
        match self.call(method, args.clone()).await {
            Ok(result) => panic!("{:?}: {method}({args}) succeeded: {result}", self.sdk()),
            Err(error) => match self.sdk() {
                // The npm SDK keeps the status and the body apart.
                PusherSdk::Node => format!("{} {}", error["status"], error["body"].as_str().unwrap_or_default()),
                // The PyPI SDK's exception class says the status.
                PusherSdk::Python => format!(
                    "{} {}",
                    error["class"].as_str().unwrap_or_default(),
                    error["message"].as_str().unwrap_or_default()
                ),
            },
        }
    }

    /// The SDK's clock runs `seconds` off from now on.
    pub async fn skew_clock(&mut self, seconds: i64) {
        self.send(json!({"skew_clock": seconds})).await.expect("skew_clock");
    }

    /// Checks a webhook as a receiver would: `{"valid"}`, with `time_ms`
    /// and `events` when valid.
    pub async fn webhook(&mut self, headers: Value, body: &str) -> Value {
        self.send(json!({"webhook": {"headers": headers, "body": body}})).await.expect("webhook")
    }

    /// The method's name in this SDK (`triggerBatch` / `trigger_batch`).
    pub fn method(&self, node: &'static str, python: &'static str) -> &'static str {
        match self.sdk() {
            PusherSdk::Node => node,
            PusherSdk::Python => python,
        }
    }
}

/// Runs an `async fn(PusherSdk)` test once with each SDK.
#[macro_export]
macro_rules! both_sdks {
    ($($test:ident),+ $(,)?) => {$(
        #[doc = concat!("`", stringify!($test), "` with each of Pusher's server SDKs.")]
        mod $test {
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn node() {
                super::$test($crate::pusher_sdk::PusherSdk::Node).await;
            }

            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn python() {
                super::$test($crate::pusher_sdk::PusherSdk::Python).await;
            }
        }
    )+};
}
