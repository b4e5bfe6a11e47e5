//! The handle to a subscribe-only connection, and its subscriptions.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::config::{Config, ServerAddr};
use crate::family::{Family, Owner};
use crate::headers::Headers;
use crate::state::Shared;
use crate::{Error, connection};

/// What a subscription hands its messages to. It is called on the
/// connection's reader, one message at a time, in the order the server
/// sent them: it must not block, and the time it takes is time the
/// connection does not read. A handler that panics loses that message only.
pub trait Deliver: Send + Sync + 'static {
    fn deliver(&self, message: Delivery<'_>);
}

impl<F> Deliver for F
where
    F: Fn(Delivery<'_>) + Send + Sync + 'static,
{
    fn deliver(&self, message: Delivery<'_>) {
        self(message);
    }
}

/// One message, borrowing the connection's read buffer for everything but
/// the payload.
#[derive(Debug, Clone)]
pub struct Delivery<'a> {
    /// The id of the subscription it came by ([`Subscription::sid`]): a
    /// handler that several subscriptions share tells them apart by it.
    pub sid: u64,
    /// The subject it was published to (for a wildcard subscription, the
    /// whole subject).
    pub subject: &'a str,
    /// Where the publisher waits for an answer, if anywhere.
    pub reply: Option<&'a str>,
    /// Its headers, checked, if it has any.
    pub headers: Option<Headers<'a>>,
    /// The payload, the handler's to keep (one copy per message).
    pub payload: Bytes,
}

/// A subscribe-only NATS connection: cheap to clone, every clone shares it.
/// The connection runs on a task of its own until the last clone is dropped.
///
/// Generic over the handler type so that a caller with one kind of handler
/// (the edge's topics) stores it without a vtable; `dyn Deliver` by default.
pub struct Subscriber<D: ?Sized + Deliver = dyn Deliver> {
    inner: Arc<Inner<D>>,
}

struct Inner<D: ?Sized> {
    shared: Arc<Shared<D>>,
    /// Stops the connection task when the last handle goes.
    _stop: DropGuard,
}

impl<D: ?Sized + Deliver> Subscriber<D> {
    /// Starts connecting in the background and returns at once: start-up
    /// does not wait for NATS, and subscriptions made meanwhile are sent
    /// when the connection is up. Only a URL that cannot be read is an
    /// error here. Must be called within a tokio runtime.
    pub fn connect(config: Config) -> Result<Subscriber<D>, Error> {
        let servers = config.servers.iter().map(|url| ServerAddr::parse(url)).collect::<Result<Vec<_>, _>>()?;
        if servers.is_empty() {
            return Err(Error::BadUrl { url: String::new(), reason: "no server URL".to_owned() });
        }
        let shared = Arc::new(Shared::new(config.max_pending_commands, config.on_event.clone()));
        let stop = CancellationToken::new();
        tokio::spawn(connection::run(shared.clone(), servers, config, stop.clone()));
        Ok(Subscriber { inner: Arc::new(Inner { shared, _stop: stop.drop_guard() }) })
    }

    /// Subscribes to `subject` (wildcards allowed): every message on it is
    /// handed to `deliver` until the returned [`Subscription`] is dropped.
    /// Returns at once; [`Subscriber::sync`] says when the server has it.
    ///
    /// The subscription holds `deliver` until it is dropped, so `deliver`
    /// must not hold the `Subscription` (that would be a cycle, and the
    /// subscription would never end).
    pub fn subscribe(&self, subject: &str, deliver: Arc<D>) -> Result<Subscription<D>, Error> {
        check_subject(subject)?;
        let sid = self.inner.shared.subscribe(subject, None, deliver)?;
        Ok(Subscription { shared: self.inner.shared.clone(), sid })
    }

