//! The Workerman-compatible push port: a plain TCP text port where a backend
//! writes one JSON object per line, the way Workerman's push example does
//! (`fwrite($client, json_encode($data)."\n")`), and reads back one line:
//! `ok` when the user is online somewhere, `fail` when not, `error <reason>`
//! for a line it cannot take. Such a backend moves to Herald by changing one
//! address.
//!
//! A line names its user with `uid` (a string or an integer). With an
//! `action`, the frame is `{"action": <action>, "details": <details>}`;
//! without one it is `{"action": "push", "details": <the object without
//! uid>}`. It is published to the user's subject like any other publish, and
//! "online somewhere" is the cluster-wide presence the API's presence call
//! gives, so the answer is the same whichever router took the line.
//!
//! Bounded like every other input: a line longer than
//! [`PushPortConfig::max_line_bytes`] is answered `error` and skipped; past
//! [`PushPortConfig::max_connections`] a new connection is told `error too
//! many connections` and closed. A bad line is answered and the connection
//! stays open for the next one. [`parse_line`] is a pure function, so a
//! fuzz target can call it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use herald_proto::client::{self, MAX_ACTION_CHARS};
use serde_json::{Map, Value};
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use herald_bus::Bus;
use herald_handler::Presence;
use herald_proto::published_at::{self, PUBLISHED_AT_HEADER};
use herald_proto::subject::Subjects;

use crate::api::ApiState;
use crate::error::RouterError;

/// The action of a frame made from a line without one.
pub const DEFAULT_ACTION: &str = "push";

/// How long a stopping push port waits for the lines it is answering; then
/// it closes what is left (a client that stopped reading its answers, say).
const STOP_GRACE: Duration = Duration::from_secs(2);

/// Where the push port listens and how much it takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushPortConfig {
    pub listen: SocketAddr,
    /// Connections open at once; one more is refused, so a flood of idle
    /// connections cannot run the router out of file descriptors.
    pub max_connections: usize,
    /// Longest line, without its newline; a longer one is answered `error`
    /// and skipped, so one line cannot grow the router's memory.
    pub max_line_bytes: usize,
}

/// A line the push port takes: whom to publish to, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushLine {
    /// The user, from `uid` (an integer as its decimal text).
    pub user: String,
    /// The client frame to publish, JSON.
    pub frame: String,
}

/// Why a line was refused; the text follows `error ` in the answer.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BadLine {
    #[error("empty line")]
    Empty,
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error("no uid")]
    NoUid,
    #[error("uid must be a non-empty string or an integer")]
    BadUid,
    #[error("action must be a string of 1 to {MAX_ACTION_CHARS} characters")]
    BadAction,
    #[error("line too long (the limit is {0} bytes)")]
    TooLong(usize),
}

/// Reads one line (without its line ending) into what to publish.
pub fn parse_line(line: &[u8]) -> Result<PushLine, BadLine> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Err(BadLine::Empty);
    }
    // A map, not a Value: a JSON array or scalar is refused here.
    let mut object: Map<String, Value> = serde_json::from_slice(line).map_err(|e| BadLine::NotJson(one_line(&e)))?;
    let user = match object.remove("uid") {
        None => return Err(BadLine::NoUid),
        Some(Value::String(uid)) if !uid.is_empty() => uid,
        Some(Value::Number(uid)) if uid.is_i64() || uid.is_u64() => uid.to_string(),
        Some(_) => return Err(BadLine::BadUid),
    };
    let frame = match object.remove("action") {
        Some(Value::String(action)) if (1..=MAX_ACTION_CHARS).contains(&action.chars().count()) => {
            let details = object.remove("details").unwrap_or(Value::Null);
            client::encode(&action, &details, None)
        }
        Some(_) => return Err(BadLine::BadAction),
        None => client::encode(DEFAULT_ACTION, &object, None),
    };
    Ok(PushLine { user, frame })
}

/// serde_json's message, which is one line already; kept short.
fn one_line(error: &serde_json::Error) -> String {
    error.to_string().replace('\n', " ")
}

/// What answering a line uses: where to publish, and who is online.
#[derive(Debug, Clone)]
pub(crate) struct PushTarget {
    bus: Bus,
    subjects: Subjects,
    /// Cluster-wide presence, for `ok` or `fail`.
    presence: Presence,
}

impl PushTarget {
    /// The same bus, subjects and presence the backend API publishes with.
    pub fn of(api: &ApiState) -> PushTarget {
        PushTarget { bus: api.bus.clone(), subjects: api.subjects.clone(), presence: api.presence.clone() }
    }
}

