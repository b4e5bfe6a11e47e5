//! Client actions: sent to the routers over request/reply, answered with
//! the handler's reply, error, and effects.

use std::future::Future;
use std::pin::Pin;

use tokio::time::Instant;

use bytes::Bytes;
use herald_proto::client::{self, ClientFrame, FrameId, GroupDetails};
use herald_proto::handler::{Effect, HandlerRequest, HandlerResponse, PublishEffect};
use herald_proto::published_at::{self, PUBLISHED_AT_HEADER};
use herald_proto::status::{self, Failure};
use serde_json::value::RawValue;
use tracing::Instrument;

use super::{Ending, Session, SessionContext, Socket};
use crate::handle::CloseRequest;
use crate::registry::wait_subscribed;

/// A client action on its way to a handler, resolving with its outcome.
/// The outcome is boxed: the session loop holds what its `select!` returned
/// while it handles it, so the largest thing any branch returns is part of
/// every idle session's task (BENCHMARKS.md, "Idle connections: memory").
pub(super) type ActionCall = Pin<Box<dyn Future<Output = Box<ActionOutcome>> + Send>>;

/// What a request to the routers is for.
pub(super) enum Purpose {
    /// A client action: its answer is the reply, and its effects apply.
    Action,
    /// A `$join` or `$leave` the token does not allow: the `$join` route
    /// decides, and without one it is refused.
    Membership(GroupDetails),
}

/// The answer to one request, with what is needed to reply.
pub(super) struct ActionOutcome {
    action: String,
    id: Option<FrameId>,
    purpose: Purpose,
    answer: Result<HandlerResponse, Failure>,
    /// When the client's frame was read, for the action latency.
    started: Instant,
    /// The action's span, exported when tracing is on: the request to the
    /// routers carries its context, and the effects and reply run in it.
    span: tracing::Span,
}

impl Session {
    /// Sends a client frame to the routers; the answer arrives later in the
    /// session loop, so the session keeps serving meanwhile.
    pub(super) async fn ask_routers(
        &mut self,
        socket: &mut Socket,
        frame: ClientFrame,
        purpose: Purpose,
    ) -> Result<(), Ending> {
        if self.actions.as_ref().map_or(0, |actions| actions.len()) >= self.ctx.limits.max_inflight_actions {
            let message = "too many actions waiting for an answer";
            return self
                .reply_error(socket, &frame.action, status::TOO_MANY_REQUESTS, message, frame.id.as_ref())
                .await;
        }
        let request = HandlerRequest {
            action: frame.action.clone(),
            details: frame.details.unwrap_or_else(null),
            id: frame.id.clone(),
            conn: self.conn().to_string(),
            user: self.user(),
            groups: self.ctx.registry.groups_of(self.local),
            claims: self.identity.claims().clone(),
            headers: None,
            cookies: None,
            timeout_ms: None,
        };
        let routers = self.ctx.routers.clone();
        let span = tracing::info_span!(
            target: herald_bus::trace::TARGET,
            "herald.edge.action",
            action = %frame.action,
            conn = %self.conn(),
        );
        let (action, id, started) = (frame.action, frame.id, Instant::now());
        let asked = span.clone();
        self.actions.get_or_insert_default().push(Box::pin(async move {
            let answer = routers.ask(request).instrument(asked).await;
            Box::new(ActionOutcome { action, id, purpose, answer, started, span })
        }));
        Ok(())
    }

    /// Replies to an action once answered, and measures it.
    pub(super) async fn finish_action(
        &mut self,
        socket: &mut Socket,
        outcome: Box<ActionOutcome>,
    ) -> Result<(), Ending> {
        let ActionOutcome { action, id, purpose, answer, started, span } = *outcome;
        let code = match &answer {
            Ok(response) => response.error.as_ref().map(|error| error.code),
            Err(failure) => Some(status::request_failed(*failure)),
        };
        let replied = self.reply_to_action(socket, &action, id.as_ref(), purpose, answer).instrument(span).await;
        self.ctx.metrics.action_answered(started.elapsed(), code);
        replied
    }

