//! Pusher apps: the credentials and limits each app is served with, and how
//! its channels map to Herald groups.
//!
//! Edges (which take `/app/<key>` connections) and routers (which serve
//! `/apps/<id>/...`) read the same table, so they agree on both: channel `C`
//! of an app is the group `<group_prefix>C`. Apps with the same prefix share
//! their channels; the default prefix is empty, so channel `C` is group `C`
//! and Herald clients, NATS publishes and `/api/publish` meet Pusher clients
//! there. A prefix holding a character channel names cannot hold (`:` say,
//! as in `app2:`) can never make one app's group another app's channel.

use std::fmt;
use std::sync::Arc;

use serde::Deserialize;
use thiserror::Error;

use super::channel::ChannelKind;

/// Default of [`App::max_presence_members`], as Pusher's.
pub const DEFAULT_MAX_PRESENCE_MEMBERS: usize = 100;
/// Default of [`App::max_user_info_bytes`], as Pusher's.
pub const DEFAULT_MAX_USER_INFO_BYTES: usize = 1000;
/// Default of [`App::max_event_data_bytes`]: Pusher's 10 KB.
pub const DEFAULT_MAX_EVENT_DATA_BYTES: usize = 10 * 1024;

/// One Pusher app, as the settings give it (a table of the TOML file's
/// `[[pusher.apps]]`, or the `HERALD_PUSHER_*` variables).
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct App {
    /// `PUSHER_APP_ID`: names the app in the HTTP API's paths.
    pub id: String,
    /// `PUSHER_APP_KEY`: names the app in connection URLs and signatures.
    pub key: String,
    /// `PUSHER_APP_SECRET`: signs and checks everything.
    pub secret: String,
    /// Where webhooks go; none are sent without it.
    #[serde(default)]
    pub webhook_url: Option<String>,
    /// Which webhook events are sent; every kind when absent.
    #[serde(default)]
    pub webhook_events: Option<Vec<WebhookKind>>,
    /// Prepended to a channel's name to make its Herald group.
    #[serde(default)]
    pub group_prefix: String,
    /// Members of one presence channel; one more is refused.
    #[serde(default = "default_max_presence_members")]
    pub max_presence_members: usize,
    /// Largest `user_info` of a presence member, as JSON text.
    #[serde(default = "default_max_user_info_bytes")]
    pub max_user_info_bytes: usize,
    /// Largest `data` of an event, triggered or sent by a client.
    #[serde(default = "default_max_event_data_bytes")]
    pub max_event_data_bytes: usize,
    /// Whether members of private and presence channels may send `client-`
    /// events.
    #[serde(default = "default_client_events")]
    pub client_events: bool,
}

fn default_max_presence_members() -> usize {
    DEFAULT_MAX_PRESENCE_MEMBERS
}

fn default_max_user_info_bytes() -> usize {
    DEFAULT_MAX_USER_INFO_BYTES
}

fn default_max_event_data_bytes() -> usize {
    DEFAULT_MAX_EVENT_DATA_BYTES
}

fn default_client_events() -> bool {
    true
}

/// The webhook events Pusher sends, by the `name` they carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookKind {
    ChannelOccupied,
    ChannelVacated,
    MemberAdded,
    MemberRemoved,
    ClientEvent,
}

impl WebhookKind {
    /// The event's `name` in a webhook body.
    pub fn name(self) -> &'static str {
        match self {
            WebhookKind::ChannelOccupied => "channel_occupied",
            WebhookKind::ChannelVacated => "channel_vacated",
            WebhookKind::MemberAdded => "member_added",
            WebhookKind::MemberRemoved => "member_removed",
            WebhookKind::ClientEvent => "client_event",
        }
    }

    /// The kind whose `name` this is.
    pub fn of(name: &str) -> Option<WebhookKind> {
        [
            WebhookKind::ChannelOccupied,
            WebhookKind::ChannelVacated,
            WebhookKind::MemberAdded,
            WebhookKind::MemberRemoved,
            WebhookKind::ClientEvent,
        ]
        .into_iter()
        .find(|kind| kind.name() == name)
    }
}

