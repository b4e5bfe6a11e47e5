//! The examples, driven over a real `nats-server` the way the router and
//! backends drive them: handler requests in, handler responses and pushed
//! frames out, compared exactly; once on the in-process bus; and the
//! `herald-examples` binary's settings (`binary`).
//!
//! One test binary, so the helpers in `support` are built once and shared.

mod support;

mod binary;
mod chat;
mod echo;
mod expiry;
mod in_process;
