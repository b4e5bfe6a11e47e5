//! What edges and routers tell each other about Pusher channels over NATS
//! (`herald_proto::pusher::cluster`), which anything that can publish there
//! may send: the input's first byte picks what the rest is read as.
//!
//! - 0: a channel query (what every edge reads); 1: the edges' answers to
//!   a channels query, as a JSON array; 2: their answers to a members
//!   query; 3: a member event (what every edge holding the channel reads);
//!   4: a webhook event (what routers read and send on).
//! - Reading never panics; what is not a message is an error value.
//! - Encode → decode: a message read encodes, reads back, and encodes to
//!   the same bytes.
//! - Merging answers keeps its promises, whatever the edges say: a channel
//!   is there only with subscriptions, counts its subscriptions across the
//!   edges (saturating, never overflowing) and each user once; members are
//!   each user once, every user any edge names, with the info of the edge
//!   with the smallest id.

use std::collections::{BTreeMap, BTreeSet};

use herald_proto::json::from_object;
use herald_proto::pusher::cluster::{
    ChannelQuery, EdgeChannels, EdgeMembers, MemberEvent, WebhookEvent, merge_channels, merge_members,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub fn run(data: &[u8]) {
    let Some((&kind, rest)) = data.split_first() else { return };
    match kind % 5 {
        0 => {
            if let Some(query) = round_trip::<ChannelQuery>(rest) {
                let encoded = serde_json::to_vec(&query).expect("a query encodes");
                assert_eq!(from_object::<ChannelQuery>(&encoded).ok(), Some(query));
            }
        }
        1 => {
            if let Some(answers) = round_trip::<Vec<EdgeChannels>>(rest) {
                channels(answers);
            }
        }
        2 => {
            if let Some(answers) = round_trip::<Vec<EdgeMembers>>(rest) {
                members(answers);
            }
        }
        3 => {
            round_trip::<MemberEvent>(rest);
        }
        _ => {
            round_trip::<WebhookEvent>(rest);
        }
    }
}

/// Reads `data` as a `T`; what reads encodes, reads back and encodes to the
/// same bytes.
fn round_trip<T: Serialize + DeserializeOwned>(data: &[u8]) -> Option<T> {
    let read: T = serde_json::from_slice(data).ok()?;
    let encoded = serde_json::to_vec(&read).expect("a message encodes");
    let back: T = serde_json::from_slice(&encoded).expect("an encoded message reads back");
    assert_eq!(serde_json::to_vec(&back).unwrap(), encoded, "{}", String::from_utf8_lossy(&encoded));
    Some(read)
}

fn channels(answers: Vec<EdgeChannels>) {
    let mut expected: BTreeMap<String, (u128, BTreeSet<String>)> = BTreeMap::new();
    for count in answers.iter().flat_map(|answer| &answer.channels).filter(|count| count.subscriptions > 0) {
        let (subscriptions, users) = expected.entry(count.group.clone()).or_default();
        *subscriptions += count.subscriptions as u128;
        users.extend(count.users.iter().cloned());
    }
    let totals = merge_channels(answers);
    assert_eq!(totals.keys().collect::<Vec<_>>(), expected.keys().collect::<Vec<_>>());
    for (group, (subscriptions, users)) in expected {
        let total = &totals[&group];
        assert_eq!(total.subscriptions as u128, subscriptions.min(usize::MAX as u128), "{group:?}");
        assert_eq!(total.users, users, "{group:?}");
    }
}

fn members(answers: Vec<EdgeMembers>) {
    let mut expected: BTreeMap<&str, (&str, Option<&str>)> = BTreeMap::new();
    for answer in &answers {
        for member in &answer.members {
            let info = member.user_info.as_deref().map(|info| info.get());
            let first = expected.entry(&member.user_id).or_insert((&answer.edge, info));
            if answer.edge.as_str() < first.0 {
                *first = (&answer.edge, info);
            }
        }
    }
    let merged = merge_members(answers.clone());
    let ids: Vec<&str> = merged.iter().map(|member| member.user_id.as_str()).collect();
    assert_eq!(ids, expected.keys().copied().collect::<Vec<_>>(), "each user once, in order");
    for member in &merged {
        let info = member.user_info.as_deref().map(|info| info.get());
        assert_eq!(info, expected[member.user_id.as_str()].1, "{:?}: the smallest edge's info", member.user_id);
    }
}