/// A bound push port, ready to [`run`](PushPort::run).
#[derive(Debug)]
pub(crate) struct PushPort {
    listener: TcpListener,
    config: PushPortConfig,
}

impl PushPort {
    pub async fn bind(config: PushPortConfig) -> Result<PushPort, RouterError> {
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| RouterError::Bind { addr: config.listen, source })?;
        Ok(PushPort { listener, config })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// Takes connections until `stop`; then closes every connection once the
    /// line it is on (if any) is answered, within [`STOP_GRACE`], and
    /// returns. Every connection's task is tracked here: none outlives
    /// `run`.
    pub async fn run(self, target: PushTarget, stop: CancellationToken) {
        let PushPort { listener, config } = self;
        let slots = Arc::new(Semaphore::new(config.max_connections));
        let connections = TaskTracker::new();
        // Cancelled when the grace is over: cuts lines still being answered.
        let cut = CancellationToken::new();
        loop {
            let accepted = tokio::select! {
                () = stop.cancelled() => break,
                accepted = listener.accept() => accepted,
            };
            let mut stream = match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, say: wait a little, go on.
                    tracing::warn!(error = %e, "push port: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                connections.spawn(cut.clone().run_until_cancelled_owned(async move {
                    let _ = stream.write_all(b"error too many connections\n").await;
                }));
                continue;
            };
            let (target, max_line_bytes, stop) = (target.clone(), config.max_line_bytes, stop.clone());
            connections.spawn(cut.clone().run_until_cancelled_owned(async move {
                serve_connection(stream, &target, max_line_bytes, &stop).await;
                drop(slot);
            }));
        }
        connections.close();
        if tokio::time::timeout(STOP_GRACE, connections.wait()).await.is_err() {
            cut.cancel();
            connections.wait().await;
        }
    }
}

/// Answers one connection's lines, in order, until it closes or `stop`.
async fn serve_connection(stream: TcpStream, target: &PushTarget, max_line_bytes: usize, stop: &CancellationToken) {
    let (reader, mut writer) = stream.into_split();
    let mut lines = LineReader::new(reader, max_line_bytes);
    loop {
        let line = tokio::select! {
            () = stop.cancelled() => return,
            line = lines.next() => line,
        };
        let answer = match line {
            Ok(Some(Ok(line))) => answer(target, &line).await,
            Ok(Some(Err(too_long))) => format!("error {too_long}"),
            Ok(None) | Err(_) => return,
        };
        if writer.write_all(format!("{answer}\n").as_bytes()).await.is_err() {
            return;
        }
    }
}

/// Publishes what `line` says and tells whether its user is online.
async fn answer(target: &PushTarget, line: &[u8]) -> String {
    let push = match parse_line(line) {
        Ok(push) => push,
        Err(bad) => return format!("error {bad}"),
    };
    let subject = target.subjects.user(&push.user);
    let stamp = published_at::stamp_now();
    if let Err(e) =
        target.bus.publish_with_header(subject, (PUBLISHED_AT_HEADER, &stamp), Bytes::from(push.frame)).await
    {
        return format!("error bus unavailable: {e}");
    }
    match target.presence.user(&push.user).await {
        Ok(presence) if presence.online => "ok".to_owned(),
        Ok(_) => "fail".to_owned(),
        Err(e) => format!("error presence unavailable: {e}"),
    }
}

/// Splits a byte stream into lines of at most `max` bytes. A longer line is
/// reported as [`BadLine::TooLong`] and skipped to its end without being
/// kept. A last line without a newline at the end of the stream counts.
struct LineReader<R> {
    reader: R,
    /// Bytes read and not yet returned; never more than `max` + one read.
    buffer: BytesMut,
    max: usize,
    /// Skipping the rest of a line that was too long.
    skipping: bool,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    fn new(reader: R, max: usize) -> LineReader<R> {
        LineReader { reader, buffer: BytesMut::with_capacity(512), max, skipping: false }
    }

