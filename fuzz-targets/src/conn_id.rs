//! Connection ids: read from the subjects of `<prefix>.conn.<edge>.*` and
//! `<prefix>.ctl.conn.<edge>.*`, from the `Herald-Exclude-Conn` header and
//! from handlers' publish targets, all of which any backend may write.
//!
//! - Reading never panics; what is not an id is an error value.
//! - Only canonical ids read: what is accepted prints back as the same
//!   text, so two texts never name one connection.
//! - An id's subjects have exactly one token for the edge and one for the
//!   number, so no id reaches another edge's or connection's subject.

use herald_proto::conn_id::{BadConnId, ConnId, is_valid_edge_id};
use herald_proto::subject::Subjects;

pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };

    match text.parse::<ConnId>() {
        Ok(id) => {
            assert_eq!(id.to_string(), text);
            assert!(is_valid_edge_id(id.edge()));
            assert_eq!(ConnId::new(id.edge(), id.local()), id);
            let subjects = Subjects::default();
            let expected = ["herald", "conn", id.edge(), &id.local().to_string()].join(".");
            assert_eq!(subjects.conn(&id), expected);
            assert_eq!(subjects.ctl_conn(&id), format!("herald.ctl.conn.{}.{}", id.edge(), id.local()));
        }
        Err(BadConnId(refused)) => assert_eq!(refused, text),
    }

    // The last token of a connection subject, as the edge reads it.
    if let Some(local) = ConnId::parse_local(text) {
        assert_eq!(local.to_string(), text);
    }

    // Any valid edge id and number make an id that reads back.
    if data.len() >= 8 {
        let local = u64::from_le_bytes(data[..8].try_into().unwrap());
        if let Ok(edge) = std::str::from_utf8(&data[8..])
            && is_valid_edge_id(edge)
        {
            let id = ConnId::new(edge, local);
            assert_eq!(id.to_string().parse::<ConnId>(), Ok(id));
        }
    }
}
