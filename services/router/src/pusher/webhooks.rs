//! Pusher webhooks: edges decide the events (they see the transitions) and
//! publish them as [`WebhookEvent`]s on `<prefix>.pusher.webhooks`; routers,
//! in one queue group so each event is sent once, batch them per app, sign
//! them and POST them to the app's webhook URL.
//!
//! - A batch is `{"time_ms": <its first event's time>, "events": [...]}`,
//!   sent [`BATCH_DELAY`] after its first event or at [`MAX_BATCH_EVENTS`],
//!   with `X-Pusher-Key` and `X-Pusher-Signature` (HMAC-SHA256 of the body
//!   with the app's secret), as Pusher sends them.
//! - A request that fails (no answer within [`REQUEST_TIMEOUT`], a network
//!   error, a 5xx or 429) is retried [`RETRIES`] times with a doubling
//!   back-off; a receiver's other refusals (4xx) are final. A batch that
//!   cannot be delivered is dropped and its events counted.
//! - Each app has its own bounded queue ([`QUEUE_CAPACITY`] events) and its
//!   own sender, so a slow receiver delays only its own app; an event that
//!   finds its queue full is dropped and counted, never waited for.
//!
//! Only apps with a webhook URL get events, and without any such app the
//! router does not even subscribe.

use std::borrow::Cow;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use herald_bus::{Bus, BusError, QueueSubscription};
use herald_proto::pusher::app::{App, WebhookKind};
use herald_proto::pusher::cluster::WebhookEvent;
use herald_proto::pusher::sign::webhook_signature;
use herald_proto::subject::Subjects;
use http::header::CONTENT_TYPE;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::PusherMetrics;

/// Queue group of routers sending webhooks: each event goes to one router.
pub(crate) const WEBHOOKS_QUEUE: &str = "herald-router-pusher-webhooks";
/// How long a batch waits for more events after its first.
pub(crate) const BATCH_DELAY: Duration = Duration::from_millis(250);
/// Most events one webhook request carries.
pub(crate) const MAX_BATCH_EVENTS: usize = 100;
/// Events waiting for one app's webhook; one more is dropped.
pub(crate) const QUEUE_CAPACITY: usize = 10_000;
/// How long one webhook request may take.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Further attempts after a failed request.
pub(crate) const RETRIES: u32 = 4;
/// Wait before the first retry; each further one waits twice as long.
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// How long a stopping router keeps sending what it holds.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// A router's webhook sender, subscribed and ready to [`run`](Self::run).
#[derive(Debug)]
pub(crate) struct WebhookSender {
    /// Webhook events from the edges (queue group).
    events: QueueSubscription,
    /// The apps that have a webhook.
    apps: Vec<Arc<App>>,
    metrics: Arc<PusherMetrics>,
}

/// One webhook request's body, as Pusher sends it.
#[derive(Serialize)]
struct Batch<'a> {
    time_ms: u64,
    events: &'a [Box<RawValue>],
}

/// An event waiting in an app's queue.
#[derive(Debug)]
struct Queued {
    time_ms: u64,
    event: Box<RawValue>,
}

impl WebhookSender {
    /// Subscribes when any of `apps` has a webhook; `None` otherwise.
    pub async fn subscribe(
        bus: &Bus,
        subjects: &Subjects,
        apps: impl Iterator<Item = Arc<App>>,
        metrics: Arc<PusherMetrics>,
    ) -> Result<Option<WebhookSender>, BusError> {
        let apps: Vec<Arc<App>> = apps.filter(|app| app.webhook_url.is_some()).collect();
        if apps.is_empty() {
            return Ok(None);
        }
        let events = bus.queue_subscribe(subjects.pusher_webhooks(), WEBHOOKS_QUEUE.to_owned()).await?;
        Ok(Some(WebhookSender { events, apps, metrics }))
    }

    /// Sends webhooks until `stop` resolves; then leaves the queue group,
    /// takes the events already on their way here, sends what it holds (for
    /// at most [`STOP_GRACE`]) and returns.
    pub async fn run(self, stop: impl Future<Output = ()>) {
        let WebhookSender { events, apps, metrics } = self;
        let client =
            reqwest::Client::builder().timeout(REQUEST_TIMEOUT).build().expect("an HTTP client with a timeout builds");
        let mut senders = JoinSet::new();
        let queues: Queues = apps
            .into_iter()
            .map(|app| {
                let (queue, queued) = mpsc::channel(QUEUE_CAPACITY);
                senders.spawn(deliver(app.clone(), queued, client.clone(), metrics.clone()));
                (app.id.clone(), (app, queue))
            })
            .collect();
        let events = events.until_drained(stop);
        tokio::pin!(events);
        while let Some(message) = events.next().await {
            route(&queues, &message.payload, &metrics);
        }
        // Closing the queues lets each sender send what it holds and end.
        drop(queues);
        if tokio::time::timeout(STOP_GRACE, async { while senders.join_next().await.is_some() {} }).await.is_err() {
            tracing::warn!("webhooks still unsent after {STOP_GRACE:?} of stopping were dropped");
        }
    }
}

