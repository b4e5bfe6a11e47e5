//! Missed-message recovery's settings (ADR 0012): which subjects keep a
//! history on NATS JetStream, how much of it, and how hard a reconnect
//! storm may read it. Read by `herald edge`; off by default, and then
//! nothing changes.

use std::time::Duration;

use crate::setting::settings;
use crate::value::{comma_list, millis, whole};

settings! {
    /// Missed-message recovery on NATS JetStream (off unless HISTORY is set).
    RECOVERY;
    /// Subjects that keep a history, so reconnecting clients get what they
    /// missed: off, or users, groups, all (comma-separated). Needs NATS with
    /// JetStream 2.11 or later.
    HISTORY: HistoryKinds = new("KINDS", "off", kinds);
    /// Messages kept per subject: a client that missed more is told
    /// recovered: false.
    HISTORY_DEPTH: u32 = new("N", "100", whole::<u32, 1>);
    /// How long a message is kept for recovery.
    HISTORY_MAX_AGE_MS: Duration = new("MS", "300000", millis::<1000>);
    /// JetStream stream that keeps the history (the edges create it).
    HISTORY_STREAM: String = new("NAME", "HERALD_HISTORY", stream_name);
    /// Replicas of the history stream (1 on a single server, 3 on a cluster).
    HISTORY_REPLICAS: u32 = new("N", "1", whole::<u32, 1>);
    /// History reads one edge makes at once, however many clients resume.
    HISTORY_MAX_READS: usize = new("N", "32", whole::<usize, 1>);
}

/// Which kinds of subjects keep a history.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HistoryKinds {
    /// `herald.user.<U>`.
    pub users: bool,
    /// `herald.group.<G>`.
    pub groups: bool,
    /// `herald.all`: broadcasts to everyone.
    pub all: bool,
}

impl HistoryKinds {
    /// Whether any subject keeps a history.
    pub fn any(&self) -> bool {
        self.users || self.groups || self.all
    }
}

/// `off`, or a comma list of `users`, `groups` and `all`.
fn kinds(value: &str) -> Result<HistoryKinds, String> {
    let mut kinds = HistoryKinds::default();
    for kind in comma_list(value) {
        match kind.as_str() {
            "off" => {}
            "users" => kinds.users = true,
            "groups" => kinds.groups = true,
            "all" => kinds.all = true,
            other => {
                return Err(format!(
                    "{other:?} is not a kind of subject with history: expected off, users, groups, all"
                ));
            }
        }
    }
    Ok(kinds)
}

/// A JetStream stream name: no spaces, dots, wildcards or path separators.
fn stream_name(value: &str) -> Result<String, String> {
    let valid = !value.is_empty() && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if valid { Ok(value.to_owned()) } else { Err(format!("{value:?} is not a stream name: use A-Z a-z 0-9 _ -")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_off_or_a_list() {
        assert_eq!(kinds("off"), Ok(HistoryKinds::default()));
        assert_eq!(kinds(" users , groups "), Ok(HistoryKinds { users: true, groups: true, all: false }));
        assert_eq!(kinds("groups"), Ok(HistoryKinds { groups: true, ..HistoryKinds::default() }));
        assert_eq!(kinds("all"), Ok(HistoryKinds { all: true, ..HistoryKinds::default() }));
        assert!(kinds("users,conns").unwrap_err().starts_with(r#""conns" is not a kind"#));
        assert!(!HistoryKinds::default().any());
    }

    #[test]
    fn stream_names_are_plain() {
        assert_eq!(stream_name("HERALD_HISTORY-2"), Ok("HERALD_HISTORY-2".to_owned()));
        assert!(stream_name("a.b").is_err());
        assert!(stream_name("").is_err());
        assert!(stream_name("a b").is_err());
    }
}
