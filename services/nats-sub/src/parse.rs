//! What a NATS server sends a client, read from bytes.
//!
//! [`parse`] is a pure function over the bytes read so far: it returns the
//! first operation and how many bytes it took, or `None` when the bytes end
//! inside an operation (read more and call again). It never panics and
//! never reads past a bound: a control line longer than
//! [`MAX_CONTROL_LINE`] or a message larger than the server's
//! `max_payload` is an error, not a reason to buffer more.
//!
//! An error here means the byte stream itself is broken (a size that is not
//! a number, a payload not followed by CRLF): nothing after it can be
//! trusted, so the connection is dropped and made again. What a publisher
//! controls inside a well-framed message (the subject's bytes, the header
//! block) is not judged here, so that no publisher can break the
//! connection: see [`crate::headers::Headers::parse`].

use memchr::memchr;
use thiserror::Error;

/// Longest control line read before giving up on the stream. The longest
/// line a server sends is `INFO`, with a large cluster's URLs; `MSG` lines
/// are bounded by the server's own `max_control_line` (4 KiB by default).
pub const MAX_CONTROL_LINE: usize = 64 * 1024;

/// One operation from the server, borrowing the bytes it was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerOp<'a> {
    /// `INFO {json}`: the JSON object, unread (see [`crate::info::ServerInfo`]).
    Info(&'a [u8]),
    /// `MSG` or `HMSG`: a message on one of our subscriptions.
    Msg(Msg<'a>),
    /// `PING`: the server checks we are alive; answer `PONG`.
    Ping,
    /// `PONG`: the answer to one of our `PING`s, in order.
    Pong,
    /// `+OK`: only sent in verbose mode, which we do not ask for.
    Ok,
    /// `-ERR 'text'`: the text, without its quotes.
    Err(&'a [u8]),
}

/// A message as framed by `MSG` or `HMSG`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Msg<'a> {
    /// The subject it was published to: bytes, because the publisher chose
    /// them (not necessarily UTF-8).
    pub subject: &'a [u8],
    /// The subscription it is for, as we numbered it in `SUB`.
    pub sid: u64,
    /// Where the publisher waits for an answer, if anywhere.
    pub reply: Option<&'a [u8]>,
    /// The header block (`NATS/1.0 ...`) of an `HMSG`, unread.
    pub headers: Option<&'a [u8]>,
    pub payload: &'a [u8],
}

/// The byte stream is not the NATS protocol.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("control line longer than {MAX_CONTROL_LINE} bytes")]
    LineTooLong,
    #[error("unknown operation {0:?}")]
    UnknownOp(String),
    #[error("bad {op} arguments {args:?}")]
    BadArguments { op: &'static str, args: String },
    #[error("{op} of {size} bytes is over the server's max_payload of {max}")]
    TooLarge { op: &'static str, size: usize, max: usize },
    #[error("{op} payload not followed by CRLF")]
    MissingTrailer { op: &'static str },
}

/// Reads the first operation in `buf`: `Ok(Some((op, consumed)))`, or
/// `Ok(None)` when `buf` ends inside it. A message whose header block and
/// payload together exceed `max_payload` is an error.
pub fn parse(buf: &[u8], max_payload: usize) -> Result<Option<(ServerOp<'_>, usize)>, ParseError> {
    let Some(newline) = memchr(b'\n', &buf[..buf.len().min(MAX_CONTROL_LINE)]) else {
        return if buf.len() >= MAX_CONTROL_LINE { Err(ParseError::LineTooLong) } else { Ok(None) };
    };
    let line = buf[..newline].strip_suffix(b"\r").unwrap_or(&buf[..newline]);
    let body_start = newline + 1;
    let (name, args) = split_op(line);
    if name.eq_ignore_ascii_case(b"MSG") || name.eq_ignore_ascii_case(b"HMSG") {
        let with_headers = name.len() == 4;
        let found = message(args, &buf[body_start..], max_payload, with_headers)?;
        return Ok(found.map(|(msg, used)| (ServerOp::Msg(msg), body_start + used)));
    }
    let op = if name.eq_ignore_ascii_case(b"PING") {
        ServerOp::Ping
    } else if name.eq_ignore_ascii_case(b"PONG") {
        ServerOp::Pong
    } else if name.eq_ignore_ascii_case(b"+OK") {
        ServerOp::Ok
    } else if name.eq_ignore_ascii_case(b"-ERR") {
        ServerOp::Err(unquote(args))
    } else if name.eq_ignore_ascii_case(b"INFO") {
        ServerOp::Info(args)
    } else {
        return Err(ParseError::UnknownOp(String::from_utf8_lossy(&name[..name.len().min(32)]).into_owned()));
    };
    Ok(Some((op, body_start)))
}

/// The operation's name and what follows it, without the whitespace between.
fn split_op(line: &[u8]) -> (&[u8], &[u8]) {
    let end = line.iter().position(|b| is_space(*b)).unwrap_or(line.len());
    let rest = &line[end..];
    let start = rest.iter().position(|b| !is_space(*b)).unwrap_or(rest.len());
    (&line[..end], trim_end(&rest[start..]))
}

/// `MSG <subject> <sid> [reply] <size>` or
/// `HMSG <subject> <sid> [reply] <header size> <total size>`, then the
/// body in `body`: the message and the bytes of `body` it took.
fn message<'a>(
    args: &'a [u8],
    body: &'a [u8],
    max_payload: usize,
    with_headers: bool,
) -> Result<Option<(Msg<'a>, usize)>, ParseError> {
    let op = if with_headers { "HMSG" } else { "MSG" };
    let bad = || ParseError::BadArguments { op, args: String::from_utf8_lossy(args).into_owned() };
    let mut fields = [&[][..]; 5];
    let mut count = 0;
    for field in args.split(|b| is_space(*b)).filter(|f| !f.is_empty()) {
        if count == fields.len() {
            return Err(bad());
        }
        fields[count] = field;
        count += 1;
    }
    let sizes = if with_headers { 2 } else { 1 };
    let reply = match count - sizes.min(count) {
        2 => None,
        3 => Some(fields[2]),
        _ => return Err(bad()),
    };
    let sid = number(fields[1]).ok_or_else(bad)?;
    let size = |field: &[u8]| number(field).and_then(|n| usize::try_from(n).ok()).ok_or_else(bad);
    let total = size(fields[count - 1])?;
    let header_size = if with_headers { size(fields[count - 2])? } else { 0 };
    if header_size > total {
        return Err(bad());
    }
    if total > max_payload {
        return Err(ParseError::TooLarge { op, size: total, max: max_payload });
    }
    if body.len() < total + 2 {
        return Ok(None);
    }
    if &body[total..total + 2] != b"\r\n" {
        return Err(ParseError::MissingTrailer { op });
    }
    let msg = Msg {
        subject: fields[0],
        sid,
        reply,
        headers: with_headers.then(|| &body[..header_size]),
        payload: &body[header_size..total],
    };
    Ok(Some((msg, total + 2)))
}

/// A decimal number that fits in a `u64`, nothing else.
fn number(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    digits.iter().try_fold(0u64, |n, d| n.checked_mul(10)?.checked_add(u64::from(d - b'0')))
}

fn is_space(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn trim_end(bytes: &[u8]) -> &[u8] {
    let end = bytes.iter().rposition(|b| !is_space(*b)).map_or(0, |last| last + 1);
    &bytes[..end]
}

/// `'text'` without its quotes; anything else as it is.
fn unquote(text: &[u8]) -> &[u8] {
    text.strip_prefix(b"'").and_then(|t| t.strip_suffix(b"'")).unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const MAX: usize = 1024 * 1024;

    fn one(bytes: &[u8]) -> ServerOp<'_> {
        let (op, used) = parse(bytes, MAX).unwrap().expect("a whole operation");
        assert_eq!(used, bytes.len(), "consumed all of {:?}", String::from_utf8_lossy(bytes));
        op
    }

    fn msg(subject: &'static [u8], sid: u64, payload: &'static [u8]) -> ServerOp<'static> {
        ServerOp::Msg(Msg { subject, sid, reply: None, headers: None, payload })
    }

    #[test]
    fn reads_every_operation_a_server_sends() {
        assert_eq!(one(b"PING\r\n"), ServerOp::Ping);
        assert_eq!(one(b"PONG\r\n"), ServerOp::Pong);
        assert_eq!(one(b"+OK\r\n"), ServerOp::Ok);
        assert_eq!(one(b"-ERR 'Authorization Violation'\r\n"), ServerOp::Err(b"Authorization Violation"));
        assert_eq!(one(b"INFO {\"max_payload\":1048576}\r\n"), ServerOp::Info(b"{\"max_payload\":1048576}"));
        assert_eq!(one(b"MSG a.b 7 5\r\nhello\r\n"), msg(b"a.b", 7, b"hello"));
        assert_eq!(
            one(b"MSG a.b 7 _INBOX.x 0\r\n\r\n"),
            ServerOp::Msg(Msg { subject: b"a.b", sid: 7, reply: Some(b"_INBOX.x"), headers: None, payload: b"" })
        );
        assert_eq!(
            one(b"HMSG a 1 12 14\r\nNATS/1.0\r\n\r\nhi\r\n"),
            ServerOp::Msg(Msg {
                subject: b"a",
                sid: 1,
                reply: None,
                headers: Some(b"NATS/1.0\r\n\r\n"),
                payload: b"hi"
            })
        );
        assert_eq!(
            one(b"HMSG a 1 r 12 12\r\nNATS/1.0\r\n\r\n\r\n"),
            ServerOp::Msg(Msg {
                subject: b"a",
                sid: 1,
                reply: Some(b"r"),
                headers: Some(b"NATS/1.0\r\n\r\n"),
                payload: b""
            })
        );
    }

    #[test]
    fn is_lenient_where_other_clients_are() {
        // Lower case, tabs, extra spaces, a bare LF at the end of a line.
        assert_eq!(one(b"ping\n"), ServerOp::Ping);
        assert_eq!(one(b"msg\ta.b  7\t 2 \r\nhi\r\n"), msg(b"a.b", 7, b"hi"));
        assert_eq!(one(b"-ERR unquoted\r\n"), ServerOp::Err(b"unquoted"));
    }

    #[test]
    fn a_payload_may_hold_anything_its_size_covers() {
        assert_eq!(one(b"MSG a 1 6\r\nMSG \r\n\r\n"), msg(b"a", 1, b"MSG \r\n"));
    }

    #[test]
    fn waits_for_the_rest_of_an_operation() {
        for partial in [&b""[..], b"PIN", b"PING\r", b"MSG a 1 5\r\n", b"MSG a 1 5\r\nhello", b"MSG a 1 5\r\nhello\r"] {
            assert_eq!(parse(partial, MAX), Ok(None), "{:?}", String::from_utf8_lossy(partial));
        }
    }

    #[test]
    fn reads_one_operation_at_a_time() {
        let bytes = b"PING\r\nMSG a 1 1\r\nx\r\nPONG\r\n";
        let (op, used) = parse(bytes, MAX).unwrap().unwrap();
        assert_eq!((op, used), (ServerOp::Ping, 6));
        let (op, used2) = parse(&bytes[used..], MAX).unwrap().unwrap();
        assert_eq!(op, msg(b"a", 1, b"x"));
        assert_eq!(parse(&bytes[used + used2..], MAX).unwrap().unwrap(), (ServerOp::Pong, 6));
    }

    #[test]
    fn refuses_what_breaks_the_framing() {
        let bad = |bytes: &[u8]| parse(bytes, 8).unwrap_err();
        assert_eq!(bad(b"HELLO\r\n"), ParseError::UnknownOp("HELLO".into()));
        assert_eq!(bad(b"\r\n"), ParseError::UnknownOp(String::new()));
        assert!(matches!(bad(b"MSG a 1\r\n"), ParseError::BadArguments { op: "MSG", .. }));
        assert!(matches!(bad(b"MSG a x 1\r\n"), ParseError::BadArguments { .. }));
        assert!(matches!(bad(b"MSG a 1 -1\r\n"), ParseError::BadArguments { .. }));
        assert!(matches!(bad(b"MSG a 1 r s 1\r\n"), ParseError::BadArguments { .. }));
        assert!(matches!(bad(b"MSG a 1 99999999999999999999\r\n"), ParseError::BadArguments { .. }));
        assert!(matches!(bad(b"HMSG a 1 3 2\r\n"), ParseError::BadArguments { op: "HMSG", .. }));
        assert!(matches!(bad(b"HMSG a 1 2\r\n"), ParseError::BadArguments { op: "HMSG", .. }));
        assert_eq!(bad(b"MSG a 1 9\r\n"), ParseError::TooLarge { op: "MSG", size: 9, max: 8 });
        assert_eq!(bad(b"MSG a 1 2\r\nhi!\n"), ParseError::MissingTrailer { op: "MSG" });
        // A message exactly at the limit is fine.
        assert_eq!(parse(b"MSG a 1 8\r\n12345678\r\n", 8).unwrap().unwrap().1, 21);
    }

    #[test]
    fn a_control_line_has_a_bound() {
        let long = vec![b'x'; MAX_CONTROL_LINE];
        assert_eq!(parse(&long, MAX), Err(ParseError::LineTooLong));
        assert_eq!(parse(&long[..MAX_CONTROL_LINE - 1], MAX), Ok(None));
        let mut info = b"INFO ".to_vec();
        info.resize(MAX_CONTROL_LINE - 2, b' ');
        info.extend_from_slice(b"\r\n");
        assert!(matches!(parse(&info, MAX), Ok(Some((ServerOp::Info(_), _)))));
    }

    /// A stream of operations as a server would write them, each with the
    /// operation it must read back as.
    fn server_op() -> impl Strategy<Value = (Vec<u8>, OwnedOp)> {
        let token = "[a-zA-Z0-9_\\-$]{1,8}";
        let subject = proptest::collection::vec(token, 1..4).prop_map(|tokens| tokens.join("."));
        let headers = proptest::collection::vec(("[A-Za-z-]{1,12}", "[ -~]{0,16}"), 0..3).prop_map(|fields| {
            let mut block = "NATS/1.0\r\n".to_owned();
            for (name, value) in fields {
                block.push_str(&format!("{name}: {value}\r\n"));
            }
            block + "\r\n"
        });
        let message = (subject, any::<u64>(), proptest::option::of(token), proptest::option::of(headers))
            .prop_flat_map(|(subject, sid, reply, headers)| {
                proptest::collection::vec(any::<u8>(), 0..300)
                    .prop_map(move |payload| (subject.clone(), sid, reply.clone(), headers.clone(), payload))
            });
        prop_oneof![
            Just((b"PING\r\n".to_vec(), OwnedOp::Ping)),
            Just((b"PONG\r\n".to_vec(), OwnedOp::Pong)),
            Just((b"+OK\r\n".to_vec(), OwnedOp::Ok)),
            "[ -&(-~]{0,40}".prop_map(|text| (format!("-ERR '{text}'\r\n").into_bytes(), OwnedOp::Err(text.into()))),
            message.prop_map(|(subject, sid, reply, headers, payload)| {
                let reply_arg = reply.as_ref().map(|r| format!(" {r}")).unwrap_or_default();
                let mut bytes = match &headers {
                    None => format!("MSG {subject} {sid}{reply_arg} {}\r\n", payload.len()).into_bytes(),
                    Some(block) => {
                        let total = block.len() + payload.len();
                        format!("HMSG {subject} {sid}{reply_arg} {} {total}\r\n", block.len()).into_bytes()
                    }
                };
                bytes.extend_from_slice(headers.as_deref().unwrap_or_default().as_bytes());
                bytes.extend_from_slice(&payload);
                bytes.extend_from_slice(b"\r\n");
                let op = OwnedOp::Msg {
                    subject: subject.into_bytes(),
                    sid,
                    reply: reply.map(String::into_bytes),
                    headers: headers.map(String::into_bytes),
                    payload,
                };
                (bytes, op)
            }),
        ]
    }

    #[derive(Debug, Clone, PartialEq, Eq)]
    enum OwnedOp {
        Ping,
        Pong,
        Ok,
        Err(Vec<u8>),
        Info(Vec<u8>),
        Msg { subject: Vec<u8>, sid: u64, reply: Option<Vec<u8>>, headers: Option<Vec<u8>>, payload: Vec<u8> },
    }

    impl From<ServerOp<'_>> for OwnedOp {
        fn from(op: ServerOp<'_>) -> OwnedOp {
            match op {
                ServerOp::Ping => OwnedOp::Ping,
                ServerOp::Pong => OwnedOp::Pong,
                ServerOp::Ok => OwnedOp::Ok,
                ServerOp::Err(text) => OwnedOp::Err(text.to_vec()),
                ServerOp::Info(json) => OwnedOp::Info(json.to_vec()),
                ServerOp::Msg(m) => OwnedOp::Msg {
                    subject: m.subject.to_vec(),
                    sid: m.sid,
                    reply: m.reply.map(<[u8]>::to_vec),
                    headers: m.headers.map(<[u8]>::to_vec),
                    payload: m.payload.to_vec(),
                },
            }
        }
    }

    /// Reads `stream` as a connection would: `chunks` bytes arrive at a
    /// time, and whatever was not consumed waits for the next read.
    fn read_in_chunks(stream: &[u8], cuts: &[usize]) -> Vec<OwnedOp> {
        let mut ops = Vec::new();
        let mut buffer = Vec::new();
        let mut start = 0;
        for &cut in cuts.iter().chain([&stream.len()]) {
            let cut = cut.clamp(start, stream.len());
            buffer.extend_from_slice(&stream[start..cut]);
            start = cut;
            while let Some((op, used)) = parse(&buffer, MAX).unwrap() {
                ops.push(op.into());
                buffer.drain(..used);
            }
        }
        assert!(buffer.is_empty(), "left over: {:?}", String::from_utf8_lossy(&buffer));
        ops
    }

    #[test]
    fn every_split_of_a_read_gives_the_same_operations() {
        let stream: &[u8] = b"INFO {\"a\":1}\r\nMSG a.b 1 _INBOX.1 5\r\nhel\r\n\r\nHMSG c 22 27 29\r\nNATS/1.0 100 Idle\r\nA: b\r\n\r\nhi\r\nPING\r\n-ERR 'x'\r\n";
        let whole = read_in_chunks(stream, &[]);
        assert_eq!(whole.len(), 5);
        for cut in 0..=stream.len() {
            assert_eq!(read_in_chunks(stream, &[cut]), whole, "split at {cut}");
        }
        // One byte at a time.
        let every: Vec<usize> = (0..stream.len()).collect();
        assert_eq!(read_in_chunks(stream, &every), whole);
    }

    proptest! {
        #[test]
        fn reads_back_what_a_server_writes_however_it_is_split(
            ops in proptest::collection::vec(server_op(), 1..12),
            mut cuts in proptest::collection::vec(any::<usize>(), 0..8),
        ) {
            let stream: Vec<u8> = ops.iter().flat_map(|(bytes, _)| bytes.clone()).collect();
            let expected: Vec<OwnedOp> = ops.into_iter().map(|(_, op)| op).collect();
            for cut in &mut cuts {
                *cut %= stream.len() + 1;
            }
            cuts.sort_unstable();
            prop_assert_eq!(read_in_chunks(&stream, &cuts), expected);
        }

        #[test]
        fn a_prefix_of_good_bytes_is_never_an_error(
            (bytes, _) in server_op(),
            cut in any::<prop::sample::Index>(),
        ) {
            let cut = cut.index(bytes.len());
            prop_assert_eq!(parse(&bytes[..cut], MAX), Ok(None));
        }

        #[test]
        fn never_panics_and_never_claims_more_than_it_has(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(Some((_, used))) = parse(&bytes, 64) {
                prop_assert!(used > 0 && used <= bytes.len());
            }
        }
    }
}
