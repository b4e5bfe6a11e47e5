//! The edge-wide subscriptions: everyone (`all`, unless it keeps a history:
//! then it is a topic, `recovery`), every single connection
//! (`conn.<edge>.*`), and control operations for connections
//! (`ctl.conn.<edge>.*`) and for users (`ctl.user.*`, filtered here).

use std::sync::Arc;

use futures_util::StreamExt;
use herald_bus::BusMessage;
use herald_proto::conn_id::ConnId;
use herald_proto::control::ControlOp;
use herald_proto::subject::decode_token;
use tokio_util::task::AbortOnDropHandle;

use super::delivery::{Addressee, Fanout};
use super::readiness::{readiness, wait_subscribed};
use super::{Registry, TopicKind};
use crate::handle::CloseRequest;

/// Which edge-wide subscription a message came from.
#[derive(Debug, Clone, Copy)]
enum EdgeRoute {
    All,
    Conn,
    CtlConn,
    CtlUser,
}

impl Registry {
    /// Starts the edge-wide subscriptions: everyone, and single connections.
    /// They live as long as the returned guards.
    pub(crate) async fn start_edge_pumps(self: &Arc<Self>) -> Vec<AbortOnDropHandle<()>> {
        let all = self.subjects.all();
        let conns = self.subjects.conns_of_edge(&self.edge_id);
        let ctl_conns = self.subjects.ctl_conns_of_edge(&self.edge_id);
        let ctl_users = self.subjects.ctl_users();
        let mut waits = Vec::new();
        let mut pumps = Vec::new();
        let all_is_a_topic = self.history.as_ref().is_some_and(|history| history.covers(TopicKind::All));
        let routes = [
            (!all_is_a_topic).then_some((all, EdgeRoute::All)),
            Some((conns, EdgeRoute::Conn)),
            Some((ctl_conns, EdgeRoute::CtlConn)),
            Some((ctl_users, EdgeRoute::CtlUser)),
        ];
        for (subject, route) in routes.into_iter().flatten() {
            let (ready, subscribed) = readiness();
            let registry = self.clone();
            pumps.push(AbortOnDropHandle::new(tokio::spawn(async move {
                let Some(mut messages) = registry.subscribe(subject, ready).await else { return };
                while let Some(message) = messages.next().await {
                    registry.on_edge_message(route, message);
                }
            })));
            waits.push(subscribed);
        }
        wait_subscribed(waits).await;
        pumps
    }

    /// Applies a control operation to every local connection of a user.
    fn control_user(self: &Arc<Self>, message: &BusMessage) {
        let Some(Ok(user)) = message.subject().rsplit('.').next().map(decode_token) else { return };
        let locals: Vec<u64> = match self.read().users.get(user.as_str()) {
            Some(topic) => topic.members.keys().copied().collect(),
            None => return,
        };
        let Some(op) = parse_control(message) else { return };
        for local in locals {
            self.apply_control(local, &op);
        }
    }

    fn on_edge_message(self: &Arc<Self>, route: EdgeRoute, message: BusMessage) {
        match route {
            EdgeRoute::All => {
                let Some(frame) = self.frame_of(&message) else { return };
                let excluded = self.excluded_local(&message);
                let state = self.read();
                let mut fanout = Fanout::new(frame, Addressee::Connection, &message);
                for (local, entry) in &state.conns {
                    if Some(*local) != excluded
                        && let Some(frame) = fanout.frame_for(entry.handle.wire())
                    {
                        self.offer(&entry.handle, frame);
                    }
                }
            }
            EdgeRoute::Conn => {
                let Some(local) = last_token_local(message.subject()) else { return };
                if self.excluded_local(&message) == Some(local) {
                    return;
                }
                let Some(frame) = self.frame_of(&message) else { return };
                let state = self.read();
                if let Some(entry) = state.conns.get(&local)
                    && let Some(frame) =
                        Fanout::new(frame, Addressee::Connection, &message).frame_for(entry.handle.wire())
                {
                    self.offer(&entry.handle, frame);
                }
            }
            EdgeRoute::CtlConn => {
                let Some(local) = last_token_local(message.subject()) else { return };
                if let Some(op) = parse_control(&message) {
                    self.apply_control(local, &op);
                }
            }
            EdgeRoute::CtlUser => self.control_user(&message),
        }
    }

    fn apply_control(self: &Arc<Self>, local: u64, op: &ControlOp) {
        match op {
            ControlOp::Join { group } => {
                self.join(local, group);
            }
            ControlOp::Leave { group } => {
                self.leave(local, group);
            }
            ControlOp::Disconnect { code, reason } => {
                if let Some(entry) = self.read().conns.get(&local) {
                    entry.handle.close_after_queued(CloseRequest::new(*code, reason.clone()));
                }
            }
        }
    }
}

/// The local connection number at the end of `<prefix>.conn.<edge>.<n>`.
fn last_token_local(subject: &str) -> Option<u64> {
    ConnId::parse_local(subject.rsplit('.').next()?)
}

fn parse_control(message: &BusMessage) -> Option<ControlOp> {
    match herald_proto::json::from_object(&message.payload) {
        Ok(op) => Some(op),
        Err(e) => {
            tracing::warn!(subject = message.subject(), error = %e, "ignored a control message that is not a valid op");
            None
        }
    }
}
