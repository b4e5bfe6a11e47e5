//! A message's header block, read in place.
//!
//! The block is what the publisher wrote (`NATS/1.0`, an optional status,
//! then `Name: Value` lines and an empty line), passed through by the
//! server unchecked. So a block that cannot be read costs only its own
//! message, never the connection: [`Headers::parse`] checks it once, and
//! the accessors read the checked text without allocating.

use thiserror::Error;

/// What the block starts with.
const VERSION: &str = "NATS/1.0";

/// A checked header block, borrowing the bytes it was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Headers<'a> {
    /// The status on the version line (`503` no responders, `100` a
    /// JetStream idle heartbeat), if any.
    status: Option<u16>,
    /// The words after the status, if any.
    description: &'a str,
    /// The `Name: Value` lines, each ending in a line break.
    fields: &'a str,
}

/// Why a header block could not be read.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum HeaderError {
    #[error("header block is not UTF-8")]
    NotUtf8,
    #[error("header block does not start with {VERSION}")]
    NoVersion,
    #[error("bad status on the header version line")]
    BadStatus,
    #[error("header line without a name and a colon: {0:?}")]
    BadField(String),
}

impl<'a> Headers<'a> {
    /// Checks a header block. Lines end in CRLF (a bare LF is taken too);
    /// the fields end at the first empty line or at the end of the block.
    pub fn parse(block: &'a [u8]) -> Result<Headers<'a>, HeaderError> {
        let text = std::str::from_utf8(block).map_err(|_| HeaderError::NotUtf8)?;
        let (first, fields) = text.split_once('\n').unwrap_or((text, ""));
        let rest = first.strip_suffix('\r').unwrap_or(first).strip_prefix(VERSION).ok_or(HeaderError::NoVersion)?;
        if !rest.is_empty() && !rest.starts_with([' ', '\t']) {
            return Err(HeaderError::NoVersion);
        }
        let (status, description) = match rest.trim() {
            "" => (None, ""),
            rest => {
                let (code, description) = rest.split_once(' ').unwrap_or((rest, ""));
                if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(HeaderError::BadStatus);
                }
                (code.parse().ok(), description.trim())
            }
        };
        let headers = Headers { status, description, fields };
        for line in headers.lines() {
            match line.split_once(':') {
                Some((name, _)) if !name.is_empty() && !name.contains([' ', '\t']) => {}
                _ => return Err(HeaderError::BadField(line.chars().take(64).collect())),
            }
        }
        Ok(headers)
    }

    /// The status on the version line, if any.
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// The words after the status (`No Responders`), or "".
    pub fn description(&self) -> &'a str {
        self.description
    }

    /// The first value of `name`, trimmed. Names are compared exactly, as
    /// the NATS clients do (header names keep the case they were sent in).
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.get_all(name).next()
    }

    /// Every value of `name`, in order.
    pub fn get_all<'n>(&self, name: &'n str) -> impl Iterator<Item = &'a str> + 'n
    where
        'a: 'n,
    {
        self.iter().filter(move |(field, _)| *field == name).map(|(_, value)| value)
    }

    /// Every field, in order, values trimmed.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.lines().filter_map(|line| line.split_once(':')).map(|(name, value)| (name, value.trim()))
    }

    /// The field lines, up to the empty line that ends them.
    fn lines(&self) -> impl Iterator<Item = &'a str> + 'a {
        self.fields.split('\n').map(|line| line.strip_suffix('\r').unwrap_or(line)).take_while(|line| !line.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn reads_fields_status_and_description() {
        let headers = Headers::parse(b"NATS/1.0\r\nNats-Sequence: 42\r\nA: 1\r\nA:2\r\nEmpty:\r\n\r\n").unwrap();
        assert_eq!(headers.status(), None);
        assert_eq!(headers.get("Nats-Sequence"), Some("42"));
        assert_eq!(headers.get("nats-sequence"), None);
        assert_eq!(headers.get_all("A").collect::<Vec<_>>(), ["1", "2"]);
        assert_eq!(headers.get("Empty"), Some(""));
        assert_eq!(headers.get("Missing"), None);
        assert_eq!(headers.iter().count(), 4);

        let status = Headers::parse(b"NATS/1.0 503\r\n\r\n").unwrap();
        assert_eq!((status.status(), status.description()), (Some(503), ""));
        let status = Headers::parse(b"NATS/1.0 100 Idle Heartbeat\r\nNats-Last-Consumer: 3\r\n\r\n").unwrap();
        assert_eq!((status.status(), status.description()), (Some(100), "Idle Heartbeat"));
        assert_eq!(status.get("Nats-Last-Consumer"), Some("3"));
    }

    #[test]
    fn a_value_may_hold_colons_and_the_block_may_end_early() {
        let headers = Headers::parse(b"NATS/1.0\nUrl: http://x:1/\n").unwrap();
        assert_eq!(headers.get("Url"), Some("http://x:1/"));
        assert_eq!(Headers::parse(b"NATS/1.0").unwrap().iter().count(), 0);
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        assert_eq!(Headers::parse(b"HTTP/1.1\r\n\r\n"), Err(HeaderError::NoVersion));
        assert_eq!(Headers::parse(b"NATS/1.01\r\n\r\n"), Err(HeaderError::NoVersion));
        assert_eq!(Headers::parse(b"NATS/1.0 5x3\r\n\r\n"), Err(HeaderError::BadStatus));
        assert_eq!(Headers::parse(b"NATS/1.0\r\nno colon\r\n\r\n"), Err(HeaderError::BadField("no colon".into())));
        assert_eq!(Headers::parse(b"NATS/1.0\r\n: v\r\n\r\n"), Err(HeaderError::BadField(": v".into())));
        assert_eq!(Headers::parse(b"NATS/1.0\r\n folded: v\r\n\r\n"), Err(HeaderError::BadField(" folded: v".into())));
        assert_eq!(Headers::parse(b"NATS/1.0\r\nA: \xff\r\n\r\n"), Err(HeaderError::NotUtf8));
    }

    proptest! {
        #[test]
        fn reads_back_the_fields_it_was_written_with(
            fields in proptest::collection::vec(("[A-Za-z0-9-]{1,12}", "[!-~]([ -~]{0,20}[!-~])?"), 0..6),
        ) {
            let mut block = "NATS/1.0\r\n".to_owned();
            for (name, value) in &fields {
                block.push_str(&format!("{name}: {value}\r\n"));
            }
            block.push_str("\r\n");
            let headers = Headers::parse(block.as_bytes()).unwrap();
            let read: Vec<(String, String)> = headers.iter().map(|(n, v)| (n.to_owned(), v.to_owned())).collect();
            prop_assert_eq!(read, fields.clone());
            for (name, _) in &fields {
                let first = fields.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
                prop_assert_eq!(headers.get(name), first);
            }
        }

        #[test]
        fn never_panics(block in proptest::collection::vec(any::<u8>(), 0..120)) {
            if let Ok(headers) = Headers::parse(&block) {
                let _ = headers.iter().count();
            }
        }
    }
}
