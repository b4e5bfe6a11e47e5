//! One presence channel's members as one edge sees them: its own, which it
//! is the authority on, and every other edge's, as their member events and
//! answers said; and which users the union gains or loses, which is what
//! local subscribers are told (`docs/adr/0011-pusher-presence-across-edges.md`).
//!
//! Pure bookkeeping: no I/O, no clock, so every ordering of events can be
//! tested on its own.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;

use herald_proto::pusher::cluster::{EdgeMembers, MemberChange, MemberEvent, MemberInfo};
use herald_proto::pusher::frame::Member;
use serde_json::value::RawValue;

/// A member's `user_info`, as its auth endpoint signed it.
type Info = Option<Box<RawValue>>;

#[derive(Debug)]
pub(super) struct ChannelView {
    /// This edge's id: its events say who sent them.
    edge: Arc<str>,
    /// Which time this edge holds the channel (see [`MemberEvent::epoch`]).
    epoch: u64,
    /// This edge's last event for the channel in this epoch.
    seq: u64,
    /// This edge's members, by user id.
    local: HashMap<String, LocalMember>,
    /// The user of each local connection subscribed.
    conns: HashMap<u64, String>,
    /// Every other edge's members, as last heard, by edge id. An edge whose
    /// members all left stays listed (with none), so an answer it sent
    /// before its last event cannot bring them back.
    remote: HashMap<String, RemoteEdge>,
    /// Every user of the union, with the number of edges (this one
    /// included) it is on: 0→1 is `member_added`, 1→0 `member_removed`.
    edges_of: HashMap<String, usize>,
}

/// A user's connections on this edge.
#[derive(Debug)]
struct LocalMember {
    conns: usize,
    /// As its first connection here signed it.
    info: Info,
}

/// Another edge's members.
#[derive(Debug)]
struct RemoteEdge {
    epoch: u64,
    /// The last of its events applied (or the one its answer was sent at).
    seq: u64,
    members: HashMap<String, Info>,
}

/// A user the union gained or lost.
#[derive(Debug)]
pub(super) enum Change {
    Added(Member),
    Removed(String),
}

/// Events of an edge were missed: its members must be asked again.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Gap;

