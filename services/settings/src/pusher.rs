//! The Pusher apps Herald serves, read by every role that runs an edge or a
//! router (they must agree on them). One app may come from the
//! `HERALD_PUSHER_*` variables, any number from [`PUSHER_APPS`] (in the
//! config file, `[[pusher.apps]]` tables); with none, the Pusher surfaces
//! answer 404. The binary puts both together and checks them
//! ([`herald_proto::pusher::app::Apps`]).

use herald_proto::pusher::app::App;

use crate::setting::settings;
use crate::value::{inline_tables, text, whole};

settings! {
    /// Pusher apps: credentials, webhooks, limits.
    APPS;
    /// Pusher app id of the app given by variables (PUSHER_APP_ID in a
    /// Laravel .env).
    PUSHER_APP_ID: String = optional("ID", text);
    /// Pusher app key of the app given by variables (PUSHER_APP_KEY).
    PUSHER_KEY: String = optional("KEY", text);
    /// Pusher app secret of the app given by variables (PUSHER_APP_SECRET).
    PUSHER_SECRET: String = secret("SECRET");
    /// URL the app given by variables gets its webhooks at; none are sent
    /// without it.
    PUSHER_WEBHOOK_URL: String = optional("URL", text);
    /// Most users in one presence channel of the app given by variables,
    /// across every edge; one more gets pusher:subscription_error.
    PUSHER_MAX_PRESENCE_MEMBERS: usize = new("N", "100", whole::<usize, 1>);
    /// Largest user_info a presence member of the app given by variables
    /// may have (its JSON text).
    PUSHER_MAX_USER_INFO_BYTES: usize = new("BYTES", "1000", whole::<usize, 1>);
    /// More Pusher apps, as an array of tables (`[[pusher.apps]]` in the
    /// config file): id, key, secret, and optionally webhook_url,
    /// webhook_events, group_prefix, max_presence_members,
    /// max_user_info_bytes, max_event_data_bytes, client_events.
    PUSHER_APPS: Vec<App> = optional_secret("APPS", apps);
}

/// [`PUSHER_APPS`] as inline TOML, which is how the config file hands over
/// an array of tables, and how a flag or a variable gives it. Each app is
/// read on its own terms here; ids and keys are checked against each other
/// (and the app given by variables) when the apps are put together.
fn apps(value: &str) -> Result<Vec<App>, String> {
    inline_tables(value, r#"apps like [{ id = "1", key = "k", secret = "s" }]"#)
}

#[cfg(test)]
mod tests {
    use herald_proto::pusher::app::WebhookKind;

    use super::*;

    #[test]
    fn apps_are_inline_toml_with_defaults() {
        let apps = apps(
            r#"[{ id = "1", key = "k1", secret = "s1" },
                { id = "2", key = "k2", secret = "s2", group_prefix = "two:", webhook_url = "https://h/",
                  webhook_events = ["member_added", "member_removed"], max_presence_members = 7,
                  max_user_info_bytes = 64, max_event_data_bytes = 2048, client_events = false }]"#,
        )
        .unwrap();
        assert_eq!(apps[0], App::new("1", "k1", "s1"));
        let two = &apps[1];
        assert_eq!((two.group_prefix.as_str(), two.webhook_url.as_deref()), ("two:", Some("https://h/")));
        assert_eq!(two.webhook_events, Some(vec![WebhookKind::MemberAdded, WebhookKind::MemberRemoved]));
        assert_eq!((two.max_presence_members, two.max_user_info_bytes, two.max_event_data_bytes), (7, 64, 2048));
        assert!(!two.client_events);
    }

    #[test]
    fn a_typo_in_an_app_says_what_is_wrong() {
        let error = apps(r#"[{ id = "1", key = "k", secret = "s", max_members = 3 }]"#).unwrap_err();
        assert!(error.starts_with("expected apps like ["), "{error}");
        assert!(error.contains("max_members"), "{error}");
        assert!(!error.contains('\n'), "{error}");
        let error = apps(r#"[{ id = "1", key = "k", secret = "s", webhook_events = ["cache_miss"] }]"#).unwrap_err();
        assert!(error.contains("cache_miss"), "{error}");
        assert!(apps(r#"[{ id = "1", key = "k" }]"#).unwrap_err().contains("secret"));
    }
}
