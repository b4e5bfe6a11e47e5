//! What a session does when it speaks Socket.IO 5 over Engine.IO 4
//! (`/socket.io/?EIO=4&transport=websocket`): the handshake that decides
//! who the client is from its CONNECT packet, then emits read as client
//! actions and the session's frames written as Socket.IO packets.
//! Everything else (the loop, the mailbox, limits, liveness, drain) is the
//! session's, shared with `/ws` and the Pusher path.
//!
//! An emit is the client action of the event's name, so it goes through
//! the routers like any action; its reply is the emit's acknowledgement,
//! and an emit without one gets no reply. Rooms are Herald groups, so
//! deliveries reach the socket through the registry like any member's,
//! turned into `42["<action>", <details>]` once per message by the
//! registry's fan-out.

use futures_util::{SinkExt, StreamExt};
use herald_proto::client::{ClientFrame, ERROR_SUFFIX, ErrorDetails, FrameId, action};
use herald_proto::close;
use herald_proto::conn_id::ConnId;
use herald_proto::socketio::engine::{self, Open, Packet};
use herald_proto::socketio::packet::{self, ClientPacket, INVALID_NAMESPACE, MAIN_NAMESPACE};
use herald_proto::status;
use http::HeaderMap;
use serde::Serialize;
use serde_json::value::RawValue;
use tokio_tungstenite::tungstenite::Message;

use super::actions::Purpose;
use super::{Ending, Session, SessionContext, Socket, say_and_close};
use crate::auth::Identity;
use crate::connect;
use crate::drain::restart;
use crate::handle::CloseRequest;

/// Packets a client may send before its CONNECT (pongs, CONNECTs to other
/// namespaces) before it is refused: a client speaking Socket.IO sends its
/// CONNECT first.
const MAX_PACKETS_BEFORE_CONNECT: usize = 16;

/// What the upgrade request said that the CONNECT may need: who the client
/// is is decided only once that packet arrives, from its `auth`, or else
/// from these.
#[derive(Debug)]
pub(crate) struct SocketIoUpgrade {
    /// The upgrade's own token (`?token=` or `Authorization: Bearer`, as on
    /// `/ws`), used when `auth` has none.
    pub token: Option<String>,
    /// The upgrade's headers and cookies, for `$connect` when there is no
    /// token at all.
    pub headers: HeaderMap,
}

/// Why a handshake ended without a session.
enum Refused {
    /// The connection is gone; nothing to say.
    Lost,
    /// Close with this.
    Close(CloseRequest),
    /// `connect_error` with the message and the HTTP status `/ws` would
    /// have refused with, then close.
    ConnectError { message: String, code: u16 },
}

/// Opens the Engine.IO session, waits for the client's CONNECT and decides
/// who the client is; `None` when it was refused (the client has been told,
/// and the socket closed).
pub(super) async fn handshake(
    ctx: &SessionContext,
    socket: &mut Socket,
    conn: &ConnId,
    upgrade: SocketIoUpgrade,
) -> Option<Identity> {
    let refused = match admit(ctx, socket, conn, upgrade).await {
        Ok(identity) => return Some(identity),
        Err(refused) => refused,
    };
    match refused {
        Refused::Lost => ctx.metrics.upgrade_refused_for("lost_before_connect"),
        Refused::Close(request) => {
            ctx.metrics.upgrade_refused_for("closed_before_connect");
            say_and_close(socket, None, request.code, &request.reason).await;
        }
        Refused::ConnectError { message, code } => {
            ctx.metrics.upgrade_refused(http::StatusCode::from_u16(code).unwrap_or(http::StatusCode::FORBIDDEN));
            let refusal = packet::connect_error(MAIN_NAMESPACE, &message, Some(code));
            say_and_close(socket, Some(refusal), close::NORMAL, &message).await;
        }
    }
    None
}

