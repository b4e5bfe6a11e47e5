//! The message bus Herald's services talk over.
//!
//! A thin layer over NATS that speaks in Herald's terms (subjects, payloads,
//! one header) so that the services never touch the client library directly
//! and so that a second, in-process bus can stand in for `herald dev`.
//!
//! Reconnection is the client library's: after an outage it reconnects with
//! backoff and re-subscribes every live subscription itself. Messages
//! published while it is disconnected are lost (NATS core is at-most-once).

pub mod responder;

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use thiserror::Error;

/// How to reach NATS.
#[derive(Debug, Clone)]
pub struct BusConfig {
    /// Server URLs, tried in turn (`nats://host:4222`).
    pub urls: Vec<String>,
    /// Connection name, shown by `nats-server` monitoring.
    pub name: String,
}

/// Failures talking to the bus.
#[derive(Debug, Error)]
pub enum BusError {
    #[error("bad NATS URL {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("cannot subscribe to {subject}: {reason}")]
    Subscribe { subject: String, reason: String },
    #[error("cannot publish to {subject}: {reason}")]
    Publish { subject: String, reason: String },
}

/// Why a request got no reply.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum RequestError {
    /// Nobody listens on the subject.
    #[error("no responders on {0}")]
    NoResponders(String),
    /// Somebody listens but did not answer in time.
    #[error("request to {0} timed out")]
    TimedOut(String),
    /// The bus could not send the request (e.g. disconnected).
    #[error("request to {subject} failed: {reason}")]
    Failed { subject: String, reason: String },
}

/// A connection to the bus; cheap to clone, every clone shares it.
#[derive(Clone, Debug)]
pub struct Bus {
    client: async_nats::Client,
}

/// One message received on a subscription.
#[derive(Debug)]
pub struct BusMessage {
    subject: async_nats::Subject,
    /// Where the sender waits for an answer, for requests.
    reply: Option<async_nats::Subject>,
    pub payload: Bytes,
    headers: Option<async_nats::HeaderMap>,
}

impl BusMessage {
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The subject to answer a request on.
    pub fn reply(&self) -> Option<&str> {
        self.reply.as_deref()
    }

    /// The first value of a header, if the message has it.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.as_ref()?.get(name).map(|value| value.as_str())
    }
}

impl Bus {
    /// Connects in the background: start-up does not wait for NATS, so a
    /// process can come up (and report itself unready) while NATS is down.
    pub async fn connect(config: &BusConfig) -> Result<Bus, BusError> {
        let urls = config
            .urls
            .iter()
            .map(|url| {
                url.parse::<async_nats::ServerAddr>()
                    .map_err(|e| BusError::BadUrl { url: url.clone(), reason: e.to_string() })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let options = async_nats::ConnectOptions::new()
            .name(&config.name)
            .retry_on_initial_connect()
            .max_reconnects(None)
            .event_callback(|event| async move {
                match event {
                    async_nats::Event::Connected => tracing::info!("NATS connected"),
                    async_nats::Event::Disconnected => tracing::warn!("NATS disconnected; reconnecting"),
                    other => tracing::warn!(event = %other, "NATS event"),
                }
            });
        let client = options
            .connect(urls)
            .await
            .map_err(|e| BusError::BadUrl { url: config.urls.join(","), reason: e.to_string() })?;
        Ok(Bus { client })
    }

    /// Whether the bus is connected right now.
    pub fn is_connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    pub async fn subscribe(&self, subject: String) -> Result<Subscription, BusError> {
        match self.client.subscribe(subject.clone()).await {
            Ok(inner) => Ok(Subscription { inner }),
            Err(e) => Err(BusError::Subscribe { subject, reason: e.to_string() }),
        }
    }

    /// Subscribes as one member of a queue group: each message goes to one
    /// member of the group.
    pub async fn queue_subscribe(&self, subject: String, group: String) -> Result<Subscription, BusError> {
        match self.client.queue_subscribe(subject.clone(), group).await {
            Ok(inner) => Ok(Subscription { inner }),
            Err(e) => Err(BusError::Subscribe { subject, reason: e.to_string() }),
        }
    }

    pub async fn publish(&self, subject: String, payload: Bytes) -> Result<(), BusError> {
        self.client
            .publish(subject.clone(), payload)
            .await
            .map_err(|e| BusError::Publish { subject, reason: e.to_string() })
    }

    /// Publishes with one header, e.g. `Herald-Exclude-Conn`.
    pub async fn publish_with_header(
        &self,
        subject: String,
        header: (&str, &str),
        payload: Bytes,
    ) -> Result<(), BusError> {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(header.0, header.1);
        self.client
            .publish_with_headers(subject.clone(), headers, payload)
            .await
            .map_err(|e| BusError::Publish { subject, reason: e.to_string() })
    }

    /// Sends a request and waits up to `timeout` for the first reply.
    pub async fn request(&self, subject: String, payload: Bytes, timeout: Duration) -> Result<Bytes, RequestError> {
        let request = async_nats::Request::new().payload(payload).timeout(Some(timeout));
        match self.client.send_request(subject.clone(), request).await {
            Ok(reply) => Ok(reply.payload),
            Err(e) => Err(match e.kind() {
                async_nats::RequestErrorKind::NoResponders => RequestError::NoResponders(subject),
                async_nats::RequestErrorKind::TimedOut => RequestError::TimedOut(subject),
                _ => RequestError::Failed { subject, reason: e.to_string() },
            }),
        }
    }

    /// Asks every listener on `subject` and gathers their answers until
    /// `expected` have arrived or `timeout` passes, whichever is first.
    pub async fn scatter(
        &self,
        subject: String,
        payload: Bytes,
        expected: usize,
        timeout: Duration,
    ) -> Result<Vec<Bytes>, BusError> {
        let inbox = self.client.new_inbox();
        let mut answers = self.subscribe(inbox.clone()).await?;
        self.client
            .publish_with_reply(subject.clone(), inbox, payload)
            .await
            .map_err(|e| BusError::Publish { subject, reason: e.to_string() })?;
        let mut gathered = Vec::new();
        let deadline = tokio::time::Instant::now() + timeout;
        while gathered.len() < expected {
            match tokio::time::timeout_at(deadline, futures_util::StreamExt::next(&mut answers)).await {
                Ok(Some(answer)) => gathered.push(answer.payload),
                Ok(None) | Err(_) => break,
            }
        }
        Ok(gathered)
    }

    /// Waits until everything published so far has reached the server.
    pub async fn flush(&self) -> Result<(), BusError> {
        self.client
            .flush()
            .await
            .map_err(|e| BusError::Publish { subject: "(flush)".to_owned(), reason: e.to_string() })
    }
}

/// The messages of one subscription; dropping it unsubscribes.
#[derive(Debug)]
pub struct Subscription {
    inner: async_nats::Subscriber,
}

impl Subscription {
    /// Stops new messages from coming while those already on their way are
    /// still read; the stream ends after them. Lets a queue-group member
    /// leave without dropping requests NATS already gave it.
    pub async fn drain(&mut self) -> Result<(), BusError> {
        self.inner
            .drain()
            .await
            .map_err(|e| BusError::Subscribe { subject: "(drain)".to_owned(), reason: e.to_string() })
    }
}

impl Stream for Subscription {
    type Item = BusMessage;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<BusMessage>> {
        Pin::new(&mut self.inner).poll_next(cx).map(|message| {
            message.map(|m| BusMessage { subject: m.subject, reply: m.reply, payload: m.payload, headers: m.headers })
        })
    }
}
