//! Connection ids: `<edge>.<n>`, the id of the edge that holds the
//! connection and a number local to that edge.
//!
//! Because the edge is part of the id, `<prefix>.conn.<edge>.*` is one
//! wildcard subscription per edge that covers every connection it holds, and
//! a message for one connection costs no per-connection subscription.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// The id of one connection, as given to the client in `$connected`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConnId {
    /// Shared by the ids an edge gives out ([`ConnId::on_edge`]): an edge
    /// holds one id per session, and the text of its own id need not be
    /// copied into each.
    edge: Arc<str>,
    local: u64,
}

/// A string that is not a connection id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadConnId(pub String);

impl fmt::Display for BadConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} is not a connection id (expected <edge>.<number>)", self.0)
    }
}

impl std::error::Error for BadConnId {}

/// Whether `edge` can be the edge part of a connection id: one subject token
/// of ASCII letters, digits, `_` and `-`.
pub fn is_valid_edge_id(edge: &str) -> bool {
    (1..=64).contains(&edge.len()) && edge.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
}

impl ConnId {
    /// Panics if `edge` is not a valid edge id: edges choose their own id
    /// once, at start-up, from [`is_valid_edge_id`]-checked input.
    pub fn new(edge: &str, local: u64) -> ConnId {
        ConnId::on_edge(&Arc::from(edge), local)
    }

    /// A connection id on `edge` that shares its text, for an edge giving
    /// out ids. Panics like [`ConnId::new`].
    pub fn on_edge(edge: &Arc<str>, local: u64) -> ConnId {
        assert!(is_valid_edge_id(edge), "invalid edge id {edge:?}");
        ConnId { edge: edge.clone(), local }
    }

    pub fn edge(&self) -> &str {
        &self.edge
    }

    pub fn local(&self) -> u64 {
        self.local
    }

    /// Reads the local part of a connection id's last subject token.
    pub fn parse_local(token: &str) -> Option<u64> {
        if token.is_empty() || token.len() > 20 || !token.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if token.len() > 1 && token.starts_with('0') {
            return None;
        }
        token.parse().ok()
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.edge, self.local)
    }
}

impl FromStr for ConnId {
    type Err = BadConnId;

    fn from_str(s: &str) -> Result<ConnId, BadConnId> {
        let bad = || BadConnId(s.to_owned());
        let (edge, local) = s.split_once('.').ok_or_else(bad)?;
        if !is_valid_edge_id(edge) {
            return Err(bad());
        }
        let local = ConnId::parse_local(local).ok_or_else(bad)?;
        Ok(ConnId { edge: edge.into(), local })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let id = ConnId::new("a1b2", 42);
        assert_eq!(id.to_string(), "a1b2.42");
        assert_eq!("a1b2.42".parse::<ConnId>().unwrap(), id);
    }

    #[test]
    fn refuses_anything_that_could_escape_one_subject() {
        for bad in
            ["", "a", "a.", ".1", "a.b", "a.1.2", "a*.1", "a.>", "a.01", "a.-1", "a b.1", "a.99999999999999999999"]
        {
            assert!(bad.parse::<ConnId>().is_err(), "{bad:?}");
        }
    }
}