impl ChannelView {
    pub fn new(edge: Arc<str>, epoch: u64) -> ChannelView {
        ChannelView {
            edge,
            epoch,
            seq: 0,
            local: HashMap::new(),
            conns: HashMap::new(),
            remote: HashMap::new(),
            edges_of: HashMap::new(),
        }
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Whether `user` may join with at most `max` members in the channel:
    /// a user already in it always may.
    pub fn admits(&self, user: &str, max: usize) -> bool {
        self.edges_of.contains_key(user) || self.edges_of.len() < max
    }

    /// Local connection `local` joins as `member`: the event to publish
    /// when it is the user's first connection here, and the change when
    /// the user is new to the channel.
    pub fn join(&mut self, local: u64, member: Member) -> (Option<MemberEvent>, Option<Change>) {
        if self.conns.contains_key(&local) {
            return (None, None);
        }
        self.conns.insert(local, member.user_id.clone());
        match self.local.entry(member.user_id.clone()) {
            Entry::Occupied(mut here) => {
                here.get_mut().conns += 1;
                (None, None)
            }
            Entry::Vacant(first) => {
                first.insert(LocalMember { conns: 1, info: member.user_info.clone() });
                let info = MemberInfo { user_id: member.user_id.clone(), user_info: member.user_info.clone() };
                (Some(self.next_event(MemberChange::Add(info))), self.gained(member))
            }
        }
    }

    /// Local connection `local` leaves: the event to publish when it was
    /// the user's last connection here, and the change when the user has
    /// left the channel everywhere.
    pub fn leave(&mut self, local: u64) -> (Option<MemberEvent>, Option<Change>) {
        let Some(user) = self.conns.remove(&local) else { return (None, None) };
        let Entry::Occupied(mut here) = self.local.entry(user) else { return (None, None) };
        here.get_mut().conns -= 1;
        if here.get().conns > 0 {
            return (None, None);
        }
        let (user, _) = here.remove_entry();
        let change = self.lost(&user);
        (Some(self.next_event(MemberChange::Remove { user_id: user })), change)
    }

    fn next_event(&mut self, change: MemberChange) -> MemberEvent {
        self.seq += 1;
        MemberEvent { edge: self.edge.to_string(), epoch: self.epoch, seq: self.seq, change }
    }

    /// Applies another edge's event, in order; events already covered are
    /// left out, and missed ones are a [`Gap`].
    pub fn apply(&mut self, event: MemberEvent) -> Result<Vec<Change>, Gap> {
        let known = self.remote.get(&event.edge).map(|edge| (edge.epoch, edge.seq));
        let next = match known {
            Some(known) if (event.epoch, event.seq) <= known => return Ok(Vec::new()),
            Some((epoch, seq)) => event.epoch == epoch && event.seq == seq + 1,
            None => false,
        };
        let mut changes = Vec::new();
        if !next {
            // Only the first event of a new epoch can be applied without
            // knowing what came before: the edge held no members then.
            if event.seq != 1 {
                return Err(Gap);
            }
            changes = self.replace(&event.edge, event.epoch, 0, HashMap::new());
        }
        let edge = self.remote.get_mut(&event.edge).expect("replaced or known");
        edge.seq = event.seq;
        let change = match event.change {
            MemberChange::Add(member) => match edge.members.insert(member.user_id.clone(), member.user_info.clone()) {
                None => self.gained(Member { user_id: member.user_id, user_info: member.user_info }),
                Some(_) => None,
            },
            MemberChange::Remove { user_id } => match edge.members.remove(&user_id) {
                Some(_) => self.lost(&user_id),
                None => None,
            },
        };
        changes.extend(change);
        Ok(changes)
    }

    /// Applies an edge's answer about its members, unless what is known of
    /// it already is as recent.
    pub fn apply_answer(&mut self, answer: EdgeMembers) -> Vec<Change> {
        if *answer.edge == *self.edge {
            return Vec::new();
        }
        let known = self.remote.get(&answer.edge).map(|edge| (edge.epoch, edge.seq));
        if known.is_some_and(|known| known >= (answer.epoch, answer.seq)) {
            return Vec::new();
        }
        let members = answer.members.into_iter().map(|member| (member.user_id, member.user_info)).collect();
        self.replace(&answer.edge, answer.epoch, answer.seq, members)
    }

    /// Forgets an edge that is gone, and its members.
    pub fn drop_edge(&mut self, edge: &str) -> Vec<Change> {
        let changes = self.replace(edge, 0, 0, HashMap::new());
        self.remote.remove(edge);
        changes
    }

    /// The other edges heard of.
    pub fn remote_edges(&self) -> impl Iterator<Item = &str> {
        self.remote.keys().map(String::as_str)
    }

    fn replace(&mut self, edge: &str, epoch: u64, seq: u64, members: HashMap<String, Info>) -> Vec<Change> {
        let old = self.remote.insert(edge.to_owned(), RemoteEdge { epoch, seq, members: HashMap::new() });
        let old = old.map(|edge| edge.members).unwrap_or_default();
        let left: Vec<String> = old.keys().filter(|user| !members.contains_key(*user)).cloned().collect();
        let mut changes: Vec<Change> = left.iter().filter_map(|user| self.lost(user)).collect();
        for (user, info) in &members {
            if !old.contains_key(user) {
                changes.extend(self.gained(Member { user_id: user.clone(), user_info: info.clone() }));
            }
        }
        self.remote.get_mut(edge).expect("just inserted").members = members;
        changes
    }

    fn gained(&mut self, member: Member) -> Option<Change> {
        let edges = self.edges_of.entry(member.user_id.clone()).or_default();
        *edges += 1;
        (*edges == 1).then_some(Change::Added(member))
    }

    fn lost(&mut self, user: &str) -> Option<Change> {
        let edges = self.edges_of.get_mut(user)?;
        *edges -= 1;
        if *edges > 0 {
            return None;
        }
        self.edges_of.remove(user);
        Some(Change::Removed(user.to_owned()))
    }

    /// Every member of the channel on every edge, each user once, with the
    /// info this edge has for it, else the smallest edge's.
    pub fn members(&self) -> Vec<Member> {
        let mut members: Vec<Member> =
            self.edges_of.keys().map(|user| Member { user_id: user.clone(), user_info: self.info_of(user) }).collect();
        members.sort_unstable_by(|a, b| a.user_id.cmp(&b.user_id));
        members
    }

    fn info_of(&self, user: &str) -> Info {
        if let Some(member) = self.local.get(user) {
            return member.info.clone();
        }
        let holders = self.remote.iter().filter_map(|(edge, held)| Some((edge, held.members.get(user)?)));
        holders.min_by(|a, b| a.0.cmp(b.0)).and_then(|(_, info)| info.clone())
    }

    /// This edge's answer about its own members.
    pub fn answer(&self) -> EdgeMembers {
        let members = self
            .local
            .iter()
            .map(|(user, member)| MemberInfo { user_id: user.clone(), user_info: member.info.clone() })
            .collect();
        EdgeMembers { edge: self.edge.to_string(), epoch: self.epoch, seq: self.seq, members }
    }

    /// This edge's members' user ids.
    pub fn local_users(&self) -> impl Iterator<Item = &String> {
        self.local.keys()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(user: &str) -> Member {
        Member {
            user_id: user.into(),
            user_info: Some(RawValue::from_string(format!(r#"{{"name":"{user}"}}"#)).unwrap()),
        }
    }

    fn event(edge: &str, epoch: u64, seq: u64, add: Option<&str>, remove: Option<&str>) -> MemberEvent {
        let change = match (add, remove) {
            (Some(user), _) => MemberChange::Add(MemberInfo { user_id: user.into(), user_info: None }),
            (_, Some(user)) => MemberChange::Remove { user_id: user.into() },
            _ => unreachable!(),
        };
        MemberEvent { edge: edge.into(), epoch, seq, change }
    }

    fn ids(view: &ChannelView) -> Vec<String> {
        view.members().into_iter().map(|m| m.user_id).collect()
    }

    fn added(changes: impl IntoIterator<Item = Change>) -> Option<String> {
        changes.into_iter().find_map(|change| match change {
            Change::Added(member) => Some(member.user_id),
            Change::Removed(_) => None,
        })
    }

    fn removed(changes: impl IntoIterator<Item = Change>) -> Option<String> {
        changes.into_iter().find_map(|change| match change {
            Change::Removed(user) => Some(user),
            Change::Added(_) => None,
        })
    }

    #[test]
    fn a_users_tabs_here_make_one_event_and_one_change() {
        let mut view = ChannelView::new("me".into(), 1);
        let (event, change) = view.join(1, member("u"));
        assert_eq!(event.map(|e| (e.epoch, e.seq)), Some((1, 1)));
        assert_eq!(added(change).as_deref(), Some("u"));
        assert!(matches!(view.join(2, member("u")), (None, None)), "a second tab");
        assert!(matches!(view.join(2, member("u")), (None, None)), "the same connection again");
        assert!(matches!(view.leave(1), (None, None)));
        let (event, change) = view.leave(2);
        assert!(matches!(event, Some(MemberEvent { seq: 2, change: MemberChange::Remove { .. }, .. })));
        assert_eq!(removed(change).as_deref(), Some("u"));
        assert!(matches!(view.leave(2), (None, None)));
    }

    #[test]
    fn a_user_on_two_edges_is_added_once_and_removed_when_the_last_edge_loses_it() {
        let mut view = ChannelView::new("me".into(), 1);
        assert_eq!(added(view.apply(event("e2", 5, 1, Some("u"), None)).unwrap()).as_deref(), Some("u"));
        assert!(view.join(1, member("u")).1.is_none(), "already in the channel through e2");
        assert_eq!(ids(&view), ["u"]);
        assert_eq!(view.members()[0].user_info.as_ref().unwrap().get(), r#"{"name":"u"}"#, "this edge's info");
        assert!(view.apply(event("e2", 5, 2, None, Some("u"))).unwrap().is_empty(), "still here");
        assert_eq!(removed(view.leave(1).1).as_deref(), Some("u"));
        assert!(ids(&view).is_empty());
    }

    #[test]
    fn events_out_of_order_are_gaps_and_old_ones_are_left_out() {
        let mut view = ChannelView::new("me".into(), 1);
        assert_eq!(view.apply(event("e2", 1, 2, Some("a"), None)).unwrap_err(), Gap, "seq 1 was missed");
        view.apply(event("e2", 1, 1, Some("a"), None)).unwrap();
        assert!(view.apply(event("e2", 1, 1, Some("a"), None)).unwrap().is_empty(), "seen");
        assert_eq!(view.apply(event("e2", 1, 3, Some("b"), None)).unwrap_err(), Gap);
        // An answer covers the gap; the event it covers is then old.
        let answer = EdgeMembers {
            edge: "e2".into(),
            epoch: 1,
            seq: 3,
            members: vec![MemberInfo { user_id: "b".into(), user_info: None }],
        };
        let changes = view.apply_answer(answer);
        assert_eq!(changes.len(), 2, "a left, b came");
        assert!(view.apply(event("e2", 1, 3, Some("b"), None)).unwrap().is_empty());
        assert_eq!(ids(&view), ["b"]);
    }

    #[test]
    fn an_answer_older_than_the_events_heard_changes_nothing() {
        let mut view = ChannelView::new("me".into(), 1);
        view.apply(event("e2", 1, 1, Some("a"), None)).unwrap();
        view.apply(event("e2", 1, 2, None, Some("a"))).unwrap();
        let stale = EdgeMembers {
            edge: "e2".into(),
            epoch: 1,
            seq: 1,
            members: vec![MemberInfo { user_id: "a".into(), user_info: None }],
        };
        assert!(view.apply_answer(stale).is_empty(), "a must not come back");
        assert!(ids(&view).is_empty());
    }

    #[test]
    fn a_new_epoch_starts_over_and_an_old_one_is_left_out() {
        let mut view = ChannelView::new("me".into(), 1);
        view.apply(event("e2", 1, 1, Some("a"), None)).unwrap();
        // e2 dropped the channel (its remove of a was missed) and holds it
        // again: its new epoch starts with no members.
        let changes = view.apply(event("e2", 2, 1, Some("b"), None)).unwrap();
        assert_eq!(changes.len(), 2);
        assert_eq!(removed(changes).as_deref(), Some("a"));
        assert_eq!(ids(&view), ["b"]);
        assert!(view.apply(event("e2", 1, 2, Some("c"), None)).unwrap().is_empty(), "from the old epoch");
        assert_eq!(view.apply(event("e2", 3, 2, Some("c"), None)).unwrap_err(), Gap);
    }

    #[test]
    fn a_gone_edges_members_leave_unless_another_edge_has_them() {
        let mut view = ChannelView::new("me".into(), 1);
        view.apply(event("e2", 1, 1, Some("a"), None)).unwrap();
        view.apply(event("e2", 1, 2, Some("b"), None)).unwrap();
        view.apply(event("e3", 1, 1, Some("b"), None)).unwrap();
        view.join(9, member("a"));
        assert!(view.drop_edge("e2").is_empty(), "a is here, b on e3");
        let gone = view.drop_edge("e3");
        assert_eq!(gone.len(), 1);
        assert_eq!(removed(gone).as_deref(), Some("b"));
        assert_eq!(view.remote_edges().count(), 0);
        assert_eq!(ids(&view), ["a"]);
    }

    #[test]
    fn the_limit_counts_users_not_tabs() {
        let mut view = ChannelView::new("me".into(), 1);
        view.join(1, member("a"));
        view.apply(event("e2", 1, 1, Some("b"), None)).unwrap();
        assert!(view.admits("a", 2) && view.admits("b", 2), "already members");
        assert!(!view.admits("c", 2));
        let answer = view.answer();
        assert_eq!((answer.epoch, answer.seq, answer.members.len()), (1, 1, 1));
    }
}
