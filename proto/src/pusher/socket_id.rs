//! Pusher socket ids: `<digits>.<digits>`, one for each Herald connection.
//!
//! pusher-php-server and Laravel check a socket id against `^\d+\.\d+$`
//! before they forward it, so a Herald connection id (`<edge>.<n>`, the
//! edge part 16 hex digits) is written with its edge part in decimal. The
//! mapping is exact both ways: a socket id names the same connection on
//! every edge and router, with nothing to look up.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

use crate::conn_id::ConnId;

/// Hex digits in the edge part of the connection ids edges make
/// (`Edge::bind` draws 64 random bits).
const EDGE_HEX_DIGITS: usize = 16;

/// A Pusher `socket_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SocketId {
    /// The edge id's 64 bits.
    edge: u64,
    /// The connection's number on its edge.
    local: u64,
}

/// A string that is not a socket id of any Herald connection.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0:?} is not a socket id (expected <digits>.<digits>)")]
pub struct BadSocketId(pub String);

impl SocketId {
    /// The socket id of a connection, if its edge id is the 16 hex digits
    /// edges give themselves (a connection id made up by hand may not be).
    pub fn of(conn: &ConnId) -> Option<SocketId> {
        let edge = conn.edge();
        let is_hex = edge.len() == EDGE_HEX_DIGITS && edge.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        is_hex.then(|| SocketId { edge: u64::from_str_radix(edge, 16).expect("16 hex digits"), local: conn.local() })
    }

    /// The connection this socket id names.
    pub fn conn(&self) -> ConnId {
        ConnId::new(&format!("{:0width$x}", self.edge, width = EDGE_HEX_DIGITS), self.local)
    }
}

impl fmt::Display for SocketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.edge, self.local)
    }
}

impl FromStr for SocketId {
    type Err = BadSocketId;

    /// Reads only canonical socket ids (no leading zeros, no sign), so a
    /// connection has exactly one.
    fn from_str(s: &str) -> Result<SocketId, BadSocketId> {
        let bad = || BadSocketId(s.to_owned());
        let (edge, local) = s.split_once('.').ok_or_else(bad)?;
        let edge = ConnId::parse_local(edge).ok_or_else(bad)?;
        let local = ConnId::parse_local(local).ok_or_else(bad)?;
        Ok(SocketId { edge, local })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn maps_an_edge_connection_to_digits_and_back() {
        let conn = ConnId::new("00ff00000000000a", 42);
        let socket = SocketId::of(&conn).unwrap();
        assert_eq!(socket.to_string(), "71776119061217290.42");
        assert_eq!(socket.to_string().parse::<SocketId>().unwrap().conn(), conn);
    }

    #[test]
    fn hand_made_edge_ids_have_no_socket_id() {
        assert_eq!(SocketId::of(&ConnId::new("a1b2", 1)), None);
        assert_eq!(SocketId::of(&ConnId::new("00FF00000000000A", 1)), None);
    }

    #[test]
    fn refuses_what_pusher_refuses_and_non_canonical_forms() {
        for bad in
            ["", "1", "1.", ".1", "1.2.3", "a.1", "1.a", "01.1", "1.01", "-1.1", "1 .1", "18446744073709551616.1"]
        {
            assert!(bad.parse::<SocketId>().is_err(), "{bad:?}");
        }
        assert!("18446744073709551615.0".parse::<SocketId>().is_ok());
    }

    proptest! {
        #[test]
        fn every_socket_id_names_one_connection(edge: u64, local: u64) {
            let socket = SocketId { edge, local };
            let text = socket.to_string();
            prop_assert_eq!(text.parse::<SocketId>().unwrap(), socket);
            prop_assert_eq!(SocketId::of(&socket.conn()), Some(socket));
        }
    }
}