    /// Subscribes to `subject` as one member of queue group `group`: the
    /// server gives each message to one member of the group. Otherwise as
    /// [`Subscriber::subscribe`]; a member leaves the group without losing
    /// a message with [`Subscription::drain`].
    pub fn queue_subscribe(&self, subject: &str, group: &str, deliver: Arc<D>) -> Result<Subscription<D>, Error> {
        check_subject(subject)?;
        check_group(subject, group)?;
        let sid = self.inner.shared.subscribe(subject, Some(group), deliver)?;
        Ok(Subscription { shared: self.inner.shared.clone(), sid })
    }

    /// Registers a family of subscriptions that this keeps nothing of
    /// (`family`): every message of one is handed to `deliver`, and at each
    /// connection `owner` says them again. `deliver` is held as long as the
    /// subscriber; like a subscription's handler, it must not hold the
    /// subscriber.
    ///
    /// # Panics
    ///
    /// Past 15 families: they are a fixed few, registered at start-up.
    pub fn family(&self, deliver: Arc<D>, owner: Arc<dyn Owner>) -> Family {
        self.inner.shared.add_family(deliver, owner)
    }

    /// Subscribes to `subject` (wildcards allowed) in `family`, a family of
    /// this subscriber: every message on it is handed to the family's
    /// handler, with the returned id, until [`Subscriber::unsubscribe`] is
    /// called with it. From this call until that one, the family's owner
    /// must say it when asked ([`Owner::resubscribe`]). Returns at once;
    /// [`Subscriber::sync`] says when the server has it.
    pub fn subscribe_in(&self, family: Family, subject: &str) -> Result<u64, Error> {
        check_subject(subject)?;
        self.inner.shared.subscribe_in(family, subject)
    }

    /// Sends a message (with `headers`, if any): the answer to a request
    /// this connection delivered. An answer goes out by the connection its
    /// request came by, because only there is the requester's interest in
    /// its inbox sure to be known: the server had it before it passed the
    /// request on, whereas another server of a cluster may learn of a
    /// fresh inbox after the answer reaches it, and drop the answer
    /// (ADR 0033). Refused while disconnected (nothing is kept for the next
    /// connection), past the server's `max_payload`, and past the bound on
    /// pending commands. Returns once queued; [`Subscriber::sync`] says
    /// when the server has it.
    pub fn publish(&self, subject: &str, headers: &[(&str, &str)], payload: &[u8]) -> Result<(), Error> {
        check_subject(subject)?;
        if subject.split('.').any(|token| token == "*" || token == ">") {
            return Err(Error::Publish { subject: subject.to_owned(), reason: "a wildcard".to_owned() });
        }
        self.inner.shared.publish_message(subject, headers, payload)
    }

    /// Ends a family's subscription ([`Subscriber::subscribe_in`]); its
    /// owner must no longer say it. (A [`Subscription`] ends when dropped.)
    pub fn unsubscribe(&self, sid: u64) {
        self.inner.shared.unsubscribe(sid);
    }

    /// Returns once the server has handled every subscription made before
    /// the call: from then on, it delivers every message published to them
    /// (on a cluster: published through this server; other servers learn of
    /// interest a little later, as with any NATS client). While disconnected,
    /// it waits for the next connection to have sent every subscription
    /// again; bound it with a timeout.
    pub async fn sync(&self) {
        let target = self.inner.shared.sync_target();
        let mut progress = self.inner.shared.progress();
        // The sender lives as long as `shared`, which we hold.
        let _ = progress.wait_for(|progress| target.reached(progress)).await;
    }

    /// Whether a connection is up and subscribed right now.
    pub fn is_connected(&self) -> bool {
        self.inner.shared.progress().borrow().connected
    }

    /// Subscriptions held now, not counting families' (their owners count
    /// them).
    pub fn subscriptions(&self) -> usize {
        self.inner.shared.subscriptions()
    }
}

impl<D: ?Sized + Deliver> Clone for Subscriber<D> {
    fn clone(&self) -> Self {
        Subscriber { inner: self.inner.clone() }
    }
}

impl<D: ?Sized + Deliver> fmt::Debug for Subscriber<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscriber")
            .field("connected", &self.is_connected())
            .field("subscriptions", &self.subscriptions())
            .finish()
    }
}

