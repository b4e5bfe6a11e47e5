//! Message history on JetStream, without consumers: the stream that stores
//! deliveries and republishes them with their positions, and Direct Get
//! reads of one subject after a position (`$JS.API.DIRECT.GET.<stream>`,
//! batched; nats-server ≥ 2.11). Why no consumers:
//! `docs/adr/0012-recovery-on-jetstream-direct-get.md`.
//!
//! Only NATS has it: the in-process bus has no store ([`crate::Bus::history`]
//! is `None` there).

use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::BusMessage;
use crate::nats::NatsBus;

/// Header of a stored or republished message: its stream sequence.
pub const SEQUENCE_HEADER: &str = "Nats-Sequence";
/// Header of a republished message: the previous sequence on its subject.
pub const LAST_SEQUENCE_HEADER: &str = "Nats-Last-Sequence";

/// How long one JetStream API call or one read may take.
const API_TIMEOUT: Duration = Duration::from_secs(2);

/// What the history stream looks like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSpec {
    pub name: String,
    /// Subjects stored (`herald.user.*`, `herald.group.*`, `herald.all`).
    pub subjects: Vec<String>,
    /// RePublish source (`herald.>`) and destination (`herald.history.>`).
    pub republish: (String, String),
    /// Messages kept per subject.
    pub depth: u32,
    pub max_age: Duration,
    pub replicas: u32,
}

/// Failures of the history store.
#[derive(Debug, Error)]
pub enum HistoryError {
    #[error("JetStream API {api}: {reason}")]
    Api { api: String, reason: String },
    #[error("the history stream {0} does not exist")]
    NoStream(String),
}

/// A handle on JetStream for one stream's history; cheap to clone.
#[derive(Debug, Clone)]
pub struct History {
    bus: NatsBus,
}

/// What a read of one subject found.
#[derive(Debug, Default)]
pub struct Read {
    /// The subject's messages from the asked sequence on, in order, each
    /// with its `Nats-Sequence` header.
    pub messages: Vec<BusMessage>,
}

/// The JetStream API's error, when a call failed.
#[derive(Debug, Deserialize)]
struct ApiError {
    code: u16,
    err_code: u32,
    description: String,
}

#[derive(Debug, Deserialize)]
struct ApiResponse {
    error: Option<ApiError>,
    created: Option<String>,
}

#[derive(Debug, Serialize)]
struct StreamConfig<'a> {
    name: &'a str,
    subjects: &'a [String],
    retention: &'static str,
    storage: &'static str,
    discard: &'static str,
    max_msgs_per_subject: i64,
    /// Nanoseconds.
    max_age: u128,
    num_replicas: u32,
    allow_direct: bool,
    republish: Republish<'a>,
}

#[derive(Debug, Serialize)]
struct Republish<'a> {
    src: &'a str,
    dest: &'a str,
}

#[derive(Debug, Serialize)]
struct DirectGet<'a> {
    seq: u64,
    next_by_subj: &'a str,
    batch: usize,
}

#[derive(Debug, Serialize)]
struct LastBySubject<'a> {
    last_by_subj: &'a str,
}

/// `err_code` of "stream name already in use with a different configuration".
const STREAM_NAME_IN_USE: u32 = 10058;
/// `err_code` of "stream not found".
const STREAM_NOT_FOUND: u32 = 10059;

impl History {
    pub(crate) fn new(bus: NatsBus) -> History {
        History { bus }
    }

    /// Creates the stream, or updates it to `spec`; returns its epoch.
    pub async fn ensure_stream(&self, spec: &StreamSpec) -> Result<u64, HistoryError> {
        let config = StreamConfig {
            name: &spec.name,
            subjects: &spec.subjects,
            retention: "limits",
            storage: "file",
            discard: "old",
            max_msgs_per_subject: i64::from(spec.depth),
            max_age: spec.max_age.as_nanos(),
            num_replicas: spec.replicas,
            allow_direct: true,
            republish: Republish { src: &spec.republish.0, dest: &spec.republish.1 },
        };
        let body = Bytes::from(serde_json::to_vec(&config).expect("a stream config serializes"));
        let created = self.api(&format!("STREAM.CREATE.{}", spec.name), body.clone()).await;
        let response = match created {
            Err(HistoryError::Api { reason, .. }) if reason.contains(&format!("[{STREAM_NAME_IN_USE}]")) => {
                self.api(&format!("STREAM.UPDATE.{}", spec.name), body).await?
            }
            other => other?,
        };
        Ok(epoch_of(response.created.as_deref().unwrap_or_default()))
    }

    /// The stream's epoch now, or `NoStream`.
    pub async fn epoch(&self, stream: &str) -> Result<u64, HistoryError> {
        match self.api(&format!("STREAM.INFO.{stream}"), Bytes::new()).await {
            Err(HistoryError::Api { reason, .. }) if reason.contains(&format!("[{STREAM_NOT_FOUND}]")) => {
                Err(HistoryError::NoStream(stream.to_owned()))
            }
            other => Ok(epoch_of(other?.created.as_deref().unwrap_or_default())),
        }
    }