    /// The next line (its `\n` and a `\r` before it removed), `Err` for one
    /// too long, `None` at the end of the stream.
    async fn next(&mut self) -> std::io::Result<Option<Result<Bytes, BadLine>>> {
        loop {
            if let Some(end) = self.buffer.iter().position(|&b| b == b'\n') {
                let mut line = self.buffer.split_to(end + 1).freeze();
                if std::mem::take(&mut self.skipping) {
                    continue;
                }
                line.truncate(end);
                if line.last() == Some(&b'\r') {
                    line.truncate(end - 1);
                }
                if line.len() > self.max {
                    return Ok(Some(Err(BadLine::TooLong(self.max))));
                }
                return Ok(Some(Ok(line)));
            }
            if self.buffer.len() > self.max {
                // No newline in sight: answer now, drop what came, and drop
                // the rest of this line as it arrives.
                self.buffer.clear();
                let first = !std::mem::replace(&mut self.skipping, true);
                if first {
                    return Ok(Some(Err(BadLine::TooLong(self.max))));
                }
            }
            if self.reader.read_buf(&mut self.buffer).await? == 0 {
                let rest = std::mem::take(&mut self.buffer);
                if self.skipping || rest.iter().all(u8::is_ascii_whitespace) {
                    return Ok(None);
                }
                // Never over `max`: a longer buffer was cleared above.
                return Ok(Some(Ok(rest.freeze())));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parsed(line: &str) -> (String, Value) {
        let push = parse_line(line.as_bytes()).unwrap_or_else(|e| panic!("{line}: {e}"));
        (push.user, serde_json::from_str(&push.frame).unwrap())
    }

    #[test]
    fn a_line_without_action_is_pushed_whole_but_its_uid() {
        let (user, frame) = parsed(r#"{"uid":"ann","content":"hi","n":1}"#);
        assert_eq!(user, "ann");
        assert_eq!(frame, json!({"action": "push", "details": {"content": "hi", "n": 1}}));
        let (user, frame) = parsed(r#"{"uid":42}"#);
        assert_eq!((user.as_str(), frame), ("42", json!({"action": "push", "details": {}})));
    }

    #[test]
    fn a_line_with_action_is_that_action_and_its_details() {
        let (user, frame) = parsed(r#"{"uid":"a b.c","action":"news","details":[1,2],"extra":true}"#);
        assert_eq!(user, "a b.c");
        assert_eq!(frame, json!({"action": "news", "details": [1, 2]}));
        let (_, frame) = parsed(r#"{"action":"ping","uid":-7}"#);
        assert_eq!(frame, json!({"action": "ping", "details": null}));
    }

    #[test]
    fn bad_lines_say_what_is_wrong() {
        let error = |line: &str| parse_line(line.as_bytes()).unwrap_err().to_string();
        assert_eq!(error(""), "empty line");
        assert_eq!(error("  \t"), "empty line");
        assert!(error("hello").starts_with("not JSON: "), "{}", error("hello"));
        assert!(error(r#"[{"uid":1}]"#).starts_with("not JSON: "));
        assert!(error(r#""uid""#).starts_with("not JSON: "));
        assert_eq!(error(r#"{"content":"hi"}"#), "no uid");
        for uid in [r#""""#, "1.5", "null", "true", "[1]", "{}"] {
            assert_eq!(error(&format!(r#"{{"uid":{uid}}}"#)), "uid must be a non-empty string or an integer", "{uid}");
        }
        let long = "a".repeat(MAX_ACTION_CHARS + 1);
        for action in ["\"\"".to_owned(), "1".to_owned(), format!("\"{long}\"")] {
            assert_eq!(
                error(&format!(r#"{{"uid":1,"action":{action}}}"#)),
                "action must be a string of 1 to 128 characters"
            );
        }
        assert!(parse_line(&[0xff, 0xfe]).is_err());
    }

    async fn lines_of(input: &[u8], max: usize) -> Vec<Result<String, BadLine>> {
        let mut reader = LineReader::new(input, max);
        let mut lines = Vec::new();
        while let Some(line) = reader.next().await.unwrap() {
            lines.push(line.map(|bytes| String::from_utf8(bytes.to_vec()).unwrap()));
        }
        lines
    }

    #[tokio::test]
    async fn lines_are_split_bounded_and_a_long_one_is_skipped_to_its_end() {
        let ok = |s: &str| Ok(s.to_owned());
        assert_eq!(lines_of(b"a\r\nbc\n\nlast", 8).await, [ok("a"), ok("bc"), ok(""), ok("last")]);
        let long = format!("short\n{}\nafter\n", "x".repeat(5000));
        assert_eq!(lines_of(long.as_bytes(), 16).await, [ok("short"), Err(BadLine::TooLong(16)), ok("after")]);
        // Just over the limit, within one read.
        assert_eq!(lines_of(b"123456789\nok\n", 8).await, [Err(BadLine::TooLong(8)), ok("ok")]);
        assert_eq!(lines_of(b"12345678\n", 8).await, [ok("12345678")]);
        assert_eq!(lines_of(b"123456789", 8).await, [Err(BadLine::TooLong(8))]);
    }
}