/// One subscription; dropping it unsubscribes.
pub struct Subscription<D: ?Sized + Deliver = dyn Deliver> {
    shared: Arc<Shared<D>>,
    sid: u64,
}

impl<D: ?Sized + Deliver> Subscription<D> {
    /// Its id on the connection (`sid`), unique for the connection's life.
    pub fn sid(&self) -> u64 {
        self.sid
    }

    /// Unsubscribes without losing a message: the server gets `UNSUB` and a
    /// ping, and until it answers the ping (which it does after every
    /// message it sent before the `UNSUB`), those messages are still handed
    /// to the handler. Returns when none can arrive any more (the answer
    /// came, or the connection ended; while disconnected, at once); the
    /// handler is then dropped. A queue group's other members get every
    /// message published from the moment the server has the `UNSUB`.
    ///
    /// Unlike dropping the subscription, or async-nats's `drain` (0.51),
    /// which forgets the subscription once the `UNSUB` is written, so that
    /// messages already on the wire are dropped on arrival (ADR 0033).
    pub async fn drain(self) {
        if let Some(fence) = self.shared.drain(self.sid) {
            let mut progress = self.shared.progress();
            // The sender lives as long as `shared`, which we hold.
            let _ = progress.wait_for(|progress| fence.fenced(progress)).await;
        }
        // Dropping `self` next finds nothing left to unsubscribe.
        self.shared.forget(self.sid);
    }
}

impl<D: ?Sized + Deliver> Drop for Subscription<D> {
    fn drop(&mut self) {
        self.shared.unsubscribe(self.sid);
    }
}

impl<D: ?Sized + Deliver> fmt::Debug for Subscription<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription").field("sid", &self.sid).finish()
    }
}

/// A subject the server will take in `SUB`: dot-separated non-empty tokens
/// of printable characters other than space, `*` and `>` only as whole
/// tokens, `>` only last.
fn check_subject(subject: &str) -> Result<(), Error> {
    let bad = |reason: &str| Err(Error::BadSubject { subject: subject.to_owned(), reason: reason.to_owned() });
    if subject.is_empty() {
        return bad("empty");
    }
    if subject.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("whitespace or control characters");
    }
    // Checked as they come, without collecting them: every new user's
    // topic subscribes, so this runs once per connect.
    let mut tokens = subject.split('.').peekable();
    while let Some(token) = tokens.next() {
        if token.is_empty() {
            return bad("empty token");
        }
        if token.len() > 1 && token.contains(['*', '>']) {
            return bad("a wildcard inside a token");
        }
        if token == ">" && tokens.peek().is_some() {
            return bad("> before the last token");
        }
    }
    Ok(())
}

/// A queue group name the server will take in `SUB`: one word, without
/// whitespace or control characters.
fn check_group(subject: &str, group: &str) -> Result<(), Error> {
    if group.is_empty() || group.chars().any(|c| c.is_whitespace() || c.is_control()) {
        let reason = format!("queue group {group:?} is empty or has whitespace or control characters");
        return Err(Error::BadSubject { subject: subject.to_owned(), reason });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_checked_before_they_reach_the_server() {
        for good in ["a", "herald.user.x", "a.*.c", "a.>", "*", ">", "é.ü"] {
            assert!(check_subject(good).is_ok(), "{good}");
        }
        for bad in ["", "a b", "a\tb", "a..b", ".a", "a.", "a.b*", "a.>.c", "a\r\n"] {
            assert!(check_subject(bad).is_err(), "{bad:?}");
        }
        assert_eq!(check_subject("a..b").unwrap_err().to_string(), r#"cannot subscribe to "a..b": empty token"#);
    }

    #[test]
    fn queue_groups_are_one_word() {
        assert!(check_group("s", "herald-router").is_ok());
        for bad in ["", "a b", "a\r\n"] {
            assert!(check_group("s", bad).is_err(), "{bad:?}");
        }
    }
}
