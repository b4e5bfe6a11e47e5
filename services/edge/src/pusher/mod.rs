//! What the edge keeps about Pusher channels across the cluster, beyond
//! its sessions: presence channels' members on every edge ([`presence`],
//! with its bookkeeping in `view`), the webhooks it decides
//! ([`webhooks`]), and its answers to the channel queries of routers and
//! other edges ([`queries`]).

pub(crate) mod presence;
pub(crate) mod queries;
mod view;
pub(crate) mod webhooks;

pub(crate) use presence::Presence;
pub(crate) use webhooks::Webhooks;
