//! What the Pusher API and the webhook sender measure, registered with the
//! router's metrics under `herald_router_pusher_`.

use herald_metrics::ReasonLabel;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// Webhook events dropped, by why; each counter is the family's series for
/// one reason, looked up once.
#[derive(Debug)]
pub(crate) struct WebhookDrops {
    /// An event that was not a webhook event.
    pub malformed: Counter,
    /// An event for an app without a webhook on this router.
    pub no_webhook: Counter,
    /// The app's queue was full.
    pub queue_full: Counter,
    /// Not taken by the receiver after every retry.
    pub undelivered: Counter,
}

/// The Pusher API's and webhooks' metrics; each field says what it counts.
#[derive(Debug)]
pub(crate) struct PusherMetrics {
    /// Pusher HTTP API requests.
    pub api_requests: Counter,
    /// Pusher HTTP API requests refused before they were read (unknown app,
    /// bad signature, body too large).
    pub api_refusals: Counter,
    /// Events published by triggers, one per channel.
    pub events_published: Counter,
    /// Webhook requests a receiver took.
    pub webhooks_sent: Counter,
    /// Webhook requests sent again after a failure.
    pub webhook_retries: Counter,
    /// The family of `webhook_drops`, for registering.
    webhook_drops_family: Family<ReasonLabel, Counter>,
    pub webhook_drops: WebhookDrops,
}

impl Default for PusherMetrics {
    fn default() -> PusherMetrics {
        let family = Family::<ReasonLabel, Counter>::default();
        let drop = |reason| family.get_or_create_owned(&ReasonLabel { reason });
        PusherMetrics {
            api_requests: Counter::default(),
            api_refusals: Counter::default(),
            events_published: Counter::default(),
            webhooks_sent: Counter::default(),
            webhook_retries: Counter::default(),
            webhook_drops: WebhookDrops {
                malformed: drop("malformed"),
                no_webhook: drop("no_webhook"),
                queue_full: drop("queue_full"),
                undelivered: drop("undelivered"),
            },
            webhook_drops_family: family,
        }
    }
}

impl PusherMetrics {
    /// Registers every metric in `registry` (the router's, prefixed
    /// `pusher` here).
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("pusher");
        r.register("api_requests", "Pusher HTTP API requests", self.api_requests.clone());
        let help =
            "Pusher HTTP API requests refused before they were read (unknown app, bad signature, body too large)";
        r.register("api_refusals", help, self.api_refusals.clone());
        let help = "Events published by Pusher triggers, one per channel";
        r.register("events_published", help, self.events_published.clone());
        r.register("webhooks_sent", "Webhook requests a receiver took", self.webhooks_sent.clone());
        r.register("webhook_retries", "Webhook requests sent again after a failure", self.webhook_retries.clone());
        let help = "Webhook events dropped, by reason (malformed, no_webhook: for an app without a webhook here, \
                    queue_full, undelivered after every retry)";
        r.register("webhook_events_dropped", help, self.webhook_drops_family.clone());
    }
}
