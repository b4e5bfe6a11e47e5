//! The edge-wide subscriptions: everyone (`all`, unless it keeps a history:
//! then it is a topic, `recovery`), every single connection
//! (`conn.<edge>.*`), and control operations for connections
//! (`ctl.conn.<edge>.*`) and for users (`ctl.user.*`, filtered here).

use std::sync::{Arc, Weak};

use herald_bus::{Deliver, Delivered, DeliverySubscription};
use herald_proto::conn_id::ConnId;
use herald_proto::control::ControlOp;
use herald_proto::subject::decode_token;

use super::delivery::{Addressee, Fanout, prefetched};
use super::readiness::confirm;
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

/// An edge-wide subscription's handler. Holds the registry weakly: the
/// registry's owner holds the subscription, which holds this.
struct EdgeWideDeliveries {
    registry: Weak<Registry>,
    route: EdgeRoute,
}

impl Deliver for EdgeWideDeliveries {
    fn deliver(&self, message: Delivered<'_>) {
        if let Some(registry) = self.registry.upgrade() {
            registry.on_edge_message(self.route, &message);
        }
    }
}

impl Registry {
    /// Makes the edge-wide subscriptions: everyone, single connections and
    /// control operations. They live as long as the returned subscriptions.
    pub(crate) async fn subscribe_edge_wide(self: &Arc<Self>) -> Vec<DeliverySubscription> {
        let all = self.subjects.all();
        let conns = self.subjects.conns_of_edge(&self.edge_id);
        let ctl_conns = self.subjects.ctl_conns_of_edge(&self.edge_id);
        let ctl_users = self.subjects.ctl_users();
        let mut subscriptions = Vec::new();
        let all_is_a_topic = self.history.as_ref().is_some_and(|history| history.covers(TopicKind::All));
        let routes = [
            (!all_is_a_topic).then_some((all, EdgeRoute::All)),
            Some((conns, EdgeRoute::Conn)),
            Some((ctl_conns, EdgeRoute::CtlConn)),
            Some((ctl_users, EdgeRoute::CtlUser)),
        ];
        for (subject, route) in routes.into_iter().flatten() {
            let handler = Arc::new(EdgeWideDeliveries { registry: Arc::downgrade(self), route });
            subscriptions.extend(self.subscribe(&subject, handler));
        }
        confirm(&self.deliveries, subscriptions.len()).await;
        subscriptions
    }

    /// Applies a control operation to every local connection of a user.
    fn control_user(self: &Arc<Self>, message: &Delivered<'_>) {
        let Some(Ok(user)) = message.subject.rsplit('.').next().map(decode_token) else { return };
        let locals: Vec<u64> = match self.read().users.get(user.as_str()) {
            Some(topic) => topic.members.locals().collect(),
            None => return,
        };
        let Some(op) = parse_control(message) else { return };
        for local in locals {
            self.apply_control(local, &op);
        }
    }

    fn on_edge_message(self: &Arc<Self>, route: EdgeRoute, message: &Delivered<'_>) {
        match route {
            EdgeRoute::All => {
                let Some(frame) = self.frame_of(message) else { return };
                let excluded = self.excluded_local(message);
                let state = self.read();
                let mut fanout = Fanout::new(frame, Addressee::Connection, message);
                for (local, entry) in prefetched(state.conns.iter(), |(_, entry)| &entry.handle) {
                    if Some(*local) != excluded
                        && let Some(frame) = fanout.frame_for(entry.handle.wire())
                    {
                        self.offer(&entry.handle, frame);
                    }
                }
            }
            EdgeRoute::Conn => {
                let Some(local) = last_token_local(message.subject) else { return };
                if self.excluded_local(message) == Some(local) {
                    return;
                }
                let Some(frame) = self.frame_of(message) else { return };
                let state = self.read();
                if let Some(entry) = state.conns.get(&local)
                    && let Some(frame) =
                        Fanout::new(frame, Addressee::Connection, message).frame_for(entry.handle.wire())
                {
                    self.offer(&entry.handle, frame);
                }
            }
            EdgeRoute::CtlConn => {
                let Some(local) = last_token_local(message.subject) else { return };
                if let Some(op) = parse_control(message) {
                    self.apply_control(local, &op);
                }
            }
            EdgeRoute::CtlUser => self.control_user(message),
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

fn parse_control(message: &Delivered<'_>) -> Option<ControlOp> {
    match herald_proto::json::from_object(&message.payload) {
        Ok(op) => Some(op),
        Err(e) => {
            tracing::warn!(subject = message.subject, error = %e, "ignored a control message that is not a valid op");
            None
        }
    }
}
