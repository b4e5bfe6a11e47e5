//! When a silent server is taken for dead.
//!
//! A server that stops without closing its sockets (its machine gone, its
//! process frozen) is found only by pinging it. A server that is alive but
//! slow (its read loop seconds behind on a subscribe storm) answers late,
//! and leaving it then turns a storm into a reconnect storm: every
//! subscription sent again. So anything the server sends counts as a sign
//! of life, not only the pong to our latest ping (as in async-nats, and as
//! nats-server does not ping a client it hears from), and how long a
//! silence is tolerated is the operator's `ping_interval`
//! (`docs/adr/0016-nats-keep-alive-counts-any-bytes.md`).

/// Ticks in a row with nothing heard after which the server is taken for
/// dead: two pings unanswered when the next is due, the NATS clients'
/// default (`MaxPingsOut` 2).
pub(crate) const MAX_SILENT_TICKS: u32 = 2;

/// What to do at a keep-alive tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tick {
    /// Ping the server.
    Ping,
    /// Nothing heard for this many ticks: the connection is stale.
    Stale(u32),
}

/// Keep-alive ticks in a row with nothing heard from the server.
#[derive(Debug, Default)]
pub(crate) struct Silence {
    ticks: u32,
}

impl Silence {
    /// A tick, told whether anything was read from the server since the
    /// previous one. A ping goes out at every tick that is not the last, so
    /// a silent tick always follows a ping left unanswered for a whole
    /// interval: a stale connection has been silent for between
    /// [`MAX_SILENT_TICKS`] and one more intervals.
    pub fn tick(&mut self, heard: bool) -> Tick {
        self.ticks = if heard { 0 } else { self.ticks + 1 };
        if self.ticks >= MAX_SILENT_TICKS { Tick::Stale(self.ticks) } else { Tick::Ping }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_silent_ticks_make_a_connection_stale() {
        let mut silence = Silence::default();
        assert_eq!(silence.tick(false), Tick::Ping);
        assert_eq!(silence.tick(false), Tick::Stale(2));
    }

    #[test]
    fn anything_heard_starts_the_count_again() {
        let mut silence = Silence::default();
        for _ in 0..10 {
            assert_eq!(silence.tick(false), Tick::Ping);
            // A message, a server ping or a late pong: the server is alive.
            assert_eq!(silence.tick(true), Tick::Ping);
        }
        assert_eq!(silence.tick(false), Tick::Ping);
        assert_eq!(silence.tick(false), Tick::Stale(2));
    }
}
