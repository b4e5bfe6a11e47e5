//! Channel queries: every live edge is asked on `<prefix>.pusher.query`
//! (through the handler SDK's [`Edges`], as Herald presence asks) and the
//! answers are merged, so a connection counts once, on the edge that holds
//! it, and a user on two edges counts once.

use herald_bus::BusError;
use herald_handler::edges::Edges;
use herald_proto::pusher::cluster::{
    ChannelQuery, ChannelTotals, EdgeChannels, EdgeMembers, MemberInfo, merge_channels, merge_members,
};
use herald_proto::subject::Subjects;
use std::collections::BTreeMap;

/// Asks the edges about Pusher channels (Herald groups).
#[derive(Debug)]
pub(crate) struct ChannelQueries {
    edges: Edges,
    /// `<prefix>.pusher.query`.
    subject: String,
}

impl ChannelQueries {
    pub fn new(edges: Edges, subjects: &Subjects) -> ChannelQueries {
        ChannelQueries { edges, subject: subjects.pusher_query() }
    }

    /// Occupied groups whose name starts with `prefix`.
    pub async fn channels(&self, prefix: String) -> Result<BTreeMap<String, ChannelTotals>, BusError> {
        let answers: Vec<EdgeChannels> =
            self.edges.ask(self.subject.clone(), &ChannelQuery::Channels { prefix }).await?;
        Ok(merge_channels(answers))
    }

    /// One group; empty when nobody holds it.
    pub async fn channel(&self, group: String) -> Result<ChannelTotals, BusError> {
        let query = ChannelQuery::Channel { group: group.clone() };
        let answers: Vec<EdgeChannels> = self.edges.ask(self.subject.clone(), &query).await?;
        Ok(merge_channels(answers).remove(&group).unwrap_or_default())
    }

    /// The members of the presence channel that is `group`, each user once.
    pub async fn members(&self, group: String) -> Result<Vec<MemberInfo>, BusError> {
        let answers: Vec<EdgeMembers> = self.edges.ask(self.subject.clone(), &ChannelQuery::Members { group }).await?;
        Ok(merge_members(answers))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;
    use futures_util::StreamExt;
    use herald_bus::Bus;
    use herald_proto::presence::Heartbeat;
    use herald_proto::pusher::cluster::ChannelCount;
    use serde_json::value::RawValue;

    use super::*;

    /// Answers channel queries as an edge holding `channels` and `members`
    /// would, on the in-process bus, and beats for it.
    async fn edge(
        bus: &Bus,
        subjects: &Subjects,
        id: &'static str,
        channels: Vec<ChannelCount>,
        members: &'static [&'static str],
    ) {
        let mut questions = bus.subscribe(subjects.pusher_query()).await.unwrap();
        let answering = bus.clone();
        tokio::spawn(async move {
            while let Some(question) = questions.next().await {
                let reply = question.reply().unwrap().to_owned();
                let answer = match serde_json::from_slice::<ChannelQuery>(&question.payload).unwrap() {
                    ChannelQuery::Channels { prefix } => {
                        let held = channels.iter().filter(|c| c.group.starts_with(&prefix)).cloned().collect();
                        serde_json::to_vec(&EdgeChannels { edge: id.into(), channels: held })
                    }
                    ChannelQuery::Channel { group } => {
                        let held = channels.iter().filter(|c| c.group == group).cloned().collect();
                        serde_json::to_vec(&EdgeChannels { edge: id.into(), channels: held })
                    }
                    ChannelQuery::Members { .. } => {
                        let members = members
                            .iter()
                            .map(|user| MemberInfo {
                                user_id: (*user).into(),
                                user_info: Some(RawValue::from_string(format!(r#"{{"on":"{id}"}}"#)).unwrap()),
                            })
                            .collect();
                        serde_json::to_vec(&EdgeMembers { edge: id.into(), epoch: 1, seq: 1, members })
                    }
                };
                answering.publish(reply, Bytes::from(answer.unwrap())).await.unwrap();
            }
        });
        let beat = Heartbeat { edge: id.into(), interval_ms: 60_000, leaving: false };
        bus.publish(subjects.edge_heartbeat(), serde_json::to_vec(&beat).unwrap().into()).await.unwrap();
    }

    fn count(group: &str, subscriptions: usize, users: &[&str]) -> ChannelCount {
        let users = users.iter().map(|u| (*u).into()).collect();
        ChannelCount { group: group.into(), subscriptions, users, since_ms: None, vacated_ms: None }
    }

    #[tokio::test]
    async fn answers_are_merged_across_edges_without_waiting_for_the_timeout() {
        let bus = Bus::local();
        let subjects = Subjects::default();
        // A timeout no test waits for: every live edge answers first.
        let edges = Edges::start(bus.clone(), &subjects, Duration::from_secs(60)).await.unwrap();
        let queries = ChannelQueries::new(edges.clone(), &subjects);
        edge(&bus, &subjects, "e1", vec![count("presence-room", 2, &["1", "2"]), count("chat", 1, &[])], &["1", "2"])
            .await;
        edge(&bus, &subjects, "e2", vec![count("presence-room", 1, &["2"]), count("app2:chat", 4, &[])], &["2", "3"])
            .await;
        tokio::time::timeout(Duration::from_secs(5), async {
            while edges.live() < 2 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .unwrap();

        let all = queries.channels(String::new()).await.unwrap();
        assert_eq!(all.keys().collect::<Vec<_>>(), ["app2:chat", "chat", "presence-room"]);
        let presence = queries.channels("presence-".into()).await.unwrap();
        assert_eq!(presence.len(), 1);
        assert_eq!(presence["presence-room"].subscriptions, 3);
        assert_eq!(presence["presence-room"].users.len(), 2, "user 2 is on both edges and counts once");

        assert_eq!(queries.channel("app2:chat".into()).await.unwrap().subscriptions, 4);
        assert_eq!(queries.channel("nobody".into()).await.unwrap(), ChannelTotals::default());

        let members = queries.members("presence-room".into()).await.unwrap();
        let ids: Vec<&str> = members.iter().map(|m| m.user_id.as_str()).collect();
        assert_eq!(ids, ["1", "2", "3"]);
        assert_eq!(members[1].user_info.as_ref().unwrap().get(), r#"{"on":"e1"}"#, "the smallest edge's info");
    }
}
