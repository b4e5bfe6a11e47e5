//! Families: subscriptions the subscriber keeps nothing of (ADR 0026).
//!
//! An edge holds one subscription per user, each to its own subject, all
//! handed to one handler. Kept here, each would be a map entry and a copy
//! of its subject: about 100 B per user, to find the handler of a message
//! and to subscribe again after a reconnect. A family does both without
//! them: its handler is registered once and the subscription's id says
//! which family it is in ([`sid`]), and at each (re)connect the family's
//! [`Owner`], which holds the subscriptions anyway, says them again.

use std::fmt;

/// Bits of a subscription id that say its family; 0 is for subscriptions
/// kept here (`Subscriber::subscribe`).
const FAMILY_BITS: u32 = 4;

/// Families a subscriber takes: a fixed few (the edge has one per kind of
/// topic), registered at start-up.
pub(crate) const MAX_FAMILIES: usize = (1 << FAMILY_BITS) - 1;

/// One family of a subscriber, for `Subscriber::subscribe_in`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Family {
    /// What its subscriptions' ids end with: 1 to [`MAX_FAMILIES`].
    tag: u8,
}

impl Family {
    /// The `index`th family registered (from 0).
    pub(crate) fn nth(index: usize) -> Family {
        assert!(index < MAX_FAMILIES, "a subscriber takes at most {MAX_FAMILIES} families");
        Family { tag: index as u8 + 1 }
    }
}

/// The id of the `sequence`th subscription, in `family` or (`None`) kept
/// here: never reused, so a late message for a dropped subscription is
/// handed to no one, or is told apart by its id.
pub(crate) fn sid(sequence: u64, family: Option<Family>) -> u64 {
    sequence << FAMILY_BITS | family.map_or(0, |family| u64::from(family.tag))
}

/// The index of the family a subscription id is in, `None` for one kept
/// here.
pub(crate) fn family_of(sid: u64) -> Option<usize> {
    let tag = (sid & ((1 << FAMILY_BITS) - 1)) as usize;
    tag.checked_sub(1)
}

/// What holds a family's subscriptions, and says them again when a
/// connection is made.
pub trait Owner: Send + Sync + 'static {
    /// Calls [`Resubscribing::sub`] for every live subscription of the
    /// family, with the subject and id it was made with, under the lock
    /// under which the owner subscribes and unsubscribes: so none is made
    /// or dropped unseen while it runs. It runs on the connection's task,
    /// which reads nothing meanwhile; the subscriber's lock is not held, so
    /// it may subscribe and unsubscribe as usual.
    fn resubscribe(&self, resubscribing: &Resubscribing<'_>);
}

/// A connection being subscribed again, handed to [`Owner::resubscribe`].
pub struct Resubscribing<'a> {
    /// Queues `SUB subject sid` on the new connection.
    pub(crate) sub: &'a (dyn Fn(&str, u64) + 'a),
}

impl Resubscribing<'_> {
    /// Subscribes `sid` to `subject` again on the new connection. A
    /// subscription made while the owners are asked may be sent twice with
    /// the same id, which the server ignores (ADR 0026).
    pub fn sub(&self, subject: &str, sid: u64) {
        (self.sub)(subject, sid);
    }
}

impl fmt::Debug for Resubscribing<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resubscribing").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_says_its_family() {
        assert_eq!(family_of(sid(1, None)), None);
        for index in [0, 3, MAX_FAMILIES - 1] {
            assert_eq!(family_of(sid(1234, Some(Family::nth(index)))), Some(index));
        }
        assert_ne!(sid(1, Some(Family::nth(0))), sid(2, Some(Family::nth(0))));
        assert_ne!(sid(1, Some(Family::nth(0))), sid(1, Some(Family::nth(1))));
    }

    #[test]
    #[should_panic(expected = "at most")]
    fn families_are_few() {
        Family::nth(MAX_FAMILIES);
    }
}