async fn admit(
    ctx: &SessionContext,
    socket: &mut Socket,
    conn: &ConnId,
    upgrade: SocketIoUpgrade,
) -> Result<Identity, Refused> {
    let sid = conn.to_string();
    let open = Open {
        sid: &sid,
        upgrades: [],
        ping_interval: ctx.timing.ping_interval.as_millis() as u64,
        ping_timeout: ctx.timing.pong_timeout.as_millis() as u64,
        max_payload: ctx.limits.max_message_bytes,
    };
    socket.send(Message::text(open.frame())).await.map_err(|_| Refused::Lost)?;
    let auth = tokio::select! {
        auth = connect_packet(socket) => auth?,
        () = ctx.drain.wait_begun() => return Err(Refused::Close(restart())),
        // The client's own patience: it gives up on a server that has not
        // pinged it within this.
        () = tokio::time::sleep(ctx.timing.ping_interval + ctx.timing.pong_timeout) => {
            return Err(Refused::Close(CloseRequest::new(close::POLICY_VIOLATION, "no Socket.IO CONNECT in time")));
        }
    };
    let token = match auth.as_deref().map(packet::auth_token).transpose() {
        Ok(token) => token.flatten().or(upgrade.token),
        Err(e) => return Err(Refused::ConnectError { message: e.0, code: status::BAD_REQUEST }),
    };
    let identity = match token {
        Some(token) => ctx
            .verifier
            .verify(&token)
            .map_err(|e| Refused::ConnectError { message: e.to_string(), code: status::UNAUTHORIZED })?,
        None => connect::authenticate(&ctx.routers, &ctx.verifier, conn, &upgrade.headers)
            .await
            .map_err(|(status, message)| Refused::ConnectError { message, code: status.as_u16() })?,
    };
    // A drain may have begun while `$connect` was asked.
    if ctx.drain.is_draining() {
        return Err(Refused::Close(restart()));
    }
    Ok(identity)
}

/// Reads packets until the client's CONNECT to the main namespace, and
/// returns its `auth`; answers pings and CONNECTs to other namespaces on
/// the way.
async fn connect_packet(socket: &mut Socket) -> Result<Option<Box<RawValue>>, Refused> {
    let refuse = |reason: &str| Err(Refused::Close(CloseRequest::new(close::POLICY_VIOLATION, reason)));
    for _ in 0..MAX_PACKETS_BEFORE_CONNECT {
        let text = match socket.next().await {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(Message::Binary(_))) => return refuse("binary frames are not supported: send a CONNECT packet"),
            Some(Ok(Message::Close(_) | Message::Frame(_))) | Some(Err(_)) | None => return Err(Refused::Lost),
        };
        let answer = match Packet::parse(&text) {
            Ok(Packet::Ping(payload)) => engine::pong(payload),
            Ok(Packet::Pong) => continue,
            Ok(Packet::Close) => return Err(Refused::Lost),
            Ok(Packet::Message(inside)) => match ClientPacket::parse(inside) {
                Ok(ClientPacket::Connect { auth }) => return Ok(auth.map(|auth| auth.to_owned())),
                Ok(ClientPacket::ConnectElsewhere { namespace }) => {
                    packet::connect_error(namespace, INVALID_NAMESPACE, None)
                }
                Ok(_) => return refuse("a Socket.IO session starts with a CONNECT packet (40)"),
                Err(e) => return refuse(&e.0),
            },
            Err(e) => return refuse(e.0),
        };
        socket.send(Message::text(answer)).await.map_err(|_| Refused::Lost)?;
    }
    refuse("a Socket.IO session starts with a CONNECT packet (40)")
}

impl Session {
    /// Serves one text frame from a connected Socket.IO client. Bad input
    /// is answered (in the emit's acknowledgement when it has one, else
    /// with a `$error` event) and the connection stays open.
    pub(super) async fn socketio_text(&mut self, socket: &mut Socket, text: &str) -> Result<(), Ending> {
        let inside = match Packet::parse(text) {
            Ok(Packet::Message(inside)) => inside,
            Ok(Packet::Ping(payload)) => return self.send(socket, engine::pong(payload)).await,
            Ok(Packet::Pong) => return Ok(()),
            Ok(Packet::Close) => return Err(closed_by_client("the client closed the Engine.IO session")),
            Err(e) => return self.bad_frame(socket, status::BAD_REQUEST, e.0, None).await,
        };
        match ClientPacket::parse(inside) {
            Ok(ClientPacket::Event { name, details, ack }) => {
                let frame = ClientFrame { action: name, details, id: ack.map(|id| FrameId::Number(id.into())) };
                let chars = frame.action.chars().count();
                if chars == 0 || chars > herald_proto::client::MAX_ACTION_CHARS {
                    let message =
                        format!("an event name must be 1 to {} characters", herald_proto::client::MAX_ACTION_CHARS);
                    return self.bad_frame(socket, status::BAD_REQUEST, &message, frame.id.as_ref()).await;
                }
                if action::is_system(&frame.action) {
                    self.system_action(socket, frame).await
                } else {
                    self.ask_routers(socket, frame, Purpose::Action).await
                }
            }
            // Herald never asks for acknowledgements.
            Ok(ClientPacket::Ack { .. }) => Ok(()),
            Ok(ClientPacket::Disconnect) => Err(closed_by_client("the client disconnected")),
            Ok(ClientPacket::Connect { .. }) => {
                self.bad_frame(socket, status::BAD_REQUEST, "already connected to \"/\"", None).await
            }
            Ok(ClientPacket::ConnectElsewhere { namespace }) => {
                self.send(socket, packet::connect_error(namespace, INVALID_NAMESPACE, None)).await
            }
            Err(e) => {
                let ack = packet::ack_id_of(inside).map(|id| FrameId::Number(id.into()));
                self.bad_frame(socket, status::BAD_REQUEST, &e.0, ack.as_ref()).await
            }
        }
    }
}

