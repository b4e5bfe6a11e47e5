//! Readiness of subscriptions: what a session waits on before it tells its
//! client it is reachable (`$connected`, the reply to `$join`).
//!
//! A subscription is live once NATS has answered a `PING` sent after its
//! `SUB`. The subscriptions made while a confirmation is on its way share
//! the next one: under a connection storm that is one `PING`, one `PONG`
//! and one waiter per batch, not a task, a timer and a round trip per
//! connection (ADR
//! `0015-connects-share-subscription-confirmations`).

use std::sync::Arc;
use std::time::Duration;

use herald_bus::{Deliver, Deliveries, DeliverySubscription, Subscription};
use tokio::sync::SetOnce;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use super::Registry;

/// How long a session waits for its subscriptions to reach NATS before it
/// goes on regardless (NATS down: they are restored when it returns).
const SUBSCRIBE_WAIT: Duration = Duration::from_secs(2);

impl Registry {
    /// Subscribes `handler` to `subject` at once, and says when NATS has
    /// the subscription (or when waiting for it is over) through `ready`.
    pub(super) fn subscribe(&self, subject: &str, handler: impl Deliver, ready: Ready) -> Option<DeliverySubscription> {
        let subscription = match self.deliveries.subscribe(subject, handler) {
            Ok(subscription) => subscription,
            Err(e) => {
                tracing::error!(error = %e, "cannot subscribe; deliveries to it are lost");
                return None;
            }
        };
        self.confirmations.confirm(ready);
        Some(subscription)
    }

    /// Subscribes on the bus and waits until NATS has the subscription: for
    /// the pumps of topics with a history, which read between messages.
    pub(super) async fn subscribe_live(&self, subject: String) -> Option<Subscription> {
        let subscription = match self.bus.subscribe(subject).await {
            Ok(subscription) => subscription,
            Err(e) => {
                tracing::error!(error = %e, "cannot subscribe; deliveries to it are lost");
                return None;
            }
        };
        if let Err(e) = self.bus.sync().await {
            tracing::warn!(error = %e, "could not confirm a subscription with NATS");
        }
        Some(subscription)
    }
}

/// Hands the [`Ready`] of subscriptions just made to the task that
/// confirms them with NATS in batches ([`confirm_in_batches`]).
#[derive(Debug)]
pub(super) struct Confirmations(UnboundedSender<Ready>);

impl Confirmations {
    /// Starts the confirming task; it ends when this is dropped (with the
    /// registry). Unbounded, as each entry is a topic just made: the queue
    /// never holds more than the topics the edge holds.
    pub fn start(deliveries: Deliveries) -> Confirmations {
        let (queue, queued) = unbounded_channel();
        tokio::spawn(confirm_in_batches(deliveries, queued));
        Confirmations(queue)
    }

    /// `ready` is set once NATS has the subscription made just before.
    fn confirm(&self, ready: Ready) {
        // Fails only once the task is gone (the edge is stopping); `ready`,
        // dropped with the error, is set then.
        let _ = self.0.send(ready);
    }
}

/// Confirms subscriptions in batches, one [`Deliveries::sync`] (one `PING`,
/// sent after the batch's `SUB`s) at a time: those made while it is on its
/// way form the next batch. A connect waits at most two round trips to
/// NATS, and each batch at most [`SUBSCRIBE_WAIT`] (sessions bound their
/// own wait the same way).
async fn confirm_in_batches(deliveries: Deliveries, mut queued: UnboundedReceiver<Ready>) {
    let mut batch = Vec::new();
    while queued.recv_many(&mut batch, usize::MAX).await > 0 {
        if tokio::time::timeout(SUBSCRIBE_WAIT, deliveries.sync()).await.is_err() {
            tracing::warn!(subscriptions = batch.len(), "could not confirm subscriptions with NATS");
        }
        // Dropped, each `Ready` sets its topic's readiness.
        batch.clear();
    }
}

/// Set once a subscription is live, or once trying is over (it failed, or
/// its topic is gone): what sessions wait on before they say they are
/// reachable. (A `SetOnce` rather than a `watch` channel, whose eight
/// receiver `Notify`s cost about 350 bytes per topic.)
pub(crate) type Subscribed = Arc<SetOnce<()>>;

/// The subscribing side of a [`Subscribed`]: sets it when dropped, whether
/// subscribing succeeded, failed or was cancelled, so no session waits on
/// a subscription nobody is making.
#[derive(Debug)]
pub(super) struct Ready(Subscribed);

impl Drop for Ready {
    fn drop(&mut self) {
        let _ = self.0.set(());
    }
}

pub(super) fn readiness() -> (Ready, Subscribed) {
    let subscribed = Subscribed::default();
    (Ready(subscribed.clone()), subscribed)
}

/// Waits, for a bounded time, until every subscription is live.
pub(crate) async fn wait_subscribed(subscriptions: impl IntoIterator<Item = Subscribed>) {
    // Topics that were live already (shared ones, mostly) need no timer.
    let mut pending = subscriptions.into_iter().filter(|subscribed| !subscribed.initialized()).peekable();
    if pending.peek().is_none() {
        return;
    }
    let all = async {
        for subscribed in pending {
            subscribed.wait().await;
        }
    };
    if tokio::time::timeout(SUBSCRIBE_WAIT, all).await.is_err() {
        tracing::warn!("subscriptions not confirmed by NATS in time; going on");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waiters_go_on_once_subscribing_is_over_whatever_its_outcome() {
        let (ready, subscribed) = readiness();
        let waiter = tokio::spawn(wait_subscribed([subscribed.clone()]));
        tokio::task::yield_now().await;
        assert!(!subscribed.initialized());
        // Dropped without subscribing: failed, or its topic went away.
        drop(ready);
        tokio::time::timeout(Duration::from_millis(500), waiter).await.unwrap().unwrap();
        assert!(subscribed.initialized());
    }
}
