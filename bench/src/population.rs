//! Who the connections of a run are: each connection's user, groups and
//! edge, and which published messages it must receive.
//!
//! Connections are numbered 0..N across all worker processes; everything
//! about connection `i` follows from `i` alone, so a worker needs only its
//! range of numbers to open its share, and the parent never has to ship a
//! list of identities.
//!
//! Published messages are numbered too (`seq`). A connection's "slots" are
//! the messages meant for it, numbered densely from 0, so a worker checks
//! exactly-once delivery with one bit per expected message.

use serde::{Deserialize, Serialize};

/// How connection numbers map to identities and expected messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Population {
    /// Connection `i` is user `user-<i>` in `groups`, on edge `i mod edges`,
    /// and must receive every message.
    Distinct { groups: Vec<String> },
    /// `users` users with `tabs` connections each: connection `i` is tab
    /// `i mod tabs` of user `user-<i / tabs>`, on edge `tab mod edges`, so a
    /// user with at least as many tabs as there are edges is on every edge.
    /// Message `seq` is for user `seq mod users` only.
    Tabs { users: u64, tabs: u64 },
}

impl Population {
    /// The user id connection `conn` authenticates as.
    pub fn user(&self, conn: u64) -> String {
        format!("user-{}", self.user_index(conn))
    }

    /// The groups connection `conn` joins at connect (the `groups` claim).
    pub fn groups(&self) -> &[String] {
        match self {
            Population::Distinct { groups } => groups,
            Population::Tabs { .. } => &[],
        }
    }

    /// Which of `edges` URLs connection `conn` connects to.
    pub fn edge(&self, conn: u64, edges: usize) -> usize {
        let spread = match self {
            Population::Distinct { .. } => conn,
            Population::Tabs { tabs, .. } => conn % tabs,
        };
        // `edges` is a count of URLs, far below u64::MAX; the result is below it.
        (spread % edges as u64) as usize
    }

    /// Where message `seq` sits among the messages connection `conn` must
    /// receive, or `None` when it is not meant for `conn` at all.
    pub fn slot(&self, conn: u64, seq: u64) -> Option<u64> {
        match self {
            Population::Distinct { .. } => Some(seq),
            Population::Tabs { users, .. } => (seq % users == self.user_index(conn)).then_some(seq / users),
        }
    }

    /// How many of messages `0..published` connection `conn` must receive.
    pub fn expected(&self, conn: u64, published: u64) -> u64 {
        match self {
            Population::Distinct { .. } => published,
            // The seqs `u, u + users, u + 2 users, ...` below `published`.
            Population::Tabs { users, .. } => (published + users - 1 - self.user_index(conn)) / users,
        }
    }

    fn user_index(&self, conn: u64) -> u64 {
        match self {
            Population::Distinct { .. } => conn,
            Population::Tabs { tabs, .. } => conn / tabs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABS: Population = Population::Tabs { users: 3, tabs: 2 };

    #[test]
    fn distinct_connections_are_distinct_users_spread_round_robin() {
        let p = Population::Distinct { groups: vec!["bench".into()] };
        assert_eq!(p.user(7), "user-7");
        assert_eq!(p.groups(), ["bench"]);
        let edges: Vec<usize> = (0..5).map(|i| p.edge(i, 2)).collect();
        assert_eq!(edges, [0, 1, 0, 1, 0]);
        assert_eq!(p.slot(7, 41), Some(41));
        assert_eq!(p.expected(7, 41), 41);
    }

    #[test]
    fn tabs_of_a_user_are_spread_over_the_edges() {
        let users: Vec<String> = (0..6).map(|i| TABS.user(i)).collect();
        assert_eq!(users, ["user-0", "user-0", "user-1", "user-1", "user-2", "user-2"]);
        let edges: Vec<usize> = (0..6).map(|i| TABS.edge(i, 2)).collect();
        assert_eq!(edges, [0, 1, 0, 1, 0, 1]);
        assert!(TABS.groups().is_empty());
    }

    #[test]
    fn a_tab_expects_exactly_its_users_messages() {
        for conn in 0..6 {
            for published in 0..20 {
                let slots: Vec<u64> = (0..published).filter_map(|seq| TABS.slot(conn, seq)).collect();
                let dense: Vec<u64> = (0..slots.len() as u64).collect();
                assert_eq!(slots, dense, "conn {conn} published {published}");
                assert_eq!(TABS.expected(conn, published), slots.len() as u64);
            }
        }
        assert_eq!(TABS.slot(2, 4), Some(1));
        assert_eq!(TABS.slot(2, 5), None);
    }
}
