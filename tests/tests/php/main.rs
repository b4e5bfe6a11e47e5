//! The PHP SDK and the PHP example, run by real `php` against a real Herald:
//! `herald dev` with a routes file, and an edge and a router (processes) on
//! a real nats-server. Browsers are played by the test's WebSocket client.
//!
//! - `sdk`: every HTTP API call of the SDK, on ext-curl and on PHP streams,
//!   and its exceptions (wrong key, oversized, unreachable, timeout).
//! - `nats`: the SDK's NATS publisher: publishes, headers, control
//!   operations, user/password and token authentication, TLS, a server
//!   that goes away and comes back, an oversized message.
//! - `handler`: actions answered by a PHP endpoint with the SDK's handler
//!   helper: replies, effects, errors, `$connect`, `$join`, `$disconnect`;
//!   unsigned, tampered and stale requests refused.
//! - `example`: the example app's whole flow: log in, connect by the PHP
//!   session cookie, actions handled in PHP, a form POST pushed to the room.
//! - `push`: Workerman's push example, in PHP, against the push port.

/// Runs a test body in both layouts: for each `name`, a module with the
/// tests `name::dev` (`herald dev`) and `name::split` (an edge and a router
/// on nats-server), which call `async fn name(layout: Layout)`.
macro_rules! both_layouts {
    ($($test:ident),+ $(,)?) => {$(
        mod $test {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn dev() {
                super::$test(crate::setup::Layout::Dev).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn split() {
                super::$test(crate::setup::Layout::Split).await;
            }
        }
    )+};
}

mod example;
mod handler;
mod nats;
mod push;
mod pusher;
mod sdk;
mod setup;
