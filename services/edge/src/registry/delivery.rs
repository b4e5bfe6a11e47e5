//! How a bus message reaches sessions: it is checked to be text once and
//! becomes one reference-counted frame, shared by every session it goes to
//! and queued without ever waiting, so a slow session cannot hold up the
//! others.

use std::time::Duration;

use herald_bus::BusMessage;
use herald_proto::close;
use herald_proto::conn_id::ConnId;
use herald_proto::subject::EXCLUDE_CONN_HEADER;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::Registry;
use crate::handle::{CloseRequest, Offer, SessionHandle};

impl Registry {
    /// The frame a bus message becomes: its payload as it is, once checked to
    /// be text.
    pub(super) fn frame_of(&self, message: &BusMessage) -> Option<Utf8Bytes> {
        self.metrics.bus_messages.inc();
        match Utf8Bytes::try_from(message.payload.clone()) {
            Ok(frame) => Some(frame),
            Err(_) => {
                tracing::warn!(subject = message.subject(), "dropped a message that is not UTF-8 text");
                None
            }
        }
    }

    /// The local connection a message's `Herald-Exclude-Conn` names, if it is
    /// one of ours.
    pub(super) fn excluded_local(&self, message: &BusMessage) -> Option<u64> {
        let excluded: ConnId = message.header(EXCLUDE_CONN_HEADER)?.trim().parse().ok()?;
        (excluded.edge() == self.edge_id).then_some(excluded.local())
    }

    /// Queues a frame for a session; a session whose mailbox stayed full for
    /// longer than the grace is closed with 1013.
    pub(super) fn offer(&self, handle: &SessionHandle, frame: Utf8Bytes) {
        // The clock starts at 1 so that 0 can mean "not full".
        let now_ms = self.epoch.elapsed().as_millis() as u64 + 1;
        if let Offer::Full { since_ms } = handle.offer(frame, now_ms) {
            if Duration::from_millis(now_ms - since_ms) < self.slow_consumer_grace {
                self.metrics.dropped.mailbox_full.inc();
            } else {
                self.metrics.dropped.slow_consumer.inc();
                if handle.close_now(CloseRequest::new(close::TRY_AGAIN_LATER, "slow consumer")) {
                    self.metrics.slow_consumers.inc();
                }
            }
        }
    }
}
