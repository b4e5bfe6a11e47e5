//! What sessions need from the edge, and nothing else: the registry they
//! belong to, the routers and handlers their actions go to, the events they
//! publish, the token rules for `$auth`, their limits and timers, and the
//! drain they are part of. One per edge, shared by every session.

use std::sync::Arc;

use herald_bus::Bus;
use herald_proto::subject::Subjects;

use super::clock::Clock;
use crate::auth::Verifier;
use crate::config::{Limits, Timing};
use crate::drain::Drain;
use crate::events::Events;
use crate::handle::Alarms;
use crate::metrics::Metrics;
use crate::pusher::{Presence, Webhooks};
use crate::registry::Registry;
use crate::routers::Routers;

#[derive(Debug)]
pub(crate) struct SessionContext {
    /// Where sessions register and change groups and users.
    pub registry: Arc<Registry>,
    /// Pusher presence channels' members on every edge.
    pub pusher_presence: Arc<Presence>,
    /// Pusher channel webhooks decided across the cluster.
    pub pusher_webhooks: Arc<Webhooks>,
    /// Where client actions, `$join`s the token does not allow, go.
    pub routers: Routers,
    /// Connect and disconnect events.
    pub events: Events,
    /// Checks the tokens of `$auth`.
    pub verifier: Arc<Verifier>,
    /// Where publish effects are published, and their subjects.
    pub bus: Bus,
    pub subjects: Subjects,
    pub limits: Limits,
    pub timing: Timing,
    /// What sessions keep their moments on (in 8 bytes each).
    pub clock: Clock,
    /// The wheel sessions set their timers on, where each kept a tokio
    /// `Sleep` in its task (ADR 0025).
    pub alarms: Alarms,
    /// Sessions are tracked by it and close themselves once it has begun.
    pub drain: Drain,
    pub metrics: Arc<Metrics>,
}