impl App {
    /// An app with these credentials and every default.
    pub fn new(id: &str, key: &str, secret: &str) -> App {
        App {
            id: id.to_owned(),
            key: key.to_owned(),
            secret: secret.to_owned(),
            webhook_url: None,
            webhook_events: None,
            group_prefix: String::new(),
            max_presence_members: DEFAULT_MAX_PRESENCE_MEMBERS,
            max_user_info_bytes: DEFAULT_MAX_USER_INFO_BYTES,
            max_event_data_bytes: DEFAULT_MAX_EVENT_DATA_BYTES,
            client_events: true,
        }
    }

    /// The Herald group of channel `channel`.
    pub fn group(&self, channel: &str) -> String {
        format!("{}{channel}", self.group_prefix)
    }

    /// The channel of this app that group `group` is, if it is one.
    pub fn channel<'g>(&self, group: &'g str) -> Option<&'g str> {
        group.strip_prefix(self.group_prefix.as_str()).filter(|channel| ChannelKind::of(channel).is_ok())
    }

    /// Whether events of `kind` go to the app's webhook (there is one, and
    /// it takes them).
    pub fn wants_webhook(&self, kind: WebhookKind) -> bool {
        self.webhook_url.is_some() && self.webhook_events.as_ref().is_none_or(|kinds| kinds.contains(&kind))
    }

    /// The first thing wrong with this app on its own.
    fn check(&self) -> Result<(), String> {
        check_name("id", &self.id)?;
        check_name("key", &self.key)?;
        if self.secret.is_empty() {
            return Err("secret is missing".to_owned());
        }
        if let Some(url) = &self.webhook_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(format!("webhook_url {url:?} is not an http:// or https:// URL"));
        }
        for (name, value) in [
            ("max_presence_members", self.max_presence_members),
            ("max_user_info_bytes", self.max_user_info_bytes),
            ("max_event_data_bytes", self.max_event_data_bytes),
        ] {
            if value == 0 {
                return Err(format!("{name} must be at least 1"));
            }
        }
        Ok(())
    }
}

/// An id or a key travels in URL paths (`/app/<key>`, `/apps/<id>/...`):
/// letters, digits, `-`, `_` and `.` only.
fn check_name(what: &str, value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err(format!("{what} is missing"));
    }
    if !value.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')) {
        return Err(format!("{what} {value:?} may hold only letters, digits, - _ and ."));
    }
    Ok(())
}

/// Never shows the secret.
impl fmt::Debug for App {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("App")
            .field("id", &self.id)
            .field("key", &self.key)
            .field("secret", &"<hidden>")
            .field("webhook_url", &self.webhook_url)
            .field("webhook_events", &self.webhook_events)
            .field("group_prefix", &self.group_prefix)
            .field("max_presence_members", &self.max_presence_members)
            .field("max_user_info_bytes", &self.max_user_info_bytes)
            .field("max_event_data_bytes", &self.max_event_data_bytes)
            .field("client_events", &self.client_events)
            .finish()
    }
}

/// An app that cannot be served, and why, in one line.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("Pusher app {app}: {problem}")]
pub struct BadApp {
    /// The app's id, quoted, or its place in the list when it has none.
    pub app: String,
    pub problem: String,
}

/// Every app a process serves, each checked, no two sharing an id or a key.
/// Each app is shared (`Arc`): a session or a request holds the app it
/// belongs to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Apps {
    apps: Vec<Arc<App>>,
}

impl Apps {
    /// Checks each app and that ids and keys are unique.
    pub fn new(apps: Vec<App>) -> Result<Apps, BadApp> {
        for (index, app) in apps.iter().enumerate() {
            let bad = |problem: String| BadApp {
                app: if app.id.is_empty() { format!("#{}", index + 1) } else { format!("{:?}", app.id) },
                problem,
            };
            app.check().map_err(bad)?;
            let earlier = &apps[..index];
            if earlier.iter().any(|other| other.id == app.id) {
                return Err(bad("another app has the same id".to_owned()));
            }
            if let Some(other) = earlier.iter().find(|other| other.key == app.key) {
                return Err(bad(format!("app {:?} has the same key", other.id)));
            }
        }
        Ok(Apps { apps: apps.into_iter().map(Arc::new).collect() })
    }

