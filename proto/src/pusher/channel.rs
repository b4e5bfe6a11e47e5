//! Pusher channel and event names, and what kind of channel a name is.
//!
//! A Pusher channel is the Herald group of the same name, so names travel
//! through the subject-token encoding like every group name (`.` is legal
//! here and Laravel uses it: `private-App.Models.User.1`).

use thiserror::Error;

/// Longest channel name Pusher accepts, in bytes (names are ASCII).
pub const MAX_CHANNEL_NAME: usize = 164;
/// Longest event name Pusher accepts, in bytes.
pub const MAX_EVENT_NAME: usize = 200;
/// Prefix of events clients send to each other.
pub const CLIENT_EVENT_PREFIX: &str = "client-";
/// Prefix of the channel pusher-js subscribes to after `pusher:signin`,
/// followed by the signed-in user's id.
pub const USER_CHANNEL_PREFIX: &str = "#server-to-user-";

/// What a channel's name makes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelKind {
    /// Anyone may subscribe.
    Public,
    /// Subscribing needs an `auth` signed by the app's secret.
    Private,
    /// Private, and the payloads are end-to-end encrypted: the server
    /// passes them through and never sees the key.
    PrivateEncrypted,
    /// Private, with a member list (`channel_data` names the member).
    Presence,
    /// `#server-to-user-<id>`: only the connection signed in as `<id>`.
    User,
}

/// Why a channel or event name was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BadName {
    #[error("channel name must be 1 to {MAX_CHANNEL_NAME} characters of A-Z a-z 0-9 _ - = @ , . ;")]
    Channel,
    #[error("event name must be 1 to {MAX_EVENT_NAME} characters")]
    Event,
}

impl ChannelKind {
    /// Reads a channel name (`^#?[-a-zA-Z0-9_=@,.;]+$`, at most 164 bytes)
    /// and says what kind of channel it is.
    pub fn of(name: &str) -> Result<ChannelKind, BadName> {
        let body = name.strip_prefix('#').unwrap_or(name);
        let valid = !body.is_empty()
            && name.len() <= MAX_CHANNEL_NAME
            && body
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'=' | b'@' | b',' | b'.' | b';'));
        if !valid {
            return Err(BadName::Channel);
        }
        Ok(if name.starts_with(USER_CHANNEL_PREFIX) {
            ChannelKind::User
        } else if name.starts_with("private-encrypted-") {
            ChannelKind::PrivateEncrypted
        } else if name.starts_with("private-") {
            ChannelKind::Private
        } else if name.starts_with("presence-") {
            ChannelKind::Presence
        } else {
            ChannelKind::Public
        })
    }

    /// Whether subscribing needs a signature.
    pub fn needs_auth(self) -> bool {
        matches!(self, ChannelKind::Private | ChannelKind::PrivateEncrypted | ChannelKind::Presence)
    }

    /// Whether members may send `client-` events on it. Encrypted channels
    /// are excluded as Pusher excludes them: the server cannot check what it
    /// cannot read.
    pub fn allows_client_events(self) -> bool {
        matches!(self, ChannelKind::Private | ChannelKind::Presence)
    }
}

/// Checks an event name's length (Pusher sets no alphabet).
pub fn check_event_name(name: &str) -> Result<(), BadName> {
    if name.is_empty() || name.len() > MAX_EVENT_NAME { Err(BadName::Event) } else { Ok(()) }
}

/// The user channel of a signed-in user.
pub fn user_channel(user: &str) -> String {
    format!("{USER_CHANNEL_PREFIX}{user}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_the_prefix() {
        assert_eq!(ChannelKind::of("chat"), Ok(ChannelKind::Public));
        assert_eq!(ChannelKind::of("private-App.Models.User.1"), Ok(ChannelKind::Private));
        assert_eq!(ChannelKind::of("private-encrypted-x"), Ok(ChannelKind::PrivateEncrypted));
        assert_eq!(ChannelKind::of("presence-room;1,a=b@c"), Ok(ChannelKind::Presence));
        assert_eq!(ChannelKind::of("#server-to-user-42"), Ok(ChannelKind::User));
        assert_eq!(ChannelKind::of("#other"), Ok(ChannelKind::Public));
    }

    #[test]
    fn refuses_what_pusher_refuses() {
        let too_long = "a".repeat(MAX_CHANNEL_NAME + 1);
        for bad in ["", "#", "a b", "a/b", "a*", "é", "##a", too_long.as_str()] {
            assert_eq!(ChannelKind::of(bad), Err(BadName::Channel), "{bad:?}");
        }
        assert!(ChannelKind::of(&"a".repeat(MAX_CHANNEL_NAME)).is_ok());
    }

    #[test]
    fn only_private_and_presence_channels_carry_client_events() {
        let allowed: Vec<_> = ["chat", "private-a", "private-encrypted-a", "presence-a", "#server-to-user-1"]
            .into_iter()
            .filter(|name| ChannelKind::of(name).unwrap().allows_client_events())
            .collect();
        assert_eq!(allowed, ["private-a", "presence-a"]);
    }

    #[test]
    fn event_names_are_bounded() {
        assert!(check_event_name("client-typing").is_ok());
        assert_eq!(check_event_name(""), Err(BadName::Event));
        assert_eq!(check_event_name(&"e".repeat(MAX_EVENT_NAME + 1)), Err(BadName::Event));
    }
}
