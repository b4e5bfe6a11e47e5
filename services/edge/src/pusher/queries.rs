//! The edge's answers to channel queries on `<prefix>.pusher.query`, asked
//! by routers (the Pusher API's `channels`, `channels/<c>`,
//! `channels/<c>/users`, a trigger's `info`) and by edges (a presence
//! channel's members): each edge answers for its own connections only.
//!
//! A channel's subscriptions are every local connection in its group,
//! Pusher's and Herald's alike, since a channel is the group.

use std::sync::Arc;

use herald_bus::{Bus, Subscription};
use herald_proto::pusher::cluster::{ChannelCount, ChannelQuery, EdgeChannels, EdgeMembers};
use serde::Serialize;

use super::presence::Presence;
use super::webhooks::Webhooks;
use crate::presence::answer_each;
use crate::registry::Registry;

/// Answers channel queries until the subscription ends.
pub(crate) async fn answer(
    registry: Arc<Registry>,
    presence: Arc<Presence>,
    webhooks: Arc<Webhooks>,
    bus: Bus,
    queries: Subscription,
) {
    answer_each(bus, queries, "channel", move |query: ChannelQuery| {
        let (registry, presence, webhooks) = (registry.clone(), presence.clone(), webhooks.clone());
        async move { Answer::to(query, &registry, &presence, &webhooks).await }
    })
    .await;
}

/// An answer to a channel query.
#[derive(Serialize)]
#[serde(untagged)]
enum Answer {
    Channels(EdgeChannels),
    Members(EdgeMembers),
}

impl Answer {
    async fn to(query: ChannelQuery, registry: &Registry, presence: &Presence, webhooks: &Webhooks) -> Answer {
        match query {
            ChannelQuery::Members { group } => Answer::Members(presence.answer(&group).await),
            ChannelQuery::Channels { prefix } => {
                Answer::Channels(channels(registry, presence, |group| group.starts_with(&prefix)).await)
            }
            ChannelQuery::Channel { group } => {
                let mut answer = channels(registry, presence, |held| held == group).await;
                if answer.channels.is_empty() && webhooks.knows(&group) {
                    answer.channels.push(ChannelCount { group, ..ChannelCount::default() });
                }
                answer.channels.iter_mut().for_each(|count| webhooks.holding(count));
                Answer::Channels(answer)
            }
        }
    }
}

/// The groups held here that `wanted` keeps, with their presence members.
async fn channels(registry: &Registry, presence: &Presence, wanted: impl Fn(&str) -> bool) -> EdgeChannels {
    let mut users = presence.local_users().await;
    let channels = registry
        .group_sizes(wanted)
        .into_iter()
        .map(|(group, subscriptions)| {
            let users = users.remove(group.as_str()).unwrap_or_default();
            ChannelCount { group, subscriptions, users, ..ChannelCount::default() }
        })
        .collect();
    EdgeChannels { edge: registry.edge_id().to_owned(), channels }
}
