//! Reading JSON objects from the bus.
//!
//! Serde also reads a struct from a JSON array of its fields in order, so
//! `["disconnect"]` would pass for a control op. Every wire message is an
//! object, and this is the one place that insists on it.

use serde::de::DeserializeOwned;

/// Reads `bytes` as a JSON object of type `T`.
pub fn from_object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, serde_json::Error> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Err(serde::de::Error::custom("expected a JSON object"));
    }
    serde_json::from_slice(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::ControlOp;

    #[test]
    fn refuses_arrays_that_serde_would_read_as_structs() {
        assert!(serde_json::from_str::<ControlOp>(r#"["leave", "g"]"#).is_ok(), "serde's leniency this guards against");
        assert!(from_object::<ControlOp>(br#"["leave", "g"]"#).is_err());
        assert!(from_object::<ControlOp>(br#" {"op":"leave","group":"g"}"#).is_ok());
    }
}