/// Each app with a webhook, by id, and its queue.
type Queues = HashMap<String, (Arc<App>, mpsc::Sender<Queued>)>;

/// Puts one event in its app's queue, if the app wants it.
fn route(queues: &Queues, payload: &Bytes, metrics: &PusherMetrics) {
    let event: WebhookEvent = match herald_proto::json::from_object(payload) {
        Ok(event) => event,
        Err(e) => {
            tracing::warn!(error = %e, "ignored a malformed webhook event");
            metrics.webhook_drops.malformed.inc();
            return;
        }
    };
    let Some((app, queue)) = queues.get(&event.app_id) else {
        tracing::debug!(app = %event.app_id, "a webhook event for an app without a webhook here was dropped");
        metrics.webhook_drops.no_webhook.inc();
        return;
    };
    if !wanted(app, &event.event) {
        return;
    }
    if queue.try_send(Queued { time_ms: event.time_ms, event: event.event }).is_err() {
        metrics.webhook_drops.queue_full.inc();
    }
}

/// Whether `app` takes events of the name `event` carries.
fn wanted(app: &App, event: &RawValue) -> bool {
    #[derive(Deserialize)]
    struct Named<'a> {
        #[serde(borrow)]
        name: Cow<'a, str>,
    }
    serde_json::from_str::<Named<'_>>(event.get())
        .ok()
        .and_then(|named| WebhookKind::of(&named.name))
        .is_some_and(|kind| app.wants_webhook(kind))
}

/// One app's sender: batches what its queue brings and sends each batch,
/// until the queue is closed and empty.
async fn deliver(
    app: Arc<App>,
    mut queued: mpsc::Receiver<Queued>,
    client: reqwest::Client,
    metrics: Arc<PusherMetrics>,
) {
    let url = app.webhook_url.clone().expect("only apps with a webhook get a sender");
    while let Some(first) = queued.recv().await {
        let time_ms = first.time_ms;
        let mut events = vec![first.event];
        let deadline = Instant::now() + BATCH_DELAY;
        let mut closing = false;
        while events.len() < MAX_BATCH_EVENTS {
            match tokio::time::timeout_at(deadline, queued.recv()).await {
                Ok(Some(next)) => events.push(next.event),
                Ok(None) => {
                    closing = true;
                    break;
                }
                Err(_) => break,
            }
        }
        let body = serde_json::to_vec(&Batch { time_ms, events: &events }).expect("a webhook batch serialises");
        // A stopping router tries once: retries would outlast its grace.
        let retries = if closing { 0 } else { RETRIES };
        if send(&client, &url, &app, Bytes::from(body), retries, &metrics).await {
            metrics.webhooks_sent.inc();
        } else {
            metrics.webhook_drops.undelivered.inc_by(events.len() as u64);
        }
    }
}

/// Sends one batch, retrying as the module says; whether it was taken.
async fn send(
    client: &reqwest::Client,
    url: &str,
    app: &App,
    body: Bytes,
    retries: u32,
    metrics: &PusherMetrics,
) -> bool {
    let signature = webhook_signature(&app.secret, &body);
    let mut backoff = FIRST_BACKOFF;
    for attempt in 0..=retries {
        if attempt > 0 {
            metrics.webhook_retries.inc();
            tokio::time::sleep(backoff).await;
            backoff *= 2;
        }
        let sent = client
            .post(url)
            .header(CONTENT_TYPE, "application/json")
            .header("X-Pusher-Key", &app.key)
            .header("X-Pusher-Signature", &signature)
            .body(body.clone())
            .send()
            .await;
        match sent {
            Ok(answer) if answer.status().is_success() => return true,
            Ok(answer)
                if answer.status().is_server_error() || answer.status() == http::StatusCode::TOO_MANY_REQUESTS =>
            {
                tracing::warn!(app = %app.id, status = %answer.status(), attempt, "webhook attempt refused");
            }
            Ok(answer) => {
                tracing::warn!(app = %app.id, status = %answer.status(), "webhook refused by its receiver; dropped");
                return false;
            }
            Err(e) => tracing::warn!(app = %app.id, error = %e, attempt, "webhook attempt failed"),
        }
    }
    tracing::warn!(app = %app.id, "webhook not delivered after {} attempts; dropped", retries + 1);
    false
}
