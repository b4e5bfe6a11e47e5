//! Control operations backends publish on `<prefix>.ctl.user.<U>` and
//! `<prefix>.ctl.conn.<C>`.

use serde::{Deserialize, Serialize};

use crate::close;

/// One operation, e.g. `{"op":"join","group":"room:1"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
pub enum ControlOp {
    /// Adds the connections to a group.
    Join { group: String },
    /// Removes the connections from a group.
    Leave { group: String },
    /// Closes the connections with a code (default 4000) and a reason.
    Disconnect {
        #[serde(default = "default_disconnect_code")]
        code: u16,
        #[serde(default)]
        reason: String,
    },
}

fn default_disconnect_code() -> u16 {
    close::BACKEND_DISCONNECT
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_op() {
        let op = |s: &str| serde_json::from_str::<ControlOp>(s).unwrap();
        assert_eq!(op(r#"{"op":"join","group":"g"}"#), ControlOp::Join { group: "g".into() });
        assert_eq!(op(r#"{"op":"leave","group":"g"}"#), ControlOp::Leave { group: "g".into() });
        assert_eq!(op(r#"{"op":"disconnect"}"#), ControlOp::Disconnect { code: 4000, reason: String::new() });
        assert_eq!(
            op(r#"{"op":"disconnect","code":4003,"reason":"banned"}"#),
            ControlOp::Disconnect { code: 4003, reason: "banned".into() }
        );
    }

    #[test]
    fn refuses_unknown_ops_and_fields() {
        for bad in [r#"{"op":"explode"}"#, r#"{"op":"join"}"#, r#"{"op":"join","group":"g","x":1}"#] {
            assert!(serde_json::from_str::<ControlOp>(bad).is_err(), "{bad}");
        }
    }
}
