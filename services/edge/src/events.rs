//! Lifecycle events: `<prefix>.events.connect` and `.disconnect`.
//!
//! Best effort, like everything on NATS core: an event published while NATS
//! is away is lost, and a failure to publish never affects the session.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use herald_proto::event::{CloseInfo, LifecycleEvent};
use herald_proto::handler::Claims;

use crate::edge::EdgeShared;
use crate::registry::Membership;

/// Longest wait to hand an event to the NATS client.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(1);

pub(crate) async fn publish_connect(
    ctx: &EdgeShared,
    conn: &str,
    user: Option<String>,
    groups: Vec<String>,
    claims: &Claims,
) {
    let subject = ctx.config.subjects.event_connect();
    publish(ctx, subject, event(ctx, conn, user, groups, claims, None)).await;
}

pub(crate) async fn publish_disconnect(
    ctx: &EdgeShared,
    conn: &str,
    membership: Membership,
    claims: &Claims,
    code: u16,
    reason: String,
) {
    let subject = ctx.config.subjects.event_disconnect();
    let close = Some(CloseInfo { code, reason });
    publish(ctx, subject, event(ctx, conn, membership.user, membership.groups, claims, close)).await;
}

fn event(
    ctx: &EdgeShared,
    conn: &str,
    user: Option<String>,
    groups: Vec<String>,
    claims: &Claims,
    close: Option<CloseInfo>,
) -> LifecycleEvent {
    LifecycleEvent {
        conn: conn.to_owned(),
        user,
        groups,
        claims: claims.clone(),
        edge: ctx.registry.edge_id().to_owned(),
        at: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
        close,
    }
}

async fn publish(ctx: &EdgeShared, subject: String, event: LifecycleEvent) {
    let payload = Bytes::from(serde_json::to_vec(&event).expect("an event always serialises"));
    // While NATS is away the client's outbound queue fills; a session never
    // waits on it for longer than this.
    match tokio::time::timeout(PUBLISH_TIMEOUT, ctx.bus.publish(subject, payload)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::debug!(error = %e, "lifecycle event not published"),
        Err(_) => tracing::debug!("lifecycle event not published: NATS is away"),
    }
}
