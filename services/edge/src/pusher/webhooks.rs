//! Webhook events the edges decide for the whole cluster, published on
//! `<prefix>.pusher.webhooks` for the routers to send (ADR 0008), and only
//! for apps that want them (no cost otherwise).
//!
//! - `channel_occupied`: on its first local Pusher subscriber of a channel
//!   an edge notes the time, then asks every edge since when it holds the
//!   channel; the holder with the smallest `(since, edge)` sends it.
//! - `channel_vacated`: on its last local subscriber leaving, an edge
//!   notes the time, then asks; when no edge holds the channel, the one
//!   that left last (largest `(vacated, edge)` among those that left
//!   lately) sends it. Each edge notes before it asks, so of two edges
//!   leaving or arriving at once at least one sees the other: never
//!   "vacated" while an edge still holds the channel.
//! - `member_added` / `member_removed`: by the edge whose own member's
//!   join or leave changed the channel's members (`super::presence`); for
//!   the members of an edge that died, by the live edge with the smallest
//!   id among those holding the channel.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use herald_bus::Bus;
use herald_handler::edges::Edges;
use herald_proto::pusher::app::{App, WebhookKind};
use herald_proto::pusher::cluster::{ChannelCount, ChannelQuery, EdgeChannels, WebhookEvent};
use herald_proto::subject::Subjects;
use serde_json::json;
use serde_json::value::RawValue;

use crate::events::PUBLISH_TIMEOUT;
use crate::presence::HEARTBEAT_INTERVAL;

/// How long an edge remembers it vacated a channel, so that edges
/// vacating at once elect one sender. Far longer than the questions take.
const REMEMBER_VACATED: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub(crate) struct Webhooks {
    /// This edge's id: the tie-breaker of elections.
    edge: Arc<str>,
    /// Where webhook events are published and other edges asked.
    bus: Bus,
    subjects: Subjects,
    edges: Edges,
    /// The channels this edge's Pusher connections hold or lately left, by
    /// group, for apps that want `channel_occupied` or `channel_vacated`.
    channels: Mutex<HashMap<String, Holding>>,
}

/// Whether this edge holds a channel.
#[derive(Debug, Clone, Copy)]
enum Holding {
    /// Its Pusher connections subscribed, since this Unix ms.
    Since { subscribers: usize, since_ms: u64 },
    /// Its last one left at this Unix ms.
    Vacated { at_ms: u64 },
}