    async fn reply_to_action(
        &mut self,
        socket: &mut Socket,
        action: &str,
        id: Option<&FrameId>,
        purpose: Purpose,
        answer: Result<HandlerResponse, Failure>,
    ) -> Result<(), Ending> {
        let (code, message) = match (answer, purpose) {
            (Ok(response), Purpose::Action) => {
                return self.apply_response(socket, action, id, response).await;
            }
            (Ok(response), Purpose::Membership(details)) => match response.error {
                Some(error) => (error.code, error.message),
                None => return self.change_membership(socket, action, details, id).await,
            },
            // No router, so no `$join` route: not allowed.
            (Err(Failure::NoResponders), Purpose::Membership(GroupDetails { group, .. })) => {
                (status::FORBIDDEN, format!("not allowed to join or leave group {group:?}"))
            }
            (Err(failure), _) => (status::request_failed(failure), failure_message(failure).to_owned()),
        };
        self.reply_error(socket, action, code, &message, id).await
    }

    /// Applies a handler's effects in the order given, then replies; a
    /// `disconnect` effect closes the session after the reply.
    ///
    /// A `publish` waits until the subscriptions of the joins before it are
    /// live, so that a publish to a group just joined reaches this
    /// connection too (the most common chat handler: join, then say hello).
    async fn apply_response(
        &mut self,
        socket: &mut Socket,
        action: &str,
        id: Option<&FrameId>,
        response: HandlerResponse,
    ) -> Result<(), Ending> {
        let local = self.local;
        let mut closing = None;
        let span = tracing::info_span!(target: herald_bus::trace::TARGET, "herald.edge.effects");
        let applied = async {
            let mut waits = Vec::new();
            for effect in response.effects {
                match effect {
                    Effect::Join(group) => waits.extend(self.ctx.registry.join(local, &group)),
                    Effect::Leave(group) => {
                        self.ctx.registry.leave(local, &group);
                    }
                    Effect::Disconnect(d) => closing = Some(CloseRequest::new(d.code, d.reason)),
                    Effect::Publish(publish) => {
                        wait_subscribed(waits.drain(..)).await;
                        // (Not `self.conn()`: this block borrows only fields.)
                        let conn = self.ctx.registry.conn_id(local).to_string();
                        publish_effect(&self.ctx, &conn, publish).await;
                    }
                }
            }
            wait_subscribed(waits).await;
        };
        applied.instrument(span).await;
        if let Some(error) = response.error {
            self.reply_error(socket, action, error.code, &error.message, id).await?;
        } else if !response.noreply {
            self.reply(socket, action, &response.details, id).await?;
        }
        match closing {
            Some(request) => Err(Ending::ByEdge(request)),
            None => Ok(()),
        }
    }
}

async fn publish_effect(ctx: &SessionContext, conn: &str, publish: PublishEffect) {
    let subjects = match ctx.subjects.for_target(&publish.to) {
        Ok(subjects) => subjects,
        Err(e) => {
            tracing::warn!(conn, error = %e, "dropped a publish effect with a bad target");
            return;
        }
    };
    let frame = Bytes::from(client::encode(&publish.action, &publish.details, None));
    let stamp = published_at::stamp_now();
    for subject in subjects {
        if let Err(e) = ctx.bus.publish_with_header(subject, (PUBLISHED_AT_HEADER, &stamp), frame.clone()).await {
            tracing::warn!(conn, error = %e, "publish effect failed");
        }
    }
}

/// What a client whose action got no answer is told.
fn failure_message(failure: Failure) -> &'static str {
    match failure {
        Failure::NoResponders => "no router is available",
        Failure::TimedOut => "the handler did not answer in time",
        Failure::Unreachable => "the message bus is unavailable",
        Failure::Malformed => "the handler's answer was malformed",
    }
}

fn null() -> Box<RawValue> {
    RawValue::from_string("null".to_owned()).expect("null is JSON")
}
