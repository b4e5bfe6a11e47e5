//! The Pusher apps every role that runs an edge or a router reads
//! (`herald_settings::pusher`): the app given by `HERALD_PUSHER_*`
//! variables first, then those of `HERALD_PUSHER_APPS` (the config file's
//! `[[pusher.apps]]`), checked together so that a bad app, or two apps
//! sharing an id or a key, stops start-up in one line.

use herald_proto::pusher::app::{App, Apps};
use herald_settings::pusher::{
    PUSHER_APP_ID, PUSHER_APPS, PUSHER_KEY, PUSHER_MAX_PRESENCE_MEMBERS, PUSHER_MAX_USER_INFO_BYTES, PUSHER_SECRET,
    PUSHER_WEBHOOK_URL,
};
use herald_settings::{SettingError, Settings};

/// What a partly given app by variables is missing, and how to fix it.
const ALL_THREE: &str =
    "an app given by variables needs HERALD_PUSHER_APP_ID, HERALD_PUSHER_KEY and HERALD_PUSHER_SECRET";

/// Reads and checks the Pusher apps; none is fine (the Pusher surfaces
/// then answer 404).
pub fn read_apps(settings: &Settings) -> Result<Apps, SettingError> {
    let listed = settings.given(&PUSHER_APPS)?;
    let id = settings.given(&PUSHER_APP_ID)?;
    let key = settings.given(&PUSHER_KEY)?;
    let secret = settings.given(&PUSHER_SECRET)?;
    let webhook_url = settings.given(&PUSHER_WEBHOOK_URL)?;
    let by_variables = match (id, key, secret) {
        (Some(id), Some(key), Some(secret)) => Some(App {
            webhook_url,
            max_presence_members: settings.get(&PUSHER_MAX_PRESENCE_MEMBERS)?,
            max_user_info_bytes: settings.get(&PUSHER_MAX_USER_INFO_BYTES)?,
            ..App::new(&id, &key, &secret)
        }),
        (None, None, None) if webhook_url.is_some() => {
            return Err(SettingError::missing(
                &PUSHER_APP_ID,
                format!("HERALD_PUSHER_WEBHOOK_URL is set; {ALL_THREE}"),
            ));
        }
        (None, None, None) => None,
        (None, _, _) => return Err(SettingError::missing(&PUSHER_APP_ID, ALL_THREE)),
        (_, None, _) => return Err(SettingError::missing(&PUSHER_KEY, ALL_THREE)),
        (_, _, None) => return Err(SettingError::missing(&PUSHER_SECRET, ALL_THREE)),
    };
    let from_list = listed.is_some();
    let apps = by_variables.into_iter().chain(listed.unwrap_or_default()).collect();
    // A clash, or a bad app, is reported against the list when there is
    // one, else against the variables' app.
    Apps::new(apps).map_err(|e| match from_list {
        true => settings.refused(&PUSHER_APPS, e.to_string()),
        false => settings.refused(&PUSHER_APP_ID, e.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use herald_settings::{ConfigFile, Flags, SettingList, Spec, fixed_env};

    use super::*;

    /// A command reading the Pusher apps alone.
    struct AppsOnly;

    impl SettingList for AppsOnly {
        const GROUPS: &'static [&'static [&'static Spec]] = &[herald_settings::pusher::APPS];
    }

    fn read(vars: &[(&str, &str)], file: Option<&str>) -> Result<Apps, SettingError> {
        let file =
            file.map(|text| ConfigFile::parse(std::path::Path::new("herald.toml"), text, AppsOnly::GROUPS).unwrap());
        read_apps(&Settings::new(Flags::<AppsOnly>::default(), fixed_env(vars), file))
    }

    const ENV_APP: [(&str, &str); 3] =
        [("HERALD_PUSHER_APP_ID", "1"), ("HERALD_PUSHER_KEY", "k1"), ("HERALD_PUSHER_SECRET", "s1")];

    #[test]
    fn no_app_is_fine() {
        assert!(read(&[], None).unwrap().is_empty());
    }

    #[test]
    fn one_app_from_variables_and_more_from_the_file() {
        let mut vars = ENV_APP.to_vec();
        vars.push(("HERALD_PUSHER_WEBHOOK_URL", "http://127.0.0.1:9/hooks"));
        let file = r#"
            [[pusher.apps]]
            id = "2"
            key = "k2"
            secret = "s2"
            group_prefix = "two:"
        "#;
        let apps = read(&vars, Some(file)).unwrap();
        let first = apps.by_key("k1").unwrap();
        assert_eq!((first.id.as_str(), first.secret.as_str()), ("1", "s1"));
        assert_eq!(first.webhook_url.as_deref(), Some("http://127.0.0.1:9/hooks"));
        assert_eq!(apps.by_id("2").unwrap().group("chat"), "two:chat");
        assert_eq!(read(&[], Some(file)).unwrap().iter().count(), 1);
    }

    #[test]
    fn the_variables_apps_presence_limits_default_to_pushers_and_can_be_set() {
        let apps = read(&ENV_APP, None).unwrap();
        let app = apps.by_key("k1").unwrap();
        assert_eq!(app.max_presence_members, herald_proto::pusher::app::DEFAULT_MAX_PRESENCE_MEMBERS);
        assert_eq!(app.max_user_info_bytes, herald_proto::pusher::app::DEFAULT_MAX_USER_INFO_BYTES);
        let mut vars = ENV_APP.to_vec();
        vars.extend([("HERALD_PUSHER_MAX_PRESENCE_MEMBERS", "2"), ("HERALD_PUSHER_MAX_USER_INFO_BYTES", "64")]);
        let apps = read(&vars, None).unwrap();
        let app = apps.by_key("k1").unwrap();
        assert_eq!((app.max_presence_members, app.max_user_info_bytes), (2, 64));
        let mut none = ENV_APP.to_vec();
        none.push(("HERALD_PUSHER_MAX_PRESENCE_MEMBERS", "0"));
        assert!(read(&none, None).is_err());
    }

    #[test]
    fn a_partial_app_names_what_is_missing() {
        let error = read(&ENV_APP[..2], None).unwrap_err().to_string();
        assert_eq!(error, format!("missing setting HERALD_PUSHER_SECRET: {ALL_THREE}"));
        let error = read(&ENV_APP[1..], None).unwrap_err().to_string();
        assert!(error.starts_with("missing setting HERALD_PUSHER_APP_ID: "), "{error}");
        let error = read(&[("HERALD_PUSHER_WEBHOOK_URL", "http://h/")], None).unwrap_err().to_string();
        assert!(
            error.starts_with("missing setting HERALD_PUSHER_APP_ID: HERALD_PUSHER_WEBHOOK_URL is set;"),
            "{error}"
        );
    }

    #[test]
    fn clashing_or_bad_apps_stop_start_up_in_one_line_without_secrets() {
        let file = "[[pusher.apps]]\nid = \"2\"\nkey = \"k1\"\nsecret = \"hidden-secret\"\n";
        let error = read(&ENV_APP, Some(file)).unwrap_err().to_string();
        assert_eq!(
            error,
            r#"bad setting HERALD_PUSHER_APPS (from config file herald.toml, key pusher.apps): Pusher app "2": app "1" has the same key"#
        );
        let error =
            read(&[("HERALD_PUSHER_APPS", r#"[{ id = "1", key = "k", secret = "s", max_members = 1 }]"#)], None)
                .unwrap_err()
                .to_string();
        assert!(error.starts_with("bad setting HERALD_PUSHER_APPS (from environment): expected apps like"), "{error}");
        assert!(!error.contains('\n'), "{error}");
        let bad_key = [("HERALD_PUSHER_APP_ID", "1"), ("HERALD_PUSHER_KEY", "a b"), ("HERALD_PUSHER_SECRET", "s")];
        let error = read(&bad_key, None).unwrap_err().to_string();
        assert_eq!(
            error,
            r#"bad setting HERALD_PUSHER_APP_ID="1" (from environment): Pusher app "1": key "a b" may hold only letters, digits, - _ and ."#
        );
        let mut with_hook = ENV_APP.to_vec();
        with_hook.push(("HERALD_PUSHER_WEBHOOK_URL", "hooks.local"));
        assert!(read(&with_hook, None).unwrap_err().to_string().contains("is not an http:// or https:// URL"));
    }
}
