//! The `info` attributes a call may ask for about a channel
//! (`subscription_count`, `user_count`), and how a channel is told.

use herald_proto::pusher::channel::ChannelKind;
use herald_proto::pusher::cluster::ChannelTotals;
use serde_json::{Map, Value, json};

use super::error::PusherError;

/// Which attributes were asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Info {
    pub subscription_count: bool,
    pub user_count: bool,
}

impl Info {
    /// Reads `info=subscription_count,user_count` (either, both, or none).
    pub fn parse(info: Option<&str>) -> Result<Info, PusherError> {
        let mut wanted = Info::default();
        for attribute in info.unwrap_or_default().split(',').map(str::trim).filter(|a| !a.is_empty()) {
            match attribute {
                "subscription_count" => wanted.subscription_count = true,
                "user_count" => wanted.user_count = true,
                other => {
                    return Err(PusherError::bad_request(format!(
                        "Unknown info attribute {other:?}: use subscription_count or user_count"
                    )));
                }
            }
        }
        Ok(wanted)
    }

    /// Whether anything was asked for.
    pub fn any(self) -> bool {
        self.subscription_count || self.user_count
    }

    /// The attributes of a channel: `user_count` only for a presence
    /// channel, as only presence channels have users.
    pub fn of(self, kind: ChannelKind, totals: &ChannelTotals) -> Map<String, Value> {
        let mut attributes = Map::new();
        if self.subscription_count {
            attributes.insert("subscription_count".into(), json!(totals.subscriptions));
        }
        if self.user_count && kind == ChannelKind::Presence {
            attributes.insert("user_count".into(), json!(totals.users.len()));
        }
        attributes
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn reads_the_attributes_and_refuses_others() {
        assert_eq!(Info::parse(None).unwrap(), Info::default());
        assert_eq!(Info::parse(Some("")).unwrap(), Info::default());
        let both = Info::parse(Some("user_count, subscription_count")).unwrap();
        assert!(both.user_count && both.subscription_count && both.any());
        assert!(Info::parse(Some("user_count,members")).is_err());
    }

    #[test]
    fn only_presence_channels_have_a_user_count() {
        let totals = ChannelTotals { subscriptions: 3, users: BTreeSet::from(["1".to_owned(), "2".to_owned()]) };
        let both = Info { subscription_count: true, user_count: true };
        assert_eq!(
            Value::Object(both.of(ChannelKind::Presence, &totals)),
            json!({"subscription_count": 3, "user_count": 2})
        );
        assert_eq!(Value::Object(both.of(ChannelKind::Private, &totals)), json!({"subscription_count": 3}));
        assert!(Info::default().of(ChannelKind::Presence, &totals).is_empty());
    }
}