impl Webhooks {
    pub fn new(edge: &str, bus: Bus, subjects: Subjects, edges: Edges) -> Arc<Webhooks> {
        Arc::new(Webhooks { edge: edge.into(), bus, subjects, edges, channels: Mutex::default() })
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Holding>> {
        self.channels.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A local Pusher connection subscribed `channel` of `app`.
    pub fn enter(self: &Arc<Self>, app: &Arc<App>, channel: &str) {
        if !wants_occupancy(app) {
            return;
        }
        let group = app.group(channel);
        let now = now_ms();
        let first = {
            let mut channels = self.lock();
            let holding = channels.entry(group.clone()).or_insert(Holding::Vacated { at_ms: 0 });
            match holding {
                Holding::Since { subscribers, .. } => {
                    *subscribers += 1;
                    false
                }
                Holding::Vacated { .. } => {
                    *holding = Holding::Since { subscribers: 1, since_ms: now };
                    true
                }
            }
        };
        if first && app.wants_webhook(WebhookKind::ChannelOccupied) {
            tokio::spawn(self.clone().decide_occupied(app.clone(), channel.to_owned(), group, now));
        }
    }

    /// A local Pusher connection left `channel` of `app`.
    pub fn exit(self: &Arc<Self>, app: &Arc<App>, channel: &str) {
        if !wants_occupancy(app) {
            return;
        }
        let group = app.group(channel);
        let now = now_ms();
        let last = {
            let mut channels = self.lock();
            match channels.get_mut(&group) {
                Some(holding @ Holding::Since { subscribers: 1, .. }) => {
                    *holding = Holding::Vacated { at_ms: now };
                    true
                }
                Some(Holding::Since { subscribers, .. }) => {
                    *subscribers -= 1;
                    false
                }
                _ => false,
            }
        };
        if last && app.wants_webhook(WebhookKind::ChannelVacated) {
            tokio::spawn(self.clone().decide_vacated(app.clone(), channel.to_owned(), group, now));
        }
    }

    /// What this edge says of `group` when asked: since when it holds it,
    /// or when it lately left it.
    pub fn holding(&self, count: &mut ChannelCount) {
        match self.lock().get(&count.group) {
            Some(Holding::Since { since_ms, .. }) => count.since_ms = Some(*since_ms),
            Some(Holding::Vacated { at_ms }) => count.vacated_ms = Some(*at_ms),
            None => {}
        }
    }

    /// Whether this edge knows anything of `group` to say.
    pub fn knows(&self, group: &str) -> bool {
        self.lock().contains_key(group)
    }

    async fn decide_occupied(self: Arc<Self>, app: Arc<App>, channel: String, group: String, since_ms: u64) {
        let others = self.ask_others(&group).await;
        if occupied_it(&self.edge, since_ms, &others) {
            self.send(&app, json!({"name": "channel_occupied", "channel": channel})).await;
        }
    }

    async fn decide_vacated(self: Arc<Self>, app: Arc<App>, channel: String, group: String, at_ms: u64) {
        let others = self.ask_others(&group).await;
        // Held here again meanwhile: not vacated.
        if matches!(self.lock().get(&group), Some(Holding::Since { .. })) {
            return;
        }
        if others.iter().any(|(_, count)| count.since_ms.is_some()) {
            return;
        }
        let mine = (at_ms, &*self.edge);
        let last = others.iter().all(|(edge, count)| count.vacated_ms.is_none_or(|at| (at, edge.as_str()) < mine));
        if last {
            self.send(&app, json!({"name": "channel_vacated", "channel": channel})).await;
        }
    }

    /// Every other live edge's answer about `group`.
    async fn ask_others(&self, group: &str) -> Vec<(String, ChannelCount)> {
        let query = ChannelQuery::Channel { group: group.to_owned() };
        let answers: Vec<EdgeChannels> = match self.edges.ask(self.subjects.pusher_query(), &query).await {
            Ok(answers) => answers,
            Err(e) => {
                tracing::warn!(error = %e, group, "could not ask the edges about a channel for a webhook");
                Vec::new()
            }
        };
        let others = answers.into_iter().filter(|answer| *answer.edge != *self.edge);
        let counts = others.flat_map(|answer| {
            let edge = answer.edge;
            answer.channels.into_iter().filter(|count| count.group == group).map(move |count| (edge.clone(), count))
        });
        counts.collect()
    }

    /// A member joined or left `channel` everywhere, as this edge decided.
    pub async fn member(&self, app: &App, kind: WebhookKind, channel: &str, user_id: &str) {
        if app.wants_webhook(kind) {
            self.send(app, json!({"name": kind.name(), "channel": channel, "user_id": user_id})).await;
        }
    }

    async fn send(&self, app: &App, event: serde_json::Value) {
        let event = RawValue::from_string(event.to_string()).expect("JSON text is JSON");
        let event = WebhookEvent { app_id: app.id.clone(), time_ms: now_ms(), event };
        let payload = Bytes::from(serde_json::to_vec(&event).expect("a webhook event always serialises"));
        // Bounded: the presence lock may be held meanwhile.
        match tokio::time::timeout(PUBLISH_TIMEOUT, self.bus.publish(self.subjects.pusher_webhooks(), payload)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "webhook event not published"),
            Err(_) => tracing::warn!("webhook event not published: NATS is away"),
        }
    }

    /// Every heartbeat interval, forgets channels vacated long ago.
    pub async fn forget(self: Arc<Self>) {
        let mut ticks = tokio::time::interval(HEARTBEAT_INTERVAL);
        loop {
            ticks.tick().await;
            let oldest = now_ms().saturating_sub(REMEMBER_VACATED.as_millis() as u64);
            self.lock().retain(|_, holding| !matches!(holding, Holding::Vacated { at_ms } if *at_ms < oldest));
        }
    }
}

/// Whether `edge`, holding a channel since `since_ms`, is the one that
/// made it occupied, given what the other edges said: none holds it since
/// before (smaller `(since, edge)`), and none held it when `edge` came and
/// left after (an edge that vacated at or after `since_ms` overlapped it:
/// the channel was never empty in between, so it was not newly occupied).
fn occupied_it(edge: &str, since_ms: u64, others: &[(String, ChannelCount)]) -> bool {
    let mine = (since_ms, edge);
    others.iter().all(|(other, count)| {
        let held_before = count.since_ms.is_some_and(|since| (since, other.as_str()) < mine);
        let left_after = count.vacated_ms.is_some_and(|at| at >= since_ms);
        !held_before && !left_after
    })
}

fn wants_occupancy(app: &App) -> bool {
    app.wants_webhook(WebhookKind::ChannelOccupied) || app.wants_webhook(WebhookKind::ChannelVacated)
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn said(edge: &str, since_ms: Option<u64>, vacated_ms: Option<u64>) -> (String, ChannelCount) {
        (edge.to_owned(), ChannelCount { since_ms, vacated_ms, ..ChannelCount::default() })
    }

    #[test]
    fn the_edge_that_came_first_to_an_empty_channel_sends_occupied() {
        assert!(occupied_it("b", 100, &[]), "alone");
        assert!(occupied_it("b", 100, &[said("a", Some(120), None)]), "a came later");
        assert!(!occupied_it("b", 100, &[said("a", Some(90), None)]), "a holds it since before");
        assert!(
            !occupied_it("b", 100, &[said("a", Some(100), None)])
                && occupied_it("a", 100, &[said("b", Some(100), None)]),
            "a tie goes to the smaller edge id"
        );
        assert!(occupied_it("b", 100, &[said("a", None, Some(80))]), "a left before b came: it was empty");
    }

    /// Found by `tests/pusher/api.test.js` under load: an edge that held
    /// the channel when this one came, and left before this one's question
    /// reached it, answers "vacated", not "since".
    #[test]
    fn an_edge_that_held_the_channel_when_this_one_came_and_left_since_means_not_newly_occupied() {
        assert!(!occupied_it("b", 100, &[said("a", None, Some(130))]));
        assert!(!occupied_it("b", 100, &[said("a", None, Some(100))]), "left in the same millisecond");
    }
}
