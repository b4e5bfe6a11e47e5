//! Echo: the smallest real handler.
//!
//! Replies with the action's details exactly as the client sent them, byte
//! for byte, which checks a client, a route or a load test end to end. One
//! request is special: details of exactly `{"whoami": true}` are answered
//! with who Herald says the client is, `{"conn", "user", "groups"}`: the
//! identity every handler receives with every action, so a client can see
//! what its token amounts to.
//!
//! Wire it up in the routes file:
//!
//! ```toml
//! [[routes]]
//! action = "echo"
//! nats = "examples.echo"
//! ```

use std::future::Future;

use herald_bus::{Bus, BusError};
use herald_handler::{Handler, Reply, Request};
use herald_proto::subject::Subjects;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// The subject the echo route points at.
pub const SUBJECT: &str = "examples.echo";

/// Serves `examples.echo` until `stop` resolves. Echo publishes nothing
/// itself, so it has no use for `subjects`; it takes them to be started like
/// every other example.
pub async fn serve(bus: &Bus, _subjects: &Subjects, stop: impl Future<Output = ()>) -> Result<(), BusError> {
    Handler::new(SUBJECT).serve(bus, |request| async move { answer(request) }, stop).await
}

/// Details that ask who the client is. Any other field makes them ordinary
/// details, echoed like the rest.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WhoAmI {
    whoami: bool,
}

/// Who the client is, as Herald told the handler.
#[derive(Serialize)]
struct Identity<'a> {
    conn: &'a str,
    user: Option<&'a str>,
    groups: &'a [String],
}

/// Details are read raw, so what goes back is exactly what came in.
fn answer(request: Request<Box<RawValue>>) -> Reply {
    match serde_json::from_str(request.details.get()) {
        Ok(WhoAmI { whoami: true }) => {
            Reply::details(Identity { conn: &request.conn, user: request.user.as_deref(), groups: &request.groups })
        }
        _ => Reply::details(request.details),
    }
}
