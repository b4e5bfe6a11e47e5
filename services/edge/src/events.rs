//! Lifecycle events: `<prefix>.events.connect` and `.disconnect`.
//!
//! Best effort, like everything on NATS core: an event published while NATS
//! is away is lost, and a failure to publish never affects the session.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use herald_bus::Bus;
use herald_proto::event::{CloseInfo, LifecycleEvent};
use herald_proto::handler::Claims;
use herald_proto::subject::Subjects;

use crate::registry::Membership;

/// Longest wait to hand an event to the NATS client.
pub(crate) const PUBLISH_TIMEOUT: Duration = Duration::from_secs(1);

/// Publishes one edge's lifecycle events.
#[derive(Debug)]
pub(crate) struct Events {
    bus: Bus,
    /// Where the events go.
    subjects: Subjects,
    /// The edge every event names.
    edge_id: String,
}

/// Who a lifecycle event is about.
pub(crate) struct Subject<'a> {
    /// The connection id, as clients see it.
    pub conn: &'a str,
    pub user: Option<String>,
    pub groups: Vec<String>,
    pub claims: &'a Claims,
}

impl Events {
    pub fn new(bus: Bus, subjects: Subjects, edge_id: String) -> Events {
        Events { bus, subjects, edge_id }
    }

    pub async fn connected(&self, who: Subject<'_>) {
        self.publish(self.subjects.event_connect(), self.event(who, None)).await;
    }

    pub async fn disconnected(&self, conn: &str, membership: Membership, claims: &Claims, close: CloseInfo) {
        let who = Subject { conn, user: membership.user, groups: membership.groups, claims };
        self.publish(self.subjects.event_disconnect(), self.event(who, Some(close))).await;
    }

    fn event(&self, who: Subject<'_>, close: Option<CloseInfo>) -> LifecycleEvent {
        LifecycleEvent {
            conn: who.conn.to_owned(),
            user: who.user,
            groups: who.groups,
            claims: who.claims.clone(),
            edge: self.edge_id.clone(),
            at: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            close,
        }
    }

    async fn publish(&self, subject: String, event: LifecycleEvent) {
        let payload = Bytes::from(serde_json::to_vec(&event).expect("an event always serialises"));
        // While NATS is away the client's outbound queue fills; a session
        // never waits on it for longer than this.
        match tokio::time::timeout(PUBLISH_TIMEOUT, self.bus.publish(subject, payload)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::debug!(error = %e, "lifecycle event not published"),
            Err(_) => tracing::debug!("lifecycle event not published: NATS is away"),
        }
    }
}
