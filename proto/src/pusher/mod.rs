//! The Pusher Channels protocol 7, as Herald speaks it to pusher-js,
//! Laravel Echo and Pusher's server SDKs.
//!
//! - [`app`]: the apps served, their credentials and limits, and how their
//!   channels map to Herald groups.
//! - [`socket_id`]: `socket_id`s, a decimal spelling of connection ids.
//! - [`channel`]: channel and event names, and channel kinds.
//! - [`frame`]: frames both ways, and the translation between a Pusher
//!   event and a Herald frame (a Pusher channel is the Herald group of the
//!   same name).
//! - [`sign`]: channel authorisation, sign-in, REST and webhook signatures.
//! - [`codes`]: close and error codes.
//! - [`cluster`]: channel queries, member events and webhook events
//!   between edges and routers.

pub mod app;
pub mod channel;
pub mod cluster;
pub mod codes;
pub mod frame;
pub mod sign;
pub mod socket_id;
