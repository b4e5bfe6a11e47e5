//! Readiness of subscriptions: what a session waits on before it tells its
//! client it is reachable (`$connected`, the reply to `$join`).
//!
//! A subscription is live once NATS has answered a `PING` sent after its
//! `SUB`. The subscriptions made while a confirmation is on its way share
//! the next one: under a connection storm that is one `PING`, one `PONG`
//! and one waiter per batch, not a task, a timer and a round trip per
//! connection (ADR
//! `0015-connects-share-subscription-confirmations`).
//!
//! A topic keeps nothing of its confirmation: its generation says which
//! batch it was in, as topics are made (and their `SUB`s queued) in the
//! order of their generations, under the registry's lock. What waiters
//! wait on is one [`SetOnce`] per batch, dropped once the batch is over
//! (ADR `0024-a-confirmed-topic-keeps-no-readiness`).

use std::num::NonZeroU64;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use herald_bus::{BusError, Deliver, Deliveries, DeliverySubscription, Subscription};
use tokio::sync::{Notify, SetOnce};
use tokio_util::task::AbortOnDropHandle;

use super::{Registry, TopicKind};

/// How long a session waits for its subscriptions to reach NATS before it
/// goes on regardless (NATS down: they are restored when it returns).
const SUBSCRIBE_WAIT: Duration = Duration::from_secs(2);

impl Registry {
    /// Subscribes `handler` to `subject` at once; [`Confirmations`] or
    /// [`confirm`] say when NATS has it.
    pub(super) fn subscribe(&self, subject: &str, handler: Arc<dyn Deliver>) -> Option<DeliverySubscription> {
        logged(self.deliveries.subscribe(subject, handler))
    }