    /// No app: the Pusher surfaces answer 404.
    pub fn is_empty(&self) -> bool {
        self.apps.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<App>> {
        self.apps.iter()
    }

    /// The app with this id (the HTTP API's paths name apps by id).
    pub fn by_id(&self, id: &str) -> Option<&Arc<App>> {
        self.apps.iter().find(|app| app.id == id)
    }

    /// The app with this key (connections and signatures name apps by key).
    pub fn by_key(&self, key: &str) -> Option<&Arc<App>> {
        self.apps.iter().find(|app| app.key == key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(id: &str, key: &str) -> App {
        App::new(id, key, "s3cret")
    }

    #[test]
    fn channels_are_groups_under_the_apps_prefix() {
        let plain = app("1", "k1");
        assert_eq!(plain.group("private-App.Models.User.1"), "private-App.Models.User.1");
        assert_eq!(plain.channel("presence-room"), Some("presence-room"));
        let second = App { group_prefix: "app2:".into(), ..app("2", "k2") };
        assert_eq!(second.group("chat"), "app2:chat");
        assert_eq!(second.channel("app2:chat"), Some("chat"));
        assert_eq!(second.channel("chat"), None);
        // A prefix with `:` never makes another app's group a channel here.
        assert_eq!(plain.channel("app2:chat"), None);
        assert_eq!(plain.channel("room 1"), None, "Herald groups that are no channel name are skipped");
    }

    #[test]
    fn webhooks_go_where_they_are_wanted() {
        let none = app("1", "k");
        assert!(!none.wants_webhook(WebhookKind::MemberAdded));
        let all = App { webhook_url: Some("http://hooks/".into()), ..app("1", "k") };
        assert!(all.wants_webhook(WebhookKind::MemberAdded) && all.wants_webhook(WebhookKind::ClientEvent));
        let some = App { webhook_events: Some(vec![WebhookKind::ChannelVacated]), ..all };
        assert!(some.wants_webhook(WebhookKind::ChannelVacated) && !some.wants_webhook(WebhookKind::MemberAdded));
        for kind in [WebhookKind::ChannelOccupied, WebhookKind::ClientEvent] {
            assert_eq!(WebhookKind::of(kind.name()), Some(kind));
        }
        assert_eq!(WebhookKind::of("cache_miss"), None);
    }

    #[test]
    fn apps_are_found_by_id_and_by_key() {
        let apps = Apps::new(vec![app("1", "k1"), app("2", "k2")]).unwrap();
        assert_eq!(apps.by_id("2").map(|app| app.key.as_str()), Some("k2"));
        assert_eq!(apps.by_key("k1").map(|app| app.id.as_str()), Some("1"));
        assert!(apps.by_id("k1").is_none() && apps.by_key("3").is_none());
        assert!(Apps::default().is_empty());
    }

    #[test]
    fn a_bad_app_is_one_line_naming_it() {
        let error = |apps: Vec<App>| Apps::new(apps).unwrap_err().to_string();
        assert_eq!(error(vec![app("1", "k"), app("1", "k2")]), r#"Pusher app "1": another app has the same id"#);
        assert_eq!(error(vec![app("1", "k"), app("2", "k")]), r#"Pusher app "2": app "1" has the same key"#);
        assert_eq!(error(vec![App::new("1", "k", "")]), r#"Pusher app "1": secret is missing"#);
        assert_eq!(error(vec![app("1", "k"), app("", "k2")]), "Pusher app #2: id is missing");
        assert_eq!(
            error(vec![app("1", "a/b")]),
            r#"Pusher app "1": key "a/b" may hold only letters, digits, - _ and ."#
        );
        let hook = App { webhook_url: Some("hooks.example.com".into()), ..app("1", "k") };
        assert_eq!(
            error(vec![hook]),
            r#"Pusher app "1": webhook_url "hooks.example.com" is not an http:// or https:// URL"#
        );
        let zero = App { max_presence_members: 0, ..app("1", "k") };
        assert_eq!(error(vec![zero]), r#"Pusher app "1": max_presence_members must be at least 1"#);
    }

    #[test]
    fn the_secret_is_never_shown() {
        let shown = format!("{:?}", app("1", "k"));
        assert!(!shown.contains("s3cret") && shown.contains("<hidden>"), "{shown}");
    }
}
