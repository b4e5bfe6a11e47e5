//! Pushing to clients from a backend: frames to users, groups, connections
//! or everyone, and group membership and disconnects, over NATS.

use bytes::Bytes;
use herald_bus::{Bus, BusError};
use herald_proto::client;
use herald_proto::conn_id::ConnId;
use herald_proto::control::ControlOp;
use herald_proto::handler::Target;
use herald_proto::published_at::{self, PUBLISHED_AT_HEADER};
use herald_proto::subject::Subjects;
use serde::Serialize;
use thiserror::Error;

/// Why a push was not sent.
#[derive(Debug, Error)]
pub enum PushError {
    #[error(transparent)]
    BadConn(#[from] herald_proto::conn_id::BadConnId),
    #[error(transparent)]
    Bus(#[from] BusError),
}

/// Sends to Herald's clients through the bus, as any backend may.
#[derive(Debug, Clone)]
pub struct Pusher {
    bus: Bus,
    subjects: Subjects,
}

impl Pusher {
    pub fn new(bus: Bus, subjects: Subjects) -> Pusher {
        Pusher { bus, subjects }
    }

    /// Sends `{"action", "details"}` to everyone `to` names.
    pub async fn publish(&self, to: &Target, action: &str, details: impl Serialize) -> Result<(), PushError> {
        let frame = Bytes::from(client::encode(action, &details, None));
        let stamp = published_at::stamp_now();
        for subject in self.subjects.for_target(to)? {
            self.bus.publish_with_header(subject, (PUBLISHED_AT_HEADER, &stamp), frame.clone()).await?;
        }
        Ok(())
    }

    /// Applies a control operation to every connection of `user`, on every
    /// edge.
    pub async fn control_user(&self, user: &str, op: &ControlOp) -> Result<(), PushError> {
        self.control(self.subjects.ctl_user(user), op).await
    }

    /// Applies a control operation to one connection.
    pub async fn control_conn(&self, conn: &str, op: &ControlOp) -> Result<(), PushError> {
        let conn: ConnId = conn.parse()?;
        self.control(self.subjects.ctl_conn(&conn), op).await
    }

    async fn control(&self, subject: String, op: &ControlOp) -> Result<(), PushError> {
        let payload = Bytes::from(serde_json::to_vec(op).expect("a control op always serialises"));
        Ok(self.bus.publish(subject, payload).await?)
    }
}
