//! NATS subject naming.
//!
//! A user id or group name becomes exactly one subject token: a name made
//! only of `A-Z a-z 0-9 _ - : @` is used as it is; any other name (with `.`,
//! `*`, `>`, `~`, spaces, non-ASCII, or empty) is `~` followed by the unpadded
//! base64url of its UTF-8 bytes. Plain tokens never start with `~` and
//! base64url never contains `.`, `*` or `>`, so the encoding is injective and
//! no name can reach another name's subject or act as a wildcard.

use std::borrow::Cow;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::conn_id::{BadConnId, ConnId};
use crate::handler::Target;

/// Marks an encoded token.
const ENCODED_MARK: char = '~';

/// Whether `name` can be used as a subject token without encoding.
fn is_plain(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b':' | b'@'))
}

/// Encodes a user id or group name as one subject token.
pub fn encode_token(name: &str) -> Cow<'_, str> {
    if is_plain(name) {
        Cow::Borrowed(name)
    } else {
        let mut token = String::with_capacity(1 + name.len().div_ceil(3) * 4);
        token.push(ENCODED_MARK);
        URL_SAFE_NO_PAD.encode_string(name, &mut token);
        Cow::Owned(token)
    }
}

/// A subject token that [`encode_token`] never produces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadToken(pub String);

impl std::fmt::Display for BadToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} is not an encoded name", self.0)
    }
}

impl std::error::Error for BadToken {}

/// Decodes a token made by [`encode_token`]. Only canonical tokens decode, so
/// `decode_token(t).map(encode_token) == Ok(t)` for every accepted `t`.
pub fn decode_token(token: &str) -> Result<String, BadToken> {
    let bad = || BadToken(token.to_owned());
    match token.strip_prefix(ENCODED_MARK) {
        None if is_plain(token) => Ok(token.to_owned()),
        None => Err(bad()),
        Some(encoded) => {
            let bytes = URL_SAFE_NO_PAD.decode(encoded).map_err(|_| bad())?;
            let name = String::from_utf8(bytes).map_err(|_| bad())?;
            if is_plain(&name) { Err(bad()) } else { Ok(name) }
        }
    }
}

/// Builds every subject Herald uses, under one prefix (`herald` by default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subjects {
    prefix: String,
}

/// Why a subject prefix was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadPrefix(pub String);

impl std::fmt::Display for BadPrefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} is not a subject prefix: use dot-separated tokens of A-Z a-z 0-9 _ -", self.0)
    }
}

impl std::error::Error for BadPrefix {}

/// The prefix when none is configured: `herald.user.<U>`.
pub const DEFAULT_PREFIX: &str = "herald";

impl Default for Subjects {
    fn default() -> Self {
        Subjects { prefix: DEFAULT_PREFIX.to_owned() }
    }
}

