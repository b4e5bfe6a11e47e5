//! What edges and routers tell each other about Pusher channels, so that
//! presence, channel queries and webhooks are right across the cluster.
//!
//! - Channel queries are scatter-gather, like Herald presence: a router (or
//!   an edge building a presence channel's member list) asks every live edge
//!   on `<prefix>.pusher.query`, and each edge answers for its own
//!   connections only, so nothing is counted twice and a dead edge's
//!   connections are never counted.
//! - Member events: an edge publishes on `<prefix>.pusher.members.<C>` when
//!   a user's first local connection joins presence channel `C` or its last
//!   one leaves. Every edge holding `C` follows them and keeps the union of
//!   every edge's members; `seq` (per edge and channel) lets it detect a
//!   missed event and ask that edge again.
//! - Webhook events: edges decide them (they see the transitions) and
//!   publish them on `<prefix>.pusher.webhooks`; routers, in one queue
//!   group, batch, sign and send them.
//!
//! Channels here are Herald group names: an app's channel `C` is the group
//! `<app's group prefix>C`.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// NATS header of a client event on a presence channel, naming the member
/// (user id) that sent it: Pusher subscribers get it as `user_id`.
pub const CLIENT_EVENT_USER_HEADER: &str = "Herald-Pusher-User";

/// What a router or an edge asks every edge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ChannelQuery {
    /// Occupied channels whose group name starts with `prefix`.
    Channels { prefix: String },
    /// One channel.
    Channel { group: String },
    /// A presence channel's members, with their info.
    Members { group: String },
}

/// One edge's answer to [`ChannelQuery::Channels`] or
/// [`ChannelQuery::Channel`]: the channels it holds Pusher subscribers of.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EdgeChannels {
    pub edge: String,
    pub channels: Vec<ChannelCount>,
}

/// One channel on one edge.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelCount {
    pub group: String,
    /// Pusher connections subscribed on this edge.
    pub subscriptions: usize,
    /// Presence channels: the distinct member user ids on this edge (a
    /// user on several edges is counted once when the answers are merged).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<String>,
    /// Since when (Unix ms) this edge's Pusher connections hold the
    /// channel, for an app that wants `channel_occupied`: the holder with
    /// the smallest `(since_ms, edge)` sends it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_ms: Option<u64>,
    /// When (Unix ms) this edge's last Pusher connection left the channel,
    /// if lately, for an app that wants `channel_vacated`: when no edge
    /// holds it, the one with the largest `(vacated_ms, edge)` sends it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vacated_ms: Option<u64>,
}

/// One edge's answer to [`ChannelQuery::Members`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EdgeMembers {
    pub edge: String,
    /// Which time this edge holds the channel (see [`MemberEvent::epoch`]).
    #[serde(default)]
    pub epoch: u64,
    /// The last member event this edge published for the channel; events
    /// with a higher `seq` come after this answer.
    pub seq: u64,
    pub members: Vec<MemberInfo>,
}

/// A presence member as edges exchange it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemberInfo {
    pub user_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_info: Option<Box<RawValue>>,
}

/// One channel across every edge: what a router answers channel queries
/// with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChannelTotals {
    /// Pusher connections subscribed, on every edge.
    pub subscriptions: usize,
    /// Presence channels: the distinct users, each once however many edges
    /// and tabs it is on.
    pub users: BTreeSet<String>,
}

/// Adds up the edges' answers to [`ChannelQuery::Channels`] or
/// [`ChannelQuery::Channel`], by group; groups nobody holds are left out.
/// A sum beyond `usize::MAX` stays there.
pub fn merge_channels(answers: impl IntoIterator<Item = EdgeChannels>) -> BTreeMap<String, ChannelTotals> {
    let mut totals: BTreeMap<String, ChannelTotals> = BTreeMap::new();
    for channel in answers.into_iter().flat_map(|answer| answer.channels) {
        if channel.subscriptions == 0 {
            continue;
        }
        let total = totals.entry(channel.group).or_default();
        // Saturating: an answer is anything published on NATS, and no count
        // it claims may overflow the sum (found writing the pusher_cluster
        // fuzz target).
        total.subscriptions = total.subscriptions.saturating_add(channel.subscriptions);
        total.users.extend(channel.users);
    }
    totals
}

/// The members of a presence channel across the edges' answers to
/// [`ChannelQuery::Members`], each user once, by user id. A user on several
/// edges keeps the info of the edge with the smallest id, so every router
/// and edge merging the same answers agrees.
pub fn merge_members(answers: impl IntoIterator<Item = EdgeMembers>) -> Vec<MemberInfo> {
    let mut answers: Vec<EdgeMembers> = answers.into_iter().collect();
    answers.sort_by(|a, b| a.edge.cmp(&b.edge));
    let mut members: BTreeMap<String, MemberInfo> = BTreeMap::new();
    for member in answers.into_iter().flat_map(|answer| answer.members) {
        members.entry(member.user_id.clone()).or_insert(member);
    }
    members.into_values().collect()
}

