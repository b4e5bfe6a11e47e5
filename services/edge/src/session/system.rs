//! System actions a client may send: `$ping`, `$join`, `$leave`, `$auth`.

use herald_proto::client::{AuthDetails, AuthState, ClientFrame, FrameId, GroupDetails, action};
use herald_proto::status;
use serde::de::DeserializeOwned;

use super::actions::Purpose;
use super::{Ending, Session, Socket};
use crate::registry::{recovery, wait_subscribed};

impl Session {
    pub(super) async fn system_action(&mut self, socket: &mut Socket, frame: ClientFrame) -> Result<(), Ending> {
        match frame.action.as_str() {
            action::PING => self.reply(socket, action::PONG, &frame.details, frame.id.as_ref()).await,
            action::JOIN | action::LEAVE => self.join_or_leave(socket, frame).await,
            action::AUTH => self.reauthenticate(socket, frame).await,
            other => {
                let message = format!("unknown system action {other:?}");
                self.reply_error(socket, &frame.action, status::BAD_REQUEST, &message, frame.id.as_ref()).await
            }
        }
    }

    async fn join_or_leave(&mut self, socket: &mut Socket, frame: ClientFrame) -> Result<(), Ending> {
        let id = frame.id.as_ref();
        let details: GroupDetails = match details(&frame, r#"{"group": "<name>"}"#) {
            Ok(details) => details,
            Err(message) => return self.reply_error(socket, &frame.action, status::BAD_REQUEST, &message, id).await,
        };
        if self.identity.may_join(&details.group) {
            let id = frame.id.clone();
            self.change_membership(socket, &frame.action, details, id.as_ref()).await
        } else {
            self.ask_routers(socket, frame, Purpose::Membership(details)).await
        }
    }

    /// Joins or leaves a group the client is allowed to, and says so once
    /// the subscription is live. Where the group keeps a history, the reply
    /// to `$join` comes after the frames the client missed since `resume`
    /// and says whether that was all of them (recovery).
    pub(super) async fn change_membership(
        &mut self,
        socket: &mut Socket,
        name: &str,
        details: GroupDetails,
        id: Option<&FrameId>,
    ) -> Result<(), Ending> {
        let GroupDetails { group, resume } = details;
        let local = self.local;
        if name != action::JOIN {
            self.ctx.registry.leave(local, &group);
            return self.reply(socket, name, &GroupDetails { group, resume: None }, id).await;
        }
        let Some((subscribed, outcome)) = self.ctx.registry.join_resuming(local, &group, resume.as_deref()) else {
            return self.reply(socket, name, &GroupDetails { group, resume: None }, id).await;
        };
        wait_subscribed([subscribed]).await;
        let Some(outcome) = outcome else {
            return self.reply(socket, name, &GroupDetails { group, resume: None }, id).await;
        };
        let joined = recovery::joined(group, outcome).await;
        if resume.is_some() {
            let counter =
                if joined.recovered { &self.ctx.metrics.recoveries } else { &self.ctx.metrics.recoveries_failed };
            counter.inc();
        }
        // The missed frames are queued: they go first.
        self.write_all_queued(socket).await?;
        self.reply(socket, name, &joined, id).await
    }

    async fn reauthenticate(&mut self, socket: &mut Socket, frame: ClientFrame) -> Result<(), Ending> {
        let id = frame.id.as_ref();
        let AuthDetails { token } = match details(&frame, r#"{"token": "<JWT>"}"#) {
            Ok(details) => details,
            Err(message) => return self.reply_error(socket, action::AUTH, status::BAD_REQUEST, &message, id).await,
        };
        let identity = match self.ctx.verifier.verify(&token) {
            Ok(identity) => identity,
            Err(e) => return self.reply_error(socket, action::AUTH, status::UNAUTHORIZED, &e.to_string(), id).await,
        };
        let local = self.local;
        let registry = &self.ctx.registry;
        let mut waits: Vec<_> = registry.set_user(local, identity.user.as_ref()).into_iter().collect();
        waits.extend(identity.groups.iter().filter_map(|group| registry.join(local, group)));
        wait_subscribed(waits).await;
        self.reauth_sent = None;
        let state = AuthState { user: identity.user.as_deref().map(str::to_owned), exp: identity.expires_at() };
        self.identity = identity;
        self.reply(socket, action::AUTH, &state, id).await
    }
}

/// Reads a system action's details, or says what they should look like.
fn details<T: DeserializeOwned>(frame: &ClientFrame, shape: &str) -> Result<T, String> {
    let raw = frame.details.as_deref().map(|raw| raw.get()).unwrap_or("null");
    serde_json::from_str(raw).map_err(|_| format!("{} needs details {shape}", frame.action))
}