fn closed_by_client(reason: &str) -> Ending {
    Ending::ByEdge(CloseRequest::new(close::NORMAL, reason))
}

/// The acknowledgement a Socket.IO emit asked for with `id`, if it did.
fn ack_of(id: Option<&FrameId>) -> Option<u64> {
    match id {
        Some(FrameId::Number(id)) => id.as_u64(),
        _ => None,
    }
}

/// The reply to an emit: its acknowledgement, or nothing for an emit that
/// asked for none.
pub(super) fn reply<D: Serialize + ?Sized>(details: &D, id: Option<&FrameId>) -> Option<String> {
    Some(packet::ack_frame(ack_of(id)?, Some(&raw(details))))
}

/// An event the edge sends of its own accord (`$reauth`).
pub(super) fn event<D: Serialize + ?Sized>(name: &str, details: &D) -> String {
    packet::event_frame(name, Some(&raw(details)))
}

/// The error answering an emit: in its acknowledgement when it asked for
/// one, else the event `<action>:error` (`$error` for a packet that could
/// not be read), as `/ws` would name it.
pub(super) fn error(action: Option<&str>, code: u16, message: &str, id: Option<&FrameId>) -> String {
    if let Some(ack) = ack_of(id) {
        return packet::ack_error_frame(ack, code, message);
    }
    let name = match action {
        Some(action) => format!("{action}{ERROR_SUFFIX}"),
        None => action::ERROR.to_owned(),
    };
    event(&name, &ErrorDetails { code, message: message.to_owned() })
}

/// The refusal of a frame for its rate, in the emit's acknowledgement when
/// it has one.
pub(super) fn refusal_of(text: &str, code: u16, message: &str) -> String {
    let inside = match Packet::parse(text) {
        Ok(Packet::Message(inside)) => Some(inside),
        _ => None,
    };
    let event = inside.and_then(|inside| match ClientPacket::parse(inside) {
        Ok(ClientPacket::Event { name, ack, .. }) => Some((name, ack)),
        _ => None,
    });
    match event {
        Some((name, ack)) => error(Some(&name), code, message, ack.map(|id| FrameId::Number(id.into())).as_ref()),
        None => error(None, code, message, None),
    }
}

fn raw<D: Serialize + ?Sized>(details: &D) -> Box<RawValue> {
    serde_json::value::to_raw_value(details).expect("frames serialise")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_go_in_acknowledgements_and_errors_say_which_emit() {
        let ack = Some(FrameId::Number(4.into()));
        assert_eq!(reply(&serde_json::json!({"ok": true}), ack.as_ref()).unwrap(), r#"434[{"ok":true}]"#);
        assert_eq!(reply(&serde_json::json!(1), None), None, "an emit without an ack gets no reply");
        assert_eq!(
            error(Some("chat"), 404, "no route", ack.as_ref()),
            r#"434[{"error":{"code":404,"message":"no route"}}]"#
        );
        assert_eq!(error(Some("chat"), 504, "late", None), r#"42["chat:error",{"code":504,"message":"late"}]"#);
        assert_eq!(error(None, 400, "bad", None), r#"42["$error",{"code":400,"message":"bad"}]"#);
        assert_eq!(event("$reauth", &serde_json::json!({"exp": 1})), r#"42["$reauth",{"exp":1}]"#);
    }

    #[test]
    fn a_refusal_for_rate_answers_the_emits_ack() {
        assert_eq!(
            refusal_of(r#"427["chat",1]"#, 429, "slow down"),
            r#"437[{"error":{"code":429,"message":"slow down"}}]"#
        );
        assert_eq!(refusal_of(r#"42["chat",1]"#, 429, "slow"), r#"42["chat:error",{"code":429,"message":"slow"}]"#);
        assert_eq!(refusal_of("3", 429, "slow"), r#"42["$error",{"code":429,"message":"slow"}]"#);
    }
}