impl Subjects {
    /// A prefix is one or more dot-separated tokens with no wildcards.
    pub fn new(prefix: &str) -> Result<Subjects, BadPrefix> {
        let valid = prefix.split('.').all(|token| {
            !token.is_empty() && token.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
        });
        if valid { Ok(Subjects { prefix: prefix.to_owned() }) } else { Err(BadPrefix(prefix.to_owned())) }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `<prefix>.user.<U>`: every connection of user U.
    pub fn user(&self, user: &str) -> String {
        format!("{}.user.{}", self.prefix, encode_token(user))
    }

    /// `<prefix>.group.<G>`: every connection in group G.
    pub fn group(&self, group: &str) -> String {
        format!("{}.group.{}", self.prefix, encode_token(group))
    }

    /// `<prefix>.history.user.<U>`: user U's messages as the history stream
    /// republishes them, with their positions (recovery, ADR 0012).
    pub fn history_user(&self, user: &str) -> String {
        format!("{}.history.user.{}", self.prefix, encode_token(user))
    }

    /// `<prefix>.history.group.<G>`: group G's messages, republished.
    pub fn history_group(&self, group: &str) -> String {
        format!("{}.history.group.{}", self.prefix, encode_token(group))
    }

    /// `<prefix>.history.all`: broadcasts to everyone, republished.
    pub fn history_all(&self) -> String {
        format!("{}.history.all", self.prefix)
    }

    /// The history stream's RePublish: `<prefix>.>` to `<prefix>.history.>`.
    pub fn history_republish(&self) -> (String, String) {
        (format!("{}.>", self.prefix), format!("{}.history.>", self.prefix))
    }

    /// `<prefix>.user.*`: what the history stream stores for users.
    pub fn users(&self) -> String {
        format!("{}.user.*", self.prefix)
    }

    /// `<prefix>.group.*`: what the history stream stores for groups.
    pub fn groups(&self) -> String {
        format!("{}.group.*", self.prefix)
    }

    /// `<prefix>.conn.<C>`: one connection.
    pub fn conn(&self, conn: &ConnId) -> String {
        format!("{}.conn.{}", self.prefix, conn)
    }

    /// `<prefix>.conn.<edge>.*`: every connection one edge holds.
    pub fn conns_of_edge(&self, edge: &str) -> String {
        format!("{}.conn.{}.*", self.prefix, edge)
    }

    /// `<prefix>.all`: every connection.
    pub fn all(&self) -> String {
        format!("{}.all", self.prefix)
    }

    /// `<prefix>.ctl.user.<U>`: control operations for user U.
    pub fn ctl_user(&self, user: &str) -> String {
        format!("{}.ctl.user.{}", self.prefix, encode_token(user))
    }

    /// `<prefix>.ctl.user.*`: control operations for every user.
    pub fn ctl_users(&self) -> String {
        format!("{}.ctl.user.*", self.prefix)
    }

    /// `<prefix>.ctl.conn.<C>`: control operations for one connection.
    pub fn ctl_conn(&self, conn: &ConnId) -> String {
        format!("{}.ctl.conn.{}", self.prefix, conn)
    }

    /// `<prefix>.ctl.conn.<edge>.*`: control operations for the connections
    /// of one edge.
    pub fn ctl_conns_of_edge(&self, edge: &str) -> String {
        format!("{}.ctl.conn.{}.*", self.prefix, edge)
    }

    /// `<prefix>.events.connect`.
    pub fn event_connect(&self) -> String {
        format!("{}.events.connect", self.prefix)
    }

    /// `<prefix>.events.disconnect`.
    pub fn event_disconnect(&self) -> String {
        format!("{}.events.disconnect", self.prefix)
    }

    /// Every subject a publish to `target` goes to, or the first connection
    /// id that is not one (checked even when `all` makes them moot, so a bad
    /// request is refused the same way whatever else it says).
    pub fn for_target(&self, target: &Target) -> Result<Vec<String>, BadConnId> {
        let conns = target.conns.iter().map(|conn| conn.parse().map(|conn| self.conn(&conn)));
        let conns = conns.collect::<Result<Vec<String>, BadConnId>>()?;
        if target.all {
            return Ok(vec![self.all()]);
        }
        let users = target.users.iter().map(|user| self.user(user));
        let groups = target.groups.iter().map(|group| self.group(group));
        Ok(users.chain(groups).chain(conns).collect())
    }

    /// Internal: routers ask every edge who is online here.
    pub fn presence_query(&self) -> String {
        format!("{}.presence.query", self.prefix)
    }

    /// Internal: edges say they are alive here.
    pub fn edge_heartbeat(&self) -> String {
        format!("{}.edges.heartbeat", self.prefix)
    }

    /// Internal: whoever begins to follow the edges' heartbeats calls the
    /// roll here, and every edge beats at once.
    pub fn edge_roll_call(&self) -> String {
        format!("{}.edges.rollcall", self.prefix)
    }

    /// Internal: where edges send client actions for the routers, which
    /// listen in one queue group.
    pub fn router_actions(&self) -> String {
        format!("{}.router.actions", self.prefix)
    }

    /// Internal: Pusher channel queries, answered by every edge.
    pub fn pusher_query(&self) -> String {
        format!("{}.pusher.query", self.prefix)
    }

    /// Internal: member events of the presence channel that is group `group`.
    pub fn pusher_members(&self, group: &str) -> String {
        format!("{}.pusher.members.{}", self.prefix, encode_token(group))
    }

    /// Internal: webhook events edges decide, for the routers to send.
    pub fn pusher_webhooks(&self) -> String {
        format!("{}.pusher.webhooks", self.prefix)
    }
}

/// NATS header that skips one connection of a delivery.
pub const EXCLUDE_CONN_HEADER: &str = "Herald-Exclude-Conn";

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn plain_names_are_kept() {
        for name in ["alice", "user:42", "a@b", "A_Z-09"] {
            assert_eq!(encode_token(name), name);
        }
    }

