//! Socket.IO 5 over Engine.IO 4, WebSocket transport only, as Herald speaks
//! it to socket.io-client 4 (the client laravel-swoole front ends use).
//!
//! Each WebSocket text frame is one Engine.IO packet; a Socket.IO packet
//! travels inside an Engine.IO `message` (`4`). So `42["chat",{"t":1}]` is an
//! Engine.IO message holding a Socket.IO EVENT.
//!
//! - [`engine`]: Engine.IO packets (open, close, ping, pong, message).
//! - [`packet`]: Socket.IO packets a client sends, read; the packets Herald
//!   sends, written — a delivery is written once per message for every
//!   Socket.IO receiver, like the native and Pusher frames.
//!
//! Only what a WebSocket-only server on the main namespace needs is here:
//! no long-polling (it needs sticky sessions, which Herald refuses by
//! design), no binary attachments, no namespace but `/`.

pub mod engine;
pub mod packet;
