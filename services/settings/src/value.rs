//! How setting values are read from text: the `parse` functions settings
//! are declared with. Each error says what was expected, in words an
//! operator can act on; the reader adds which setting, which value and where
//! it came from.

use std::fmt::Display;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Any text, as given.
pub fn text(value: &str) -> Result<String, String> {
    Ok(value.to_owned())
}

/// An array of tables, as inline TOML: how the config file hands over
/// `[[section.name]]` tables, and how a flag or a variable gives them.
/// `example` shows the expected shape in the error.
pub fn inline_tables<T: serde::de::DeserializeOwned>(value: &str, example: &str) -> Result<Vec<T>, String> {
    #[derive(serde::Deserialize)]
    struct Value<T> {
        value: Vec<T>,
    }
    toml::from_str::<Value<T>>(&format!("value = {value}"))
        .map(|tables| tables.value)
        .map_err(|e| format!("expected {example}: {}", e.message()))
}

/// A file's path, as given.
pub fn path(value: &str) -> Result<PathBuf, String> {
    Ok(PathBuf::from(value))
}

/// A whole number of at least `MIN`, that fits `T`.
pub fn whole<T, const MIN: u64>(value: &str) -> Result<T, String>
where
    T: TryFrom<u64>,
{
    at_least::<MIN>(value, "whole number").and_then(|n| T::try_from(n).map_err(|_| expected::<MIN>("whole number")))
}

/// A duration given in whole milliseconds, of at least `MIN` of them.
pub fn millis<const MIN: u64>(value: &str) -> Result<Duration, String> {
    at_least::<MIN>(value, "whole number of milliseconds").map(Duration::from_millis)
}

/// `true`/`false`, `1`/`0` or `yes`/`no`, in any case.
pub fn boolean(value: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err("expected true or false (or 1/0, yes/no)".to_owned()),
    }
}

/// An IP address and port.
pub fn socket_addr(value: &str) -> Result<SocketAddr, String> {
    value.trim().parse().map_err(|_| "expected an IP address and port, like 0.0.0.0:8080".to_owned())
}

/// Splits a comma list, dropping spaces around items and empty items.
pub fn comma_list(value: &str) -> Vec<String> {
    value.split(',').map(str::trim).filter(|item| !item.is_empty()).map(str::to_owned).collect()
}

/// A whole number of at least `MIN`.
fn at_least<const MIN: u64>(value: &str, what: &str) -> Result<u64, String> {
    value.trim().parse().ok().filter(|n| *n >= MIN).ok_or_else(|| expected::<MIN>(what))
}

/// `expected a positive whole number`, `expected a whole number of at least 256`.
fn expected<const MIN: u64>(what: impl Display) -> String {
    match MIN {
        0 => format!("expected a {what}"),
        1 => format!("expected a positive {what}"),
        _ => format!("expected a {what} of at least {MIN}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_numbers_have_a_minimum_and_fit_their_type() {
        assert_eq!(whole::<usize, 256>(" 1024 "), Ok(1024));
        assert_eq!(whole::<usize, 256>("100"), Err("expected a whole number of at least 256".to_owned()));
        assert_eq!(whole::<u32, 1>("0"), Err("expected a positive whole number".to_owned()));
        assert_eq!(whole::<u32, 0>("-5"), Err("expected a whole number".to_owned()));
        assert_eq!(whole::<u32, 1>("1.5"), Err("expected a positive whole number".to_owned()));
        assert_eq!(whole::<u32, 1>("4294967296"), Err("expected a positive whole number".to_owned()));
        assert_eq!(whole::<usize, 1>("99999999999999999999999"), Err("expected a positive whole number".to_owned()));
    }

    #[test]
    fn milliseconds() {
        assert_eq!(millis::<1>(" 1500 "), Ok(Duration::from_millis(1500)));
        assert_eq!(millis::<1>("0"), Err("expected a positive whole number of milliseconds".to_owned()));
        assert_eq!(millis::<0>("0"), Ok(Duration::ZERO));
        assert_eq!(millis::<0>("1.5"), Err("expected a whole number of milliseconds".to_owned()));
        assert_eq!(millis::<0>("10s"), Err("expected a whole number of milliseconds".to_owned()));
    }

    #[test]
    fn booleans() {
        for (value, expected) in
            [("true", true), ("1", true), ("YES", true), ("False", false), ("0", false), ("no", false)]
        {
            assert_eq!(boolean(value), Ok(expected), "{value}");
        }
        assert_eq!(boolean("maybe"), Err("expected true or false (or 1/0, yes/no)".to_owned()));
    }

    #[test]
    fn addresses() {
        assert_eq!(socket_addr(" 127.0.0.1:80 "), Ok("127.0.0.1:80".parse().unwrap()));
        assert_eq!(socket_addr("localhost:80"), Err("expected an IP address and port, like 0.0.0.0:8080".to_owned()));
    }

    #[test]
    fn comma_lists_drop_spaces_and_empty_items() {
        assert_eq!(comma_list(" a, b ,,c,"), ["a", "b", "c"]);
        assert!(comma_list(" , ").is_empty());
    }
}