    /// Subscribes a topic of `kind` to `subject` at once, in the kind's
    /// family; returns the subscription's id.
    pub(super) fn subscribe_topic(&self, kind: TopicKind, subject: &str) -> Option<NonZeroU64> {
        logged(self.deliveries.subscribe_in(&self.topic_families[kind as usize], subject)).and_then(NonZeroU64::new)
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

/// A subscription made, or why not, logged.
fn logged<T>(subscribed: Result<T, BusError>) -> Option<T> {
    subscribed.inspect_err(|e| tracing::error!(error = %e, "cannot subscribe; deliveries to it are lost")).ok()
}

/// Waits, for at most [`SUBSCRIBE_WAIT`], until NATS has every delivery
/// subscription made so far (`count` of them are waited for, for the log).
pub(super) async fn confirm(deliveries: &Deliveries, count: usize) {
    if tokio::time::timeout(SUBSCRIBE_WAIT, deliveries.sync()).await.is_err() {
        tracing::warn!(subscriptions = count, "could not confirm subscriptions with NATS");
    }
}

/// Confirms the subscriptions of new topics with NATS in batches, on a
/// task of its own that ends when this is dropped (with the registry).
#[derive(Debug)]
pub(super) struct Confirmations {
    batches: Arc<Batches>,
    _task: AbortOnDropHandle<()>,
}

#[derive(Debug, Default)]
struct Batches {
    state: Mutex<BatchState>,
    /// Wakes the task when a topic is queued.
    queued: Notify,
}

#[derive(Debug, Default)]
struct BatchState {
    /// Every topic of a generation up to this one is confirmed (or waiting
    /// for it is over).
    done: u64,
    /// The newest topic whose `SUB` is queued: the next batch reaches it.
    queued: u64,
    /// Topics queued since the last batch was taken, for the log.
    queued_count: usize,
    /// The batch on its way: the newest topic in it, and what its waiters
    /// wait on.
    in_flight: Option<(u64, Arc<SetOnce<()>>)>,
    /// What the waiters of topics queued since wait on.
    next: Arc<SetOnce<()>>,
}

impl Batches {
    fn lock(&self) -> MutexGuard<'_, BatchState> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Confirmations {
    pub fn start(deliveries: Deliveries) -> Confirmations {
        let batches = Arc::new(Batches::default());
        let task = tokio::spawn(confirm_in_batches(deliveries, batches.clone()));
        Confirmations { batches, _task: AbortOnDropHandle::new(task) }
    }

    /// The topic of `generation` has just queued its `SUB`. Called under
    /// the registry's lock, under which generations are given out, so in
    /// their order.
    pub fn queued(&self, generation: u64) {
        let mut state = self.batches.lock();
        state.queued = state.queued.max(generation);
        state.queued_count += 1;
        self.batches.queued.notify_one();
    }

    /// What a session waits on for the topic of `generation`, queued
    /// before: nothing once its batch is over.
    pub fn subscribed(&self, generation: u64) -> Subscribed {
        let state = self.batches.lock();
        if generation <= state.done {
            return Subscribed(None);
        }
        let batch = match &state.in_flight {
            Some((through, batch)) if generation <= *through => batch,
            _ => &state.next,
        };
        Subscribed(Some(batch.clone()))
    }
}

impl Drop for Confirmations {
    /// No session waits on confirmations nobody is making.
    fn drop(&mut self) {
        let state = self.batches.lock();
        let _ = state.next.set(());
        if let Some((_, batch)) = &state.in_flight {
            let _ = batch.set(());
        }
    }
}

/// Confirms subscriptions in batches, one [`Deliveries::sync`] (one `PING`,
/// sent after the batch's `SUB`s) at a time: those made while it is on its
/// way form the next batch. A connect waits at most two round trips to
/// NATS, and each batch at most [`SUBSCRIBE_WAIT`] (sessions bound their
/// own wait the same way).
async fn confirm_in_batches(deliveries: Deliveries, batches: Arc<Batches>) {
    loop {
        batches.queued.notified().await;
        let (through, count, batch) = {
            let mut state = batches.lock();
            if state.queued <= state.done {
                continue;
            }
            let batch = std::mem::take(&mut state.next);
            state.in_flight = Some((state.queued, batch.clone()));
            (state.queued, std::mem::take(&mut state.queued_count), batch)
        };
        confirm(&deliveries, count).await;
        let mut state = batches.lock();
        state.done = through;
        state.in_flight = None;
        let _ = batch.set(());
    }
}

/// What a session waits on before it says it is reachable: nothing when
/// the subscription is live already, or the [`SetOnce`] of its batch (or,
/// for a topic with a history, its pump's), set once it is live or once
/// trying is over (it failed, or its topic is gone). (A `SetOnce` rather
/// than a `watch` channel, whose eight receiver `Notify`s cost about 350
/// bytes.)
#[derive(Debug, Clone, Default)]
pub(crate) struct Subscribed(Option<Arc<SetOnce<()>>>);

impl Subscribed {
    fn is_live(&self) -> bool {
        self.0.as_ref().is_none_or(|set| set.initialized())
    }
}

/// The subscribing side of a pump's [`Subscribed`]: sets it when dropped,
/// whether subscribing succeeded, failed or was cancelled, so no session
/// waits on a subscription nobody is making.
#[derive(Debug)]
pub(super) struct Ready(Arc<SetOnce<()>>);

impl Ready {
    pub fn of(subscribed: &Arc<SetOnce<()>>) -> Ready {
        Ready(subscribed.clone())
    }
}

impl Drop for Ready {
    fn drop(&mut self) {
        let _ = self.0.set(());
    }
}

impl From<&Arc<SetOnce<()>>> for Subscribed {
    fn from(subscribed: &Arc<SetOnce<()>>) -> Subscribed {
        Subscribed(Some(subscribed.clone()))
    }
}

/// Waits, for a bounded time, until every subscription is live.
pub(crate) async fn wait_subscribed(subscriptions: impl IntoIterator<Item = Subscribed>) {
    // Topics that were live already (shared ones, mostly) need no timer.
    let mut pending = subscriptions.into_iter().filter(|subscribed| !subscribed.is_live()).peekable();
    if pending.peek().is_none() {
        return;
    }
    let all = async {
        for subscribed in pending.filter_map(|subscribed| subscribed.0) {
            subscribed.wait().await;
        }
    };
    if tokio::time::timeout(SUBSCRIBE_WAIT, all).await.is_err() {
        tracing::warn!("subscriptions not confirmed by NATS in time; going on");
    }
}

#[cfg(test)]
mod tests {
    use herald_bus::Bus;

    use super::*;

    #[tokio::test]
    async fn waiters_go_on_once_subscribing_is_over_whatever_its_outcome() {
        let subscribed = Arc::new(SetOnce::new());
        let ready = Ready::of(&subscribed);
        let waiter = tokio::spawn(wait_subscribed([Subscribed::from(&subscribed)]));
        tokio::task::yield_now().await;
        assert!(!subscribed.initialized());
        // Dropped without subscribing: failed, or its topic went away.
        drop(ready);
        tokio::time::timeout(Duration::from_millis(500), waiter).await.unwrap().unwrap();
        assert!(subscribed.initialized());
    }

    #[tokio::test]
    async fn topics_queued_together_share_a_confirmation_and_keep_nothing_once_it_is_over() {
        let confirmations = Confirmations::start(Bus::local().deliveries().unwrap());
        confirmations.queued(3);
        confirmations.queued(5);
        let (three, five) = (confirmations.subscribed(3), confirmations.subscribed(5));
        assert!(Arc::ptr_eq(three.0.as_ref().unwrap(), five.0.as_ref().unwrap()), "one batch");
        tokio::time::timeout(Duration::from_millis(500), wait_subscribed([three.clone(), five]))
            .await
            .expect("the batch is confirmed");
        assert!(three.is_live());
        assert!(confirmations.subscribed(3).0.is_none() && confirmations.subscribed(5).0.is_none());
        // A topic queued after the batch waits for the next one.
        confirmations.queued(8);
        let eight = confirmations.subscribed(8);
        assert!(!Arc::ptr_eq(three.0.as_ref().unwrap(), eight.0.as_ref().unwrap()));
        tokio::time::timeout(Duration::from_millis(500), wait_subscribed([eight])).await.unwrap();
        assert!(confirmations.subscribed(8).0.is_none());
    }

    #[tokio::test]
    async fn waiters_go_on_when_the_confirmations_end() {
        let confirmations = Confirmations::start(Bus::local().deliveries().unwrap());
        let mut state = confirmations.batches.lock();
        state.queued = 1;
        drop(state);
        let waiting = confirmations.subscribed(1);
        drop(confirmations);
        assert!(waiting.is_live());
    }
}
