//! The subscriber against real nats-servers: each test starts its own on
//! free ports (a cluster, auth, TLS, tight limits where it needs them) and
//! publishes with async-nats, a client nobody here wrote.

mod auth;
mod delivery;
mod families;
mod outage;
mod queue;
mod republish;
mod slow;
mod support;
mod tls;
