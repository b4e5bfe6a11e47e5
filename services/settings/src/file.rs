//! The config file: TOML whose keys are the settings' names in lower snake
//! case, at the top (`nats_url = ...`) or spread over sections (`[nats]`
//! then `url = ...`), as many levels deep as the names go.
//!
//! A table is a section when its path starts some setting's name
//! (`[nats]`: `nats_url`); any other value, a table or an array of tables
//! included, is the value of the setting its path names. Every value is
//! handed on as text, read by the setting's own `parse` like a flag's:
//! strings as they are, numbers and booleans as written, an array of
//! scalars as a comma list, and a table or an array of tables as inline
//! TOML (`[{ id = "1" }]`), which is also how such a setting is given as a
//! flag or a variable.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use crate::Spec;
use crate::error::SettingError;
use crate::flags::specs;

/// Settings read from a TOML config file.
#[derive(Debug)]
pub struct ConfigFile {
    /// Where it was read from, for error messages.
    pub(crate) path: Arc<Path>,
    /// Values by setting name: the key as written (`nats.url`) and the
    /// value as text.
    pub(crate) values: HashMap<&'static str, (String, String)>,
}

impl ConfigFile {
    /// Reads the file at `path`, which may hold only settings of `groups`.
    pub fn read(path: &Path, groups: &'static [&'static [&'static Spec]]) -> Result<ConfigFile, SettingError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| SettingError::ConfigFile { path: path.to_owned(), problem: format!("cannot read it: {e}") })?;
        ConfigFile::parse(path, &text, groups)
    }

    /// Parses `text`, the contents of `path`.
    pub fn parse(
        path: &Path,
        text: &str,
        groups: &'static [&'static [&'static Spec]],
    ) -> Result<ConfigFile, SettingError> {
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| SettingError::ConfigFile {
            path: path.to_owned(),
            problem: toml_problem(text, &e),
        })?;
        let mut file = ConfigFile { path: path.into(), values: HashMap::new() };
        file.take(table, &[], groups)?;
        Ok(file)
    }

    /// Takes the entries of `table`, found under the sections `section`.
    fn take(
        &mut self,
        table: toml::Table,
        section: &[&str],
        groups: &'static [&'static [&'static Spec]],
    ) -> Result<(), SettingError> {
        for (key, value) in table {
            let path: Vec<&str> = section.iter().copied().chain([key.as_str()]).collect();
            let name = path.join("_");
            let written = path.join(".");
            if let toml::Value::Table(inner) = value {
                if specs(groups).any(|spec| spec.file_key().starts_with(&format!("{name}_"))) {
                    self.take(inner, &path, groups)?;
                    continue;
                }
                self.insert(name, written, toml::Value::Table(inner), groups)?;
            } else {
                self.insert(name, written, value, groups)?;
            }
        }
        Ok(())
    }

    /// Records `value` for the setting named `name`, written as `written`.
    fn insert(
        &mut self,
        name: String,
        written: String,
        value: toml::Value,
        groups: &'static [&'static [&'static Spec]],
    ) -> Result<(), SettingError> {
        let Some(spec) = specs(groups).find(|spec| spec.file_key() == name) else {
            return Err(SettingError::UnknownKey { key: written, path: self.path.to_path_buf() });
        };
        if let Some((first, _)) = self.values.get(spec.name) {
            return Err(SettingError::ConfigFile {
                path: self.path.to_path_buf(),
                problem: format!("{first} and {written} are the same setting, {}; keep one", spec.env_var()),
            });
        }
        self.values.insert(spec.name, (written, as_text(value)));
        Ok(())
    }
}

/// A TOML parse error in one line, with the line it is on.
fn toml_problem(text: &str, error: &toml::de::Error) -> String {
    let message = error.message().lines().collect::<Vec<_>>().join(" ");
    match error.span() {
        Some(span) => format!("line {}: {message}", text[..span.start].matches('\n').count() + 1),
        None => message,
    }
}

/// A TOML value as the text a flag would give.
fn as_text(value: toml::Value) -> String {
    match value {
        toml::Value::String(text) => text,
        toml::Value::Array(items) if items.iter().all(is_scalar) => {
            items.into_iter().map(as_text).collect::<Vec<_>>().join(",")
        }
        other => other.to_string(),
    }
}

fn is_scalar(value: &toml::Value) -> bool {
    !matches!(value, toml::Value::Array(_) | toml::Value::Table(_))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::testing::{APPS, App, LISTEN, MAX_MESSAGE_BYTES, NATS_NAME, NATS_URL, file, settings};
    use crate::{Origin, Raw};

    #[test]
    fn an_unknown_key_is_refused_naming_it() {
        let error = file("listen = \"0.0.0.0:1\"\nmax_msg_bytes = 5").unwrap_err();
        assert_eq!(error.to_string(), r#"unknown setting "max_msg_bytes" in config file herald.toml"#);
        let upper = file("LISTEN = \"0.0.0.0:1\"").unwrap_err();
        assert_eq!(upper.to_string(), r#"unknown setting "LISTEN" in config file herald.toml"#);
        let in_section = file("[nats]\nurl = \"nats://a:4222\"\nulr = \"nats://b:4222\"").unwrap_err();
        assert_eq!(in_section.to_string(), r#"unknown setting "nats.ulr" in config file herald.toml"#);
        let no_such_section = file("[natz]\nurl = \"nats://a:4222\"").unwrap_err();
        assert_eq!(no_such_section.to_string(), r#"unknown setting "natz" in config file herald.toml"#);
    }

    #[test]
    fn a_file_that_is_not_toml_is_one_line_with_its_line_number() {
        let error = file("listen = \"0.0.0.0:1\"\nmax_message_bytes = = 5\n").unwrap_err().to_string();
        assert!(error.starts_with("bad config file herald.toml: line 2: "), "{error}");
        assert!(!error.contains('\n'), "{error}");
    }

    #[test]
    fn values_of_any_scalar_type_and_arrays_of_them_are_taken_as_text() {
        let s = settings(&[], &[], Some("max_message_bytes = 1024\nnats_url = [\"nats://a:1\", \"nats://b:2\"]"));
        assert_eq!(s.get(&MAX_MESSAGE_BYTES).unwrap(), 1024);
        assert_eq!(s.raw(&NATS_URL).unwrap().value, "nats://a:1,nats://b:2");
        assert_eq!(s.get(&NATS_URL).unwrap(), ["nats://a:1", "nats://b:2"]);
        let table = settings(&[], &[], Some("listen = { host = \"x\" }"));
        assert_eq!(
            table.get(&LISTEN).unwrap_err().to_string(),
            r#"bad setting HERALD_LISTEN="{ host = \"x\" }" (from config file herald.toml, key listen): expected an IP address and port, like 0.0.0.0:8080"#
        );
    }

    #[test]
    fn a_section_holds_the_settings_its_name_starts() {
        let s = settings(&[], &[], Some("listen = \"0.0.0.0:1\"\n\n[nats]\nurl = \"nats://a:1\"\nname = \"edge-7\"\n"));
        assert_eq!(s.get(&NATS_URL).unwrap(), ["nats://a:1"]);
        assert_eq!(s.given(&NATS_NAME).unwrap().as_deref(), Some("edge-7"));
        let origin = Origin::File { path: Path::new("herald.toml").into(), key: "nats.url".to_owned() };
        assert_eq!(s.raw(&NATS_URL), Some(Raw { value: "nats://a:1", origin }));
        let dotted = settings(&[], &[], Some("nats.name = \"edge-8\""));
        assert_eq!(dotted.given(&NATS_NAME).unwrap().as_deref(), Some("edge-8"));
        let bad = settings(&[], &[], Some("[nats]\nurl = 5\n[max.message]\nbytes = 5"));
        assert_eq!(
            bad.get(&MAX_MESSAGE_BYTES).unwrap_err().to_string(),
            r#"bad setting HERALD_MAX_MESSAGE_BYTES="5" (from config file herald.toml, key max.message.bytes): expected a whole number of at least 256"#
        );
    }

    #[test]
    fn a_setting_given_twice_in_the_file_is_refused() {
        let error = file("nats_url = \"nats://a:1\"\n[nats]\nurl = \"nats://b:2\"").unwrap_err();
        assert_eq!(
            error.to_string(),
            "bad config file herald.toml: nats.url and nats_url are the same setting, HERALD_NATS_URL; keep one"
        );
    }

    #[test]
    fn an_array_of_tables_is_one_setting_given_as_inline_toml_there_and_everywhere_else() {
        let text = "[[apps]]\nid = \"1\"\nkey = \"k1\"\n\n[[apps]]\nid = \"2\"\nkey = \"k2\"\n";
        let expected = vec![App { id: "1".into(), key: "k1".into() }, App { id: "2".into(), key: "k2".into() }];
        assert_eq!(settings(&[], &[], Some(text)).given(&APPS).unwrap(), Some(expected));
        let env = [("HERALD_APPS", r#"[{ id = "3", key = "k3" }]"#)];
        assert_eq!(
            settings(&[], &env, Some(text)).given(&APPS).unwrap(),
            Some(vec![App { id: "3".into(), key: "k3".into() }])
        );
        let typo = settings(&[], &[], Some("[[apps]]\nid = \"1\"\nkye = \"k1\"\n"));
        let error = typo.given(&APPS).unwrap_err().to_string();
        assert!(
            error.starts_with(r#"bad setting HERALD_APPS="[{ id = \"1\", kye = \"k1\" }]" (from config file herald.toml, key apps): expected apps like"#),
            "{error}"
        );
        assert!(error.contains("unknown field `kye`") && !error.contains('\n'), "{error}");
    }
}