    #[test]
    fn other_names_are_encoded() {
        assert_eq!(encode_token("a.b"), "~YS5i");
        assert_eq!(encode_token(""), "~");
        assert_eq!(encode_token("*"), "~Kg");
        assert_eq!(encode_token(">"), "~Pg");
        assert_eq!(encode_token("~x"), "~fng");
        assert_eq!(encode_token("é"), "~w6k");
        assert_eq!(encode_token("a b"), "~YSBi");
    }

    #[test]
    fn non_canonical_tokens_are_refused() {
        // "alice" encoded: never produced, because "alice" is plain.
        assert!(decode_token("~YWxpY2U").is_err());
        assert!(decode_token("a.b").is_err());
        assert!(decode_token("~!!").is_err());
        assert!(decode_token("").is_err());
        // Trailing bits set: decodes with a lax decoder, not here.
        assert!(decode_token("~YT").is_err());
    }

    #[test]
    fn subjects_use_the_prefix_and_the_encoding() {
        let s = Subjects::new("app.rt").unwrap();
        assert_eq!(s.user("a.b"), "app.rt.user.~YS5i");
        assert_eq!(s.group("room 1"), "app.rt.group.~cm9vbSAx");
        assert_eq!(s.all(), "app.rt.all");
        assert_eq!(s.history_all(), "app.rt.history.all");
        assert_eq!(s.ctl_user("bob"), "app.rt.ctl.user.bob");
        let conn: ConnId = "e1.5".parse().unwrap();
        assert_eq!(s.conn(&conn), "app.rt.conn.e1.5");
        assert_eq!(s.conns_of_edge("e1"), "app.rt.conn.e1.*");
    }

    #[test]
    fn a_target_becomes_its_subjects() {
        let s = Subjects::default();
        let target =
            Target { users: vec!["a.b".into()], groups: vec!["g".into()], conns: vec!["e1.5".into()], all: false };
        assert_eq!(s.for_target(&target).unwrap(), ["herald.user.~YS5i", "herald.group.g", "herald.conn.e1.5"]);
        let everyone = Target { all: true, ..target.clone() };
        assert_eq!(s.for_target(&everyone).unwrap(), ["herald.all"]);
        let bad = Target { conns: vec!["e1.>".into()], ..Target::default() };
        assert!(s.for_target(&bad).is_err());
        let bad_with_all = Target { all: true, ..bad };
        assert!(s.for_target(&bad_with_all).is_err());
    }

    #[test]
    fn bad_prefixes_are_refused() {
        for prefix in ["", "a.", ".a", "a.*", "a>", "a b", "a..b"] {
            assert!(Subjects::new(prefix).is_err(), "{prefix:?}");
        }
    }

    fn is_single_safe_token(token: &str) -> bool {
        !token.is_empty() && !token.contains(['.', '*', '>', ' ', '\t', '\r', '\n'])
    }

    proptest! {
        #[test]
        fn encoding_round_trips(name in any::<String>()) {
            let token = encode_token(&name);
            prop_assert!(is_single_safe_token(&token));
            prop_assert_eq!(decode_token(&token).unwrap(), name);
        }

        #[test]
        fn encoding_is_injective(a in any::<String>(), b in any::<String>()) {
            prop_assume!(a != b);
            prop_assert_ne!(encode_token(&a), encode_token(&b));
        }

        #[test]
        fn near_collisions_stay_apart(base in "[a-z]{0,6}", suffix in prop::sample::select(vec![".", "*", ">", "~", " ", "é", ""])) {
            let other = format!("{base}{suffix}");
            prop_assume!(base != other);
            prop_assert_ne!(encode_token(&base), encode_token(&other));
        }
    }
}