    async fn api(&self, api: &str, body: Bytes) -> Result<ApiResponse, HistoryError> {
        let subject = format!("$JS.API.{api}");
        let failed = |reason: String| HistoryError::Api { api: api.to_owned(), reason };
        let reply = self.bus.request(subject, None, body, API_TIMEOUT).await.map_err(|e| failed(e.to_string()))?;
        let response: ApiResponse = serde_json::from_slice(&reply).map_err(|e| failed(e.to_string()))?;
        match response.error {
            Some(ApiError { code, err_code, description }) => Err(failed(format!("{code} [{err_code}] {description}"))),
            None => Ok(response),
        }
    }

    /// The last sequence stored on `subject`, 0 when it has none.
    pub async fn last_sequence(&self, stream: &str, subject: &str) -> Result<u64, HistoryError> {
        let body = serde_json::to_vec(&LastBySubject { last_by_subj: subject }).expect("serializes");
        let mut replies = self.direct_get(stream, body).await?;
        match tokio::time::timeout(API_TIMEOUT, replies.next()).await {
            Ok(Some(reply)) => match reply.status {
                None => Ok(sequence_of(reply.headers.as_ref())),
                Some(status) if status.as_u16() == 404 => Ok(0),
                Some(status) => Err(self.direct_error(stream, status.as_u16(), reply.description)),
            },
            _ => Err(timed_out()),
        }
    }

    /// The messages on `subject` from sequence `from` on (inclusive), at
    /// most `limit`, in batches of `batch`.
    pub async fn read(
        &self,
        stream: &str,
        subject: &str,
        from: u64,
        limit: usize,
        batch: usize,
    ) -> Result<Read, HistoryError> {
        let mut read = Read::default();
        let mut next = from.max(1);
        loop {
            let want = batch.min(limit - read.messages.len());
            let body = DirectGet { seq: next, next_by_subj: subject, batch: want };
            let mut replies = self.direct_get(stream, serde_json::to_vec(&body).expect("serializes")).await?;
            let mut pending = 0;
            loop {
                let Ok(Some(reply)) = tokio::time::timeout(API_TIMEOUT, replies.next()).await else {
                    return Err(timed_out());
                };
                match reply.status.map(|status| status.as_u16()) {
                    None => {
                        next = sequence_of(reply.headers.as_ref()) + 1;
                        read.messages.push(BusMessage {
                            subject: reply.subject,
                            reply: None,
                            payload: reply.payload,
                            headers: reply.headers,
                        });
                    }
                    // End of batch.
                    Some(204) => {
                        pending = header(reply.headers.as_ref(), "Nats-Num-Pending");
                        break;
                    }
                    // Nothing from `next` on.
                    Some(404) => break,
                    Some(status) => return Err(self.direct_error(stream, status, reply.description)),
                }
            }
            if pending == 0 || read.messages.len() >= limit {
                return Ok(read);
            }
        }
    }

    /// Sends a Direct Get on an inbox of its own and returns the inbox.
    async fn direct_get(&self, stream: &str, body: Vec<u8>) -> Result<async_nats::Subscriber, HistoryError> {
        let subject = format!("$JS.API.DIRECT.GET.{stream}");
        let failed = |reason: String| HistoryError::Api { api: "DIRECT.GET".to_owned(), reason };
        let client = self.bus.client();
        let inbox = client.new_inbox();
        let replies = client.subscribe(inbox.clone()).await.map_err(|e| failed(e.to_string()))?;
        client.publish_with_reply(subject, inbox, body.into()).await.map_err(|e| failed(e.to_string()))?;
        Ok(replies)
    }

    fn direct_error(&self, stream: &str, status: u16, description: Option<String>) -> HistoryError {
        match status {
            // Nobody answers Direct Gets for it: the stream is gone.
            503 => HistoryError::NoStream(stream.to_owned()),
            _ => HistoryError::Api {
                api: "DIRECT.GET".to_owned(),
                reason: format!("{status} {}", description.unwrap_or_default()),
            },
        }
    }
}

/// A Direct Get that got no answer in time.
fn timed_out() -> HistoryError {
    HistoryError::Api { api: "DIRECT.GET".to_owned(), reason: "timed out".to_owned() }
}

/// A stream incarnation's epoch: a hash (FNV-1a) of its creation time, the
/// same on every edge, different for a stream recreated under the same name.
fn epoch_of(created: &str) -> u64 {
    created.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3))
}

fn header(headers: Option<&async_nats::HeaderMap>, name: &str) -> u64 {
    headers.and_then(|h| h.get(name)).and_then(|value| value.as_str().parse().ok()).unwrap_or(0)
}

fn sequence_of(headers: Option<&async_nats::HeaderMap>) -> u64 {
    header(headers, SEQUENCE_HEADER)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_tell_incarnations_apart_and_agree_everywhere() {
        let first = epoch_of("2026-11-29T14:32:42.586287803Z");
        assert_eq!(first, epoch_of("2026-11-29T14:32:42.586287803Z"));
        assert_ne!(first, epoch_of("2026-11-29T14:32:42.586287804Z"));
    }
}
