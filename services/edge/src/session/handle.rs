//! The handle the rest of the edge holds to reach one session: a bounded
//! mailbox for frames, and a close request that bypasses the mailbox.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, mpsc};
use tokio_tungstenite::tungstenite::Utf8Bytes;

/// What a session is asked to do by others.
#[derive(Debug)]
pub(crate) enum Outbound {
    /// Write this frame. The bytes are shared by every session it goes to.
    Frame(Utf8Bytes),
    /// Close after the frames queued before this one.
    Close(CloseRequest),
}

/// How and why a session ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CloseRequest {
    pub code: u16,
    pub reason: String,
}

impl CloseRequest {
    pub fn new(code: u16, reason: impl Into<String>) -> CloseRequest {
        CloseRequest { code, reason: reason.into() }
    }
}

/// A cheap, cloneable handle to one session.
#[derive(Debug, Clone)]
pub(crate) struct SessionHandle {
    /// The session's mailbox. Bounded: a full mailbox means a slow consumer.
    tx: mpsc::Sender<Outbound>,
    /// State shared with the session task.
    shared: Arc<Shared>,
}

/// The part of a session other tasks may touch.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// Milliseconds on the edge's delivery clock when the mailbox was first
    /// found full; 0 while it is not full. Lets deliveries tell a brief burst
    /// from a client that stopped reading.
    full_since: AtomicU64,
    /// The first close asked for; later ones are ignored.
    close: Mutex<Option<CloseRequest>>,
    /// Wakes the session when `close` is set.
    close_requested: Notify,
}

/// What happened to a frame offered to a session.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Offer {
    Queued,
    /// The mailbox is full and has been since this time on the delivery clock.
    Full {
        since_ms: u64,
    },
    /// The session is ending.
    Gone,
}

impl SessionHandle {
    /// A handle and the mailbox its session reads.
    pub fn new(capacity: usize) -> (SessionHandle, mpsc::Receiver<Outbound>, Arc<Shared>) {
        let (tx, rx) = mpsc::channel(capacity);
        let shared = Arc::new(Shared::default());
        (SessionHandle { tx, shared: shared.clone() }, rx, shared)
    }

    /// Queues a frame without ever waiting. `now_ms` is the delivery clock,
    /// never 0.
    pub fn offer(&self, frame: Utf8Bytes, now_ms: u64) -> Offer {
        match self.tx.try_send(Outbound::Frame(frame)) {
            Ok(()) => {
                if self.shared.full_since.load(Ordering::Relaxed) != 0 {
                    self.shared.full_since.store(0, Ordering::Relaxed);
                }
                Offer::Queued
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                let since_ms =
                    match self.shared.full_since.compare_exchange(0, now_ms, Ordering::Relaxed, Ordering::Relaxed) {
                        Ok(_) => now_ms,
                        Err(earlier) => earlier,
                    };
                Offer::Full { since_ms }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Offer::Gone,
        }
    }

    /// Closes the session after what is already queued for it, or at once
    /// when its mailbox is full.
    pub fn close_after_queued(&self, request: CloseRequest) {
        if let Err(mpsc::error::TrySendError::Full(Outbound::Close(request))) =
            self.tx.try_send(Outbound::Close(request))
        {
            self.close_now(request);
        }
    }

    /// Closes the session at once, whatever it is doing. Whether this was
    /// the first close asked for.
    pub fn close_now(&self, request: CloseRequest) -> bool {
        self.shared.request_close(request)
    }
}

impl Shared {
    fn request_close(&self, request: CloseRequest) -> bool {
        let mut close = self.close.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let first = close.is_none();
        if first {
            *close = Some(request);
            self.close_requested.notify_one();
        }
        first
    }

    /// Resolves with the close request once there is one.
    pub async fn close_requested(&self) -> CloseRequest {
        loop {
            if let Some(request) = self.close.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone() {
                return request;
            }
            self.close_requested.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame() -> Utf8Bytes {
        Utf8Bytes::from_static("{}")
    }

    #[test]
    fn a_full_mailbox_remembers_since_when() {
        let (handle, mut rx, _) = SessionHandle::new(1);
        assert_eq!(handle.offer(frame(), 10), Offer::Queued);
        assert_eq!(handle.offer(frame(), 20), Offer::Full { since_ms: 20 });
        assert_eq!(handle.offer(frame(), 30), Offer::Full { since_ms: 20 });
        rx.try_recv().unwrap();
        assert_eq!(handle.offer(frame(), 40), Offer::Queued);
        assert_eq!(handle.offer(frame(), 50), Offer::Full { since_ms: 50 });
        drop(rx);
        assert_eq!(handle.offer(frame(), 60), Offer::Gone);
    }

    #[tokio::test]
    async fn the_first_close_wins_and_a_full_mailbox_closes_at_once() {
        let (handle, _rx, shared) = SessionHandle::new(1);
        assert_eq!(handle.offer(frame(), 1), Offer::Queued);
        handle.close_after_queued(CloseRequest::new(4000, "bye"));
        assert!(!handle.close_now(CloseRequest::new(1013, "later")));
        assert_eq!(shared.close_requested().await, CloseRequest::new(4000, "bye"));
    }

    #[tokio::test]
    async fn close_after_queued_goes_through_the_mailbox() {
        let (handle, mut rx, _) = SessionHandle::new(4);
        handle.offer(frame(), 1);
        handle.close_after_queued(CloseRequest::new(4000, "bye"));
        assert!(matches!(rx.recv().await, Some(Outbound::Frame(_))));
        assert!(matches!(rx.recv().await, Some(Outbound::Close(r)) if r.code == 4000));
    }
}
