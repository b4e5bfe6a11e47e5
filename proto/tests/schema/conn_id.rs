//! Connection and edge ids: the schemas' patterns and `ConnId` agree.

use herald_proto::conn_id::{self, ConnId};
use serde_json::json;

use crate::support::{conn, schema};

#[test]
fn conn_id_pattern_agrees_with_conn_id() {
    let pattern = schema("server-frame").sub("/$defs/connId");
    let edge_pattern = schema("lifecycle-event").sub("/properties/edge");

    let mut accepted = vec![
        "3f9c2a7e1b0d4c85.17".to_owned(),
        "a1b2.42".to_owned(),
        "e.0".to_owned(),
        "A_b-9.1".to_owned(),
        ConnId::new(&"f".repeat(64), 9_999_999_999_999_999_999).to_string(),
    ];
    accepted.extend((0..20).map(|n| conn(n * 7919)));
    for id in &accepted {
        pattern.assert_valid(&json!(id), "a connection id");
        let parsed: ConnId = id.parse().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(&parsed.to_string(), id);
    }

    let long_edge = format!("{}.1", "f".repeat(65));
    let refused = [
        "", "a", "a.", ".1", "a.b", "a.1.2", "a*.1", "a.>", "a.01", "a.-1", "a b.1", "a.1\n", "é.1", "a.1 ",
        &long_edge, "a.+1",
    ];
    for id in refused {
        assert!(!pattern.errors(&json!(id)).is_empty(), "the schema accepts {id:?}");
        assert!(id.parse::<ConnId>().is_err(), "ConnId accepts {id:?}");
    }

    // Lenient: counters of 20 digits parse but are beyond the pattern, which
    // stays a subset of what ConnId reads. No edge counts that far.
    for id in ["a.10000000000000000000", "a.18446744073709551615"] {
        assert!(!pattern.errors(&json!(id)).is_empty(), "the schema accepts {id:?}");
        assert!(id.parse::<ConnId>().is_ok(), "ConnId refuses {id:?}");
    }

    for edge in ["3f9c2a7e1b0d4c85", "a", "A_-9", &"x".repeat(64)] {
        edge_pattern.assert_valid(&json!(edge), "an edge id");
        assert!(conn_id::is_valid_edge_id(edge), "{edge:?}");
    }
    for edge in ["", "a.b", "a*", ">", "a b", "é", "a\n", &"x".repeat(65)] {
        assert!(!edge_pattern.errors(&json!(edge)).is_empty(), "the schema accepts edge {edge:?}");
        assert!(!conn_id::is_valid_edge_id(edge), "{edge:?}");
    }
}
