//! A lean, subscribe-only NATS connection.
//!
//! A NATS client such as async-nats gives each subscription a channel (and
//! its owner a task to read it): about 6.4 KiB each, however idle, which
//! for an edge with one subscription per user is most of a connection's
//! memory. Here a subscription is a map entry: each message is handed, on
//! the connection's reader, to the handler its subscription was made with
//! (see `docs/adr/0006-deliveries-without-a-channel-per-subscription.md`).
//! A subscription in a family is not even that: its id says which of a
//! few registered handlers it goes to, and the family's owner, which keeps
//! its subjects anyway, says them again at each connection
//! (`docs/adr/0026-subscriptions-kept-by-their-owners.md`).
//!
//! It speaks the core NATS client protocol for a connection that
//! subscribes and answers: `INFO`/`CONNECT` (headers on, user/password or token, TLS
//! when the URL is `tls://` or the server requires it), `SUB`/`UNSUB`,
//! `PING`/`PONG` both ways, `MSG`/`HMSG`, `-ERR`. It reconnects across the
//! configured servers and those the cluster announces, with back-off, and
//! sends every subscription again after a reconnect. A subscription may be
//! one member of a queue group, and drains without losing a message: it is
//! kept until the server has answered a ping sent after its `UNSUB`; and
//! the answers to the requests it delivers go out by this connection
//! (`PUB`/`HPUB`), the one place it publishes
//! (`docs/adr/0033-queue-members-drain-on-the-subscribe-only-connection.md`).
//! Everything is bounded:
//! the read buffer by the server's `max_payload`, pending commands by
//! [`Config::max_pending_commands`].
//!
//! Layout:
//! - [`parse`]: the server's operations read from bytes, a pure function
//!   (property-tested, arbitrary bytes included); [`headers`]: a header block read in place;
//!   [`info`]: `INFO` and `CONNECT`.
//! - [`config`]: servers, credentials, TLS, timings, events.
//! - `subscriber`: the API ([`Subscriber`], [`Subscription`], [`Deliver`]);
//!   `family`: subscriptions kept by their owners ([`Family`], [`Owner`]).
//! - `state`: what handles and the connection share (subscriptions,
//!   families, pending commands, pong progress).
//! - `connection`: the task (connect, handshake, read, write, keep alive);
//!   `keep_alive`: when a silent server is taken for dead;
//!   `transport`: TCP or TLS.

pub mod config;
mod connection;
mod error;
mod family;
pub mod headers;
pub mod info;
mod keep_alive;
pub mod parse;
mod state;
mod subscriber;
mod transport;

pub use crate::config::{Auth, Config, Event, EventHandler};
pub use crate::error::Error;
pub use crate::family::{Family, Owner, Resubscribing};
pub use crate::headers::Headers;
pub use crate::subscriber::{Deliver, Delivery, Subscriber, Subscription};
