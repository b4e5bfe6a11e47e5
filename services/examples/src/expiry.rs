//! Session-expiry notifier: how a backend ends a user's sessions.
//!
//! When a login expires in the backend (a PHP session times out, an admin
//! signs a user out), the backend sends a notice on
//! `examples.session.expired`, as a NATS request or a plain publish:
//!
//! ```json
//! {"user": "ann", "reason": "signed out on another device", "disconnect": true}
//! ```
//!
//! The notifier pushes `{"action": "session/expired", "details":
//! {"reason"}}` to every connection of the user, on whichever edge
//! (`herald.user.<U>`), so every tab can say why and offer to sign in again.
//! With `"disconnect": true` it then closes those connections with 4001
//! (`herald.ctl.user.<U>`), the code that tells a client to get a new token
//! before reconnecting. `reason` defaults to "session expired". A request is
//! answered `{"notified": true}`, or `{"error": "..."}` for a notice it
//! cannot read; unknown fields count as unreadable, so a typo such as
//! `"disconect"` fails loudly rather than leaving the user connected. A
//! plain publish gets no answer; a bad one is logged.
//!
//! Every copy joins the queue group `examples.session.expired`, so each
//! notice is applied once however many copies run.
//!
//! No route wires it up: no client action reaches it, the backend talks to
//! it over NATS directly, for example with the `nats` CLI:
//!
//! ```sh
//! nats request examples.session.expired '{"user": "ann", "disconnect": true}'
//! ```
//!
//! The SDK's [`Handler`](herald_handler::Handler) is not used because a
//! notice is not a client action, and its request loop
//! ([`Responder`](herald_bus::responder::Responder)) skips messages without
//! a reply subject, which would drop fire-and-forget notices. Notices are
//! handled one at a time: each is two publishes, nothing to overlap.

use std::future::Future;

use bytes::Bytes;
use futures_util::StreamExt;
use herald_bus::queue::Answers;
use herald_bus::{Bus, BusError, BusMessage};
use herald_handler::{PushError, Pusher, Target};
use herald_proto::close;
use herald_proto::control::ControlOp;
use herald_proto::subject::Subjects;
use serde::Deserialize;
use serde_json::json;
use thiserror::Error;

/// The subject, and queue group, notices arrive on.
pub const SUBJECT: &str = "examples.session.expired";

/// The action of the frame pushed to the user's connections.
pub const ACTION: &str = "session/expired";

/// The reason given when the notice has none.
const DEFAULT_REASON: &str = "session expired";

/// What a backend sends.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Notice {
    user: String,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    disconnect: bool,
}

/// Why a notice was not applied; the message is what the backend reads.
#[derive(Debug, Error)]
enum NoticeError {
    #[error("not a session-expiry notice: {0}")]
    Unreadable(serde_json::Error),
    #[error("\"user\" must not be empty")]
    NoUser,
    #[error("cannot notify: {0}")]
    Push(#[from] PushError),
}

/// Applies the notices on `examples.session.expired` until `stop` resolves,
/// then leaves the queue group, applies those already on their way, and
/// returns.
pub async fn serve(bus: &Bus, subjects: &Subjects, stop: impl Future<Output = ()>) -> Result<(), BusError> {
    let pusher = Pusher::new(bus.clone(), subjects.clone());
    let notices = bus.queue_subscribe(SUBJECT.to_owned(), SUBJECT.to_owned()).await?;
    if let Err(e) = bus.sync().await {
        // NATS is down: the client subscribes as soon as it is back.
        tracing::warn!(error = %e, "NATS has not confirmed the subscription; serving anyway");
    }
    tracing::info!(subject = SUBJECT, "session-expiry notifier serving");
    let answers = notices.answers(bus);
    let notices = notices.until_drained(stop);
    tokio::pin!(notices);
    while let Some(notice) = notices.next().await {
        handle(&answers, &pusher, notice).await;
    }
    // The pushes and the answers must reach NATS before the caller, maybe a
    // process about to exit, goes on.
    answers.flush().await?;
    bus.flush().await
}

/// Applies one notice, and answers it when it is a request.
async fn handle(answers: &Answers, pusher: &Pusher, notice: BusMessage) {
    let outcome = notify(pusher, &notice.payload).await;
    if let Err(e) = &outcome {
        tracing::warn!(error = %e, "session-expiry notice not applied");
    }
    let Some(reply) = notice.reply() else { return };
    let answer = match outcome {
        Ok(()) => json!({ "notified": true }),
        Err(e) => json!({ "error": e.to_string() }),
    };
    if let Err(e) = answers.send(reply.to_owned(), Bytes::from(answer.to_string())).await {
        tracing::warn!(error = %e, "could not answer a session-expiry notice");
    }
}

/// Tells every connection of the notice's user, then closes them if asked.
/// The frame goes first: an edge closes a connection only after the frames
/// already queued for it, so the client learns why it was closed.
async fn notify(pusher: &Pusher, payload: &[u8]) -> Result<(), NoticeError> {
    let notice: Notice = herald_proto::json::from_object(payload).map_err(NoticeError::Unreadable)?;
    if notice.user.is_empty() {
        return Err(NoticeError::NoUser);
    }
    let reason = notice.reason.unwrap_or_else(|| DEFAULT_REASON.to_owned());
    let user = Target { users: vec![notice.user.clone()], ..Target::default() };
    pusher.publish(&user, ACTION, json!({ "reason": reason })).await?;
    if notice.disconnect {
        let op = ControlOp::Disconnect { code: close::AUTH_EXPIRED, reason };
        pusher.control_user(&notice.user, &op).await?;
    }
    Ok(())
}
