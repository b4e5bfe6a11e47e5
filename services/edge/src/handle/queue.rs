//! A mailbox's queue: the first thing queued is held in place, in the
//! handle's shared part beside the lock and the flags every delivery
//! touches anyway; only what waits behind it goes into a boxed `VecDeque`,
//! allocated when a second entry waits.
//!
//! While the edge keeps up, a session has one corked frame at a time, so a
//! broadcast to 10,000 idle sessions queues each frame in memory the
//! delivery has just brought into the cache for the lock, not in a deque
//! buffer of its own (a cold line per receiver), and a session that never
//! has two frames waiting never allocates one (ADR 0021). Boxed, the deque
//! takes a pointer's 8 bytes of every session's shared part rather than
//! its own 32, which keeps that part in a smaller allocator class
//! (ADR 0028).

use std::collections::VecDeque;

use super::Outbound;

/// A buffer that grew past this many entries is given back (with its box)
/// by [`Queue::give_back`] once nothing waits behind the first entry again;
/// a smaller one is kept, box and all, so a steady trickle of bursts does
/// not allocate every time.
const KEPT_CAPACITY: usize = 8;

/// Entries in order. Laid out as written (`repr(C)`): `first` is what a
/// delivery writes, and comes before the deque, which it rarely touches.
#[derive(Debug, Default)]
#[repr(C)]
pub(super) struct Queue {
    /// The front of the queue; `None` only when the queue is empty.
    first: Option<Outbound>,
    /// What waits behind `first`; `None` until a second entry waits.
    /// Boxed: most sessions never need it, and every session would carry
    /// an unboxed deque's 32 bytes.
    #[allow(clippy::box_collection, reason = "in place, the deque's 32 B would be in every session")]
    rest: Option<Box<VecDeque<Outbound>>>,
}

impl Queue {
    pub fn len(&self) -> usize {
        match self.first {
            None => 0,
            Some(_) => 1 + self.rest.as_ref().map_or(0, |rest| rest.len()),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.first.is_none()
    }

    /// Entries from the front.
    pub fn iter(&self) -> impl Iterator<Item = &Outbound> {
        self.first.iter().chain(self.rest.iter().flat_map(|rest| rest.iter()))
    }

    pub fn push_back(&mut self, outbound: Outbound) {
        match self.first {
            None => self.first = Some(outbound),
            Some(_) => self.rest_mut().push_back(outbound),
        }
    }

    pub fn push_front(&mut self, outbound: Outbound) {
        if let Some(first) = self.first.replace(outbound) {
            self.rest_mut().push_front(first);
        }
    }

    pub fn pop_front(&mut self) -> Option<Outbound> {
        let first = self.first.take()?;
        self.first = self.rest.as_mut().and_then(|rest| rest.pop_front());
        Some(first)
    }

    /// Gives back a box whose buffer a burst made large, once it is empty.
    /// For the session's own reads of its mailbox: the flusher's would free
    /// and grow it again with every burst while the edge is behind.
    pub fn give_back(&mut self) {
        if self.rest.as_ref().is_some_and(|rest| rest.is_empty() && rest.capacity() > KEPT_CAPACITY) {
            self.rest = None;
        }
    }

    /// The deque behind the first entry, allocated the first time one waits.
    fn rest_mut(&mut self) -> &mut VecDeque<Outbound> {
        self.rest.get_or_insert_with(Box::default)
    }
}

#[cfg(test)]
mod tests {
    use tokio_tungstenite::tungstenite::Utf8Bytes;

    use super::*;

    fn frame(text: &'static str) -> Outbound {
        Outbound::Frame(Utf8Bytes::from_static(text))
    }

    fn texts(queue: &Queue) -> Vec<&str> {
        queue
            .iter()
            .map(|outbound| match outbound {
                Outbound::Frame(frame) => frame.as_str(),
                Outbound::Unfinished => "unfinished",
                Outbound::Close(_) => "close",
            })
            .collect()
    }

    #[test]
    fn entries_keep_their_order_whichever_end_they_come_in_by() {
        let mut queue = Queue::default();
        assert!(queue.is_empty() && queue.iter().next().is_none() && queue.pop_front().is_none());
        queue.push_back(frame("b"));
        queue.push_back(frame("c"));
        queue.push_front(frame("a"));
        queue.push_back(Outbound::Unfinished);
        assert_eq!((queue.len(), texts(&queue)), (4, vec!["a", "b", "c", "unfinished"]));
        assert!(matches!(queue.pop_front(), Some(Outbound::Frame(frame)) if frame.as_str() == "a"));
        assert!(matches!(queue.iter().next(), Some(Outbound::Frame(frame)) if frame.as_str() == "b"));
        queue.push_front(Outbound::Unfinished);
        assert_eq!(texts(&queue), vec!["unfinished", "b", "c", "unfinished"]);
        while queue.pop_front().is_some() {}
        assert_eq!((queue.is_empty(), queue.len()), (true, 0));
        queue.push_front(frame("x"));
        assert_eq!(texts(&queue), vec!["x"]);
    }

    #[test]
    fn one_entry_at_a_time_allocates_nothing() {
        let mut queue = Queue::default();
        for _ in 0..100 {
            queue.push_back(frame("{}"));
            assert!(queue.pop_front().is_some());
        }
        assert!(queue.rest.is_none());
    }

    #[test]
    fn an_emptied_queue_gives_back_what_a_burst_took() {
        let mut queue = Queue::default();
        for _ in 0..100 {
            queue.push_back(frame("{}"));
        }
        while queue.pop_front().is_some() {}
        assert!(queue.rest.as_ref().unwrap().capacity() > KEPT_CAPACITY, "kept until given back");
        queue.give_back();
        assert!(queue.rest.is_none());
        for _ in 0..3 {
            queue.push_back(frame("{}"));
        }
        while queue.pop_front().is_some() {}
        queue.give_back();
        assert!((1..=KEPT_CAPACITY).contains(&queue.rest.as_ref().unwrap().capacity()), "a small buffer is kept");
    }
}
