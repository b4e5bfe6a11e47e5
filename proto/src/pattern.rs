//! Name patterns: an exact name, or a prefix ending in `*` (`chat/*`,
//! `room:*`, or `*` alone for anything). Routes match actions with them and
//! tokens list the groups a client may join with them.

/// One pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pattern {
    Exact(String),
    Prefix(String),
}

impl Pattern {
    pub fn new(pattern: &str) -> Pattern {
        match pattern.strip_suffix('*') {
            Some(prefix) => Pattern::Prefix(prefix.to_owned()),
            None => Pattern::Exact(pattern.to_owned()),
        }
    }

    pub fn matches(&self, name: &str) -> bool {
        match self {
            Pattern::Exact(exact) => exact == name,
            Pattern::Prefix(prefix) => name.starts_with(prefix.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_and_prefix() {
        assert!(Pattern::new("lobby").matches("lobby"));
        assert!(!Pattern::new("lobby").matches("lobby2"));
        assert!(Pattern::new("room:*").matches("room:1"));
        assert!(Pattern::new("room:*").matches("room:"));
        assert!(!Pattern::new("room:*").matches("room"));
        assert!(Pattern::new("*").matches(""));
    }
}
