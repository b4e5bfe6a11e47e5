//! Who is online, across every edge: the same answer the router's presence
//! API gives, for handlers and backends on NATS.
//!
//! Presence is asked, not stored: every live edge answers for its own
//! connections (scatter-gather on `<prefix>.presence.query`, through
//! [`Edges`]), so each connection is counted exactly once, and an edge that
//! died cannot answer, so its connections drop out the moment it dies. See
//! ARCHITECTURE.md for why not a shared store.

use std::time::Duration;

use herald_bus::{Bus, BusError};
use herald_proto::presence::{EdgePresence, PresenceQuery};
use herald_proto::subject::Subjects;

pub use crate::edges::DEAD_AFTER_BEATS;
use crate::edges::Edges;

/// A user's connections across every edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserPresence {
    pub online: bool,
    pub conns: usize,
}

/// A group's connections across every edge, and their distinct users
/// (anonymous connections count in `conns` only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupPresence {
    pub conns: usize,
    pub users: Vec<String>,
}

/// Asks the edges who is online; cheap to clone.
#[derive(Debug, Clone)]
pub struct Presence {
    subjects: Subjects,
    edges: Edges,
}

impl Presence {
    /// Starts following the edges' heartbeats.
    pub async fn start(bus: Bus, subjects: Subjects, timeout: Duration) -> Result<Presence, BusError> {
        let edges = Edges::start(bus, &subjects, timeout).await?;
        Ok(Presence { subjects, edges })
    }

    /// The live edges this follows, to ask them other questions.
    pub fn edges(&self) -> &Edges {
        &self.edges
    }

    /// Edges alive now.
    pub fn live_edges(&self) -> usize {
        self.edges.live()
    }

    pub async fn user(&self, user: &str) -> Result<UserPresence, BusError> {
        let answers = self.ask(PresenceQuery::User(user.to_owned())).await?;
        let conns = answers.iter().map(|edge| edge.conns).sum();
        Ok(UserPresence { online: conns > 0, conns })
    }

    pub async fn group(&self, group: &str) -> Result<GroupPresence, BusError> {
        let answers = self.ask(PresenceQuery::Group(group.to_owned())).await?;
        let conns = answers.iter().map(|edge| edge.conns).sum();
        let mut users: Vec<String> = answers.into_iter().flat_map(|edge| edge.users).collect();
        users.sort();
        users.dedup();
        Ok(GroupPresence { conns, users })
    }

    /// Asks every edge; one answer per edge.
    async fn ask(&self, query: PresenceQuery) -> Result<Vec<EdgePresence>, BusError> {
        self.edges.ask(self.subjects.presence_query(), &query).await
    }
}
