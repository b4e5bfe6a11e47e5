//! Reading JSON objects from the bus.
//!
//! Serde also reads a struct from a JSON array of its fields in order, so
//! `["disconnect"]` would pass for a control op. Every wire message is an
//! object, and this is the one place that insists on it.
//!
//! One array is an object: PHP's `json_encode([])` writes an empty array as
//! `[]`, so a PHP handler's empty answer, empty claims or empty effect body
//! is `[]`. Where an object may be empty, `[]` reads as `{}`, and no other
//! array does.

use serde::de::{DeserializeOwned, IgnoredAny};
use serde::{Deserialize, Deserializer};

/// Reads `bytes` as a JSON object of type `T`; `[]` reads as `{}`.
pub fn from_object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, serde_json::Error> {
    let text = bytes.trim_ascii();
    if is_empty_array(text) {
        return serde_json::from_slice(b"{}");
    }
    if text.first() != Some(&b'{') {
        return Err(serde::de::Error::custom("expected a JSON object"));
    }
    serde_json::from_slice(bytes)
}

/// `[]`, with any whitespace inside.
fn is_empty_array(text: &[u8]) -> bool {
    text.strip_prefix(b"[")
        .and_then(|rest| rest.strip_suffix(b"]"))
        .is_some_and(|inside| inside.trim_ascii().is_empty())
}

/// A field holding an object that may be empty, written `[]` by PHP when it
/// is: `[]` reads as the default, an object as itself, and any other array
/// (which serde would read positionally into a struct) is refused. For
/// `#[serde(deserialize_with = "...")]`.
pub fn object_or_empty_array<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    /// Arrays are tried first, so that a struct is never read from one.
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ObjectOrArray<T> {
        Array(Vec<IgnoredAny>),
        Object(T),
    }
    match ObjectOrArray::deserialize(deserializer) {
        Ok(ObjectOrArray::Object(value)) => Ok(value),
        Ok(ObjectOrArray::Array(items)) if items.is_empty() => Ok(T::default()),
        Ok(ObjectOrArray::Array(_)) | Err(_) => {
            Err(serde::de::Error::custom("expected an object (or [], PHP's empty array, for an empty one)"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::ControlOp;

    #[test]
    fn an_empty_array_is_an_empty_object_and_no_other_array_is_an_object() {
        #[derive(Debug, Default, PartialEq, Deserialize)]
        struct Empty {
            #[serde(default)]
            code: u16,
            #[serde(default, deserialize_with = "object_or_empty_array")]
            inner: Option<std::collections::BTreeMap<String, u16>>,
        }
        for empty in [&b"[]"[..], b" [ ] ", b"{}", b"{\"inner\": []}", b"{\"inner\": null}"] {
            let read: Empty = from_object(empty).unwrap_or_else(|e| panic!("{}: {e}", String::from_utf8_lossy(empty)));
            assert_eq!(read, Empty::default());
        }
        assert_eq!(from_object::<Empty>(br#"{"inner": {"a": 1}}"#).unwrap().inner.unwrap()["a"], 1);
        for refused in [&b"[7]"[..], b"[[]]", br#"{"inner": [1]}"#, br#"{"inner": "x"}"#] {
            assert!(from_object::<Empty>(refused).is_err(), "{}", String::from_utf8_lossy(refused));
        }
    }

    #[test]
    fn refuses_arrays_that_serde_would_read_as_structs() {
        assert!(serde_json::from_str::<ControlOp>(r#"["leave", "g"]"#).is_ok(), "serde's leniency this guards against");
        assert!(from_object::<ControlOp>(br#"["leave", "g"]"#).is_err());
        assert!(from_object::<ControlOp>(br#" {"op":"leave","group":"g"}"#).is_ok());
    }
}
