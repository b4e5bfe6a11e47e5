//! What a handler answers.

use herald_proto::client::ErrorDetails;
use herald_proto::handler::{DisconnectEffect, Effect, HandlerResponse, PublishEffect, Target};
use herald_proto::status;
use serde::Serialize;
use serde_json::value::RawValue;

/// A handler's answer: a reply, an error, or nothing, plus effects.
#[derive(Debug, Clone, Default)]
pub struct Reply {
    response: HandlerResponse,
}

impl Reply {
    /// Replies to the client with `details`.
    pub fn details(details: impl Serialize) -> Reply {
        let raw = serde_json::to_string(&details).ok().and_then(|json| RawValue::from_string(json).ok());
        match raw {
            Some(raw) => Reply { response: HandlerResponse { details: Some(raw), ..HandlerResponse::default() } },
            None => Reply::error(status::INTERNAL_ERROR, "the handler's reply could not be encoded"),
        }
    }

    /// Replies to the client with no details.
    pub fn empty() -> Reply {
        Reply::default()
    }

    /// Sends nothing back to the client.
    pub fn noreply() -> Reply {
        Reply { response: HandlerResponse { noreply: true, ..HandlerResponse::default() } }
    }

    /// Replies with `<action>:error` and this code and message.
    pub fn error(code: u16, message: impl Into<String>) -> Reply {
        let error = ErrorDetails { code, message: message.into() };
        Reply { response: HandlerResponse { error: Some(error), ..HandlerResponse::default() } }
    }

    /// Also adds the client's connection to `group`.
    pub fn join(self, group: impl Into<String>) -> Reply {
        self.effect(Effect::Join(group.into()))
    }

    /// Also removes the client's connection from `group`.
    pub fn leave(self, group: impl Into<String>) -> Reply {
        self.effect(Effect::Leave(group.into()))
    }

    /// Also closes the client's connection, after the reply.
    pub fn disconnect(self, code: u16, reason: impl Into<String>) -> Reply {
        self.effect(Effect::Disconnect(DisconnectEffect { code, reason: reason.into() }))
    }

    /// Also sends a frame to everyone `to` names.
    pub fn publish(self, to: Target, action: impl Into<String>, details: impl Serialize) -> Reply {
        let details = serde_json::to_value(details).unwrap_or(serde_json::Value::Null);
        self.effect(Effect::Publish(PublishEffect { to, action: action.into(), details }))
    }

    fn effect(mut self, effect: Effect) -> Reply {
        self.response.effects.push(effect);
        self
    }

    pub(crate) fn into_response(self) -> HandlerResponse {
        self.response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(reply: Reply) -> String {
        serde_json::to_string(&reply.into_response()).unwrap()
    }

    #[test]
    fn builds_the_handler_response_format() {
        assert_eq!(json(Reply::details(serde_json::json!({"ok": true}))), r#"{"details":{"ok":true}}"#);
        assert_eq!(json(Reply::empty()), "{}");
        assert_eq!(json(Reply::noreply()), r#"{"noreply":true}"#);
        assert_eq!(json(Reply::error(409, "taken")), r#"{"error":{"code":409,"message":"taken"}}"#);
        let room = Target { groups: vec!["room:1".into()], ..Target::default() };
        assert_eq!(
            json(
                Reply::empty()
                    .join("room:1")
                    .publish(room, "chat/joined", "ann")
                    .leave("lobby")
                    .disconnect(4000, "bye")
            ),
            r#"{"effects":[{"join":"room:1"},{"publish":{"to":{"groups":["room:1"]},"action":"chat/joined","details":"ann"}},{"leave":"lobby"},{"disconnect":{"code":4000,"reason":"bye"}}]}"#
        );
    }
}