/// A change of one edge's members of one presence channel.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemberEvent {
    pub edge: String,
    /// Which time the edge holds the channel: it drops the channel when its
    /// last member leaves, and holding it again starts a new epoch (higher)
    /// whose `seq` starts at 1 again.
    pub epoch: u64,
    /// Per edge, channel and epoch, one more than the previous event's.
    pub seq: u64,
    pub change: MemberChange,
}

/// What changed: a user's first local connection joined, or its last left.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberChange {
    Add(MemberInfo),
    Remove { user_id: String },
}

/// An event for the app's webhook, decided by an edge and delivered by a
/// router.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WebhookEvent {
    /// The app whose webhook it is.
    pub app_id: String,
    /// When it happened, in Unix milliseconds (webhooks are batched and
    /// carry the time of their first event).
    pub time_ms: u64,
    /// Exactly as Pusher's webhook body lists it:
    /// `{"name": "channel_occupied", "channel": ...}` and so on.
    pub event: Box<RawValue>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn edge_channels(edge: &str, channels: &[(&str, usize, &[&str])]) -> EdgeChannels {
        let channels = channels
            .iter()
            .map(|(group, subscriptions, users)| ChannelCount {
                group: (*group).into(),
                subscriptions: *subscriptions,
                users: users.iter().map(|user| (*user).into()).collect(),
                since_ms: None,
                vacated_ms: None,
            })
            .collect();
        EdgeChannels { edge: edge.into(), channels }
    }

    #[test]
    fn channels_add_up_and_a_user_on_two_edges_counts_once() {
        let totals = merge_channels([
            edge_channels("e1", &[("presence-room", 2, &["1", "2"]), ("chat", 1, &[])]),
            edge_channels("e2", &[("presence-room", 3, &["1", "3"]), ("idle", 0, &[])]),
        ]);
        assert_eq!(totals.keys().collect::<Vec<_>>(), ["chat", "presence-room"]);
        let room = &totals["presence-room"];
        assert_eq!(room.subscriptions, 5);
        assert_eq!(room.users.iter().collect::<Vec<_>>(), ["1", "2", "3"]);
        assert_eq!(totals["chat"], ChannelTotals { subscriptions: 1, users: BTreeSet::new() });
        assert!(merge_channels([]).is_empty());
    }

    #[test]
    fn counts_beyond_usize_saturate_instead_of_overflowing() {
        // Found writing the pusher_cluster fuzz target: two answers whose counts
        // add up beyond usize::MAX panicked (overflow) in a debug build.
        let totals = merge_channels([
            edge_channels("e1", &[("presence-a", usize::MAX, &["1"])]),
            edge_channels("e2", &[("presence-a", 1, &["2"])]),
        ]);
        assert_eq!(totals["presence-a"].subscriptions, usize::MAX);
        assert_eq!(totals["presence-a"].users.len(), 2);
    }

    #[test]
    fn members_are_each_user_once_with_the_smallest_edges_info() {
        let member = |user: &str, info: &str| MemberInfo {
            user_id: user.into(),
            user_info: Some(RawValue::from_string(info.into()).unwrap()),
        };
        let answers = [
            EdgeMembers {
                edge: "e2".into(),
                epoch: 1,
                seq: 4,
                members: vec![member("1", r#""from e2""#), member("3", "3")],
            },
            EdgeMembers {
                edge: "e1".into(),
                epoch: 1,
                seq: 9,
                members: vec![member("2", "2"), member("1", r#""from e1""#)],
            },
        ];
        let members = merge_members(answers);
        let ids: Vec<&str> = members.iter().map(|member| member.user_id.as_str()).collect();
        assert_eq!(ids, ["1", "2", "3"]);
        assert_eq!(members[0].user_info.as_ref().unwrap().get(), r#""from e1""#);
    }

    #[test]
    fn queries_and_events_have_a_stable_json_form() {
        let query = ChannelQuery::Members { group: "presence-a".into() };
        assert_eq!(serde_json::to_value(&query).unwrap(), json!({"members": {"group": "presence-a"}}));
        let added = MemberEvent {
            edge: "e1".into(),
            epoch: 2,
            seq: 3,
            change: MemberChange::Add(MemberInfo {
                user_id: "7".into(),
                user_info: Some(RawValue::from_string(r#"{"n":1}"#.into()).unwrap()),
            }),
        };
        let text = serde_json::to_string(&added).unwrap();
        assert_eq!(text, r#"{"edge":"e1","epoch":2,"seq":3,"change":{"add":{"user_id":"7","user_info":{"n":1}}}}"#);
        let back: MemberEvent = serde_json::from_str(&text).unwrap();
        assert!(matches!(back.change, MemberChange::Add(MemberInfo { ref user_id, .. }) if user_id == "7"));
        let removed: MemberEvent =
            serde_json::from_str(r#"{"edge":"e1","epoch":2,"seq":4,"change":{"remove":{"user_id":"7"}}}"#).unwrap();
        assert!(matches!(removed.change, MemberChange::Remove { ref user_id } if user_id == "7"));
    }
}
