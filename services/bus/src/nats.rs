//! The bus on NATS.

use std::time::Duration;

use bytes::Bytes;

use crate::{BusError, RequestError, Subscription};

/// How to reach NATS.
#[derive(Debug, Clone)]
pub struct BusConfig {
    /// Server URLs, tried in turn (`nats://host:4222`).
    pub urls: Vec<String>,
    /// Connection name, shown by `nats-server` monitoring.
    pub name: String,
}

/// A NATS connection.
#[derive(Clone, Debug)]
pub struct NatsBus {
    client: async_nats::Client,
}

impl NatsBus {
    pub(crate) async fn connect(config: &BusConfig) -> Result<NatsBus, BusError> {
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
        Ok(NatsBus { client })
    }

    pub(crate) fn is_connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    pub(crate) fn new_inbox(&self) -> String {
        self.client.new_inbox()
    }

    pub(crate) async fn subscribe(&self, subject: String, queue: Option<String>) -> Result<Subscription, BusError> {
        let subscribed = match queue {
            Some(queue) => self.client.queue_subscribe(subject.clone(), queue).await,
            None => self.client.subscribe(subject.clone()).await,
        };
        subscribed.map(Subscription::Nats).map_err(|e| BusError::Subscribe { subject, reason: e.to_string() })
    }

    pub(crate) async fn publish(
        &self,
        subject: String,
        reply: Option<String>,
        headers: Option<async_nats::HeaderMap>,
        payload: Bytes,
    ) -> Result<(), BusError> {
        let published = match (reply, headers) {
            (None, None) => self.client.publish(subject.clone(), payload).await,
            (None, Some(headers)) => self.client.publish_with_headers(subject.clone(), headers, payload).await,
            (Some(reply), None) => self.client.publish_with_reply(subject.clone(), reply, payload).await,
            (Some(reply), Some(headers)) => {
                self.client.publish_with_reply_and_headers(subject.clone(), reply, headers, payload).await
            }
        };
        published.map_err(|e| BusError::Publish { subject, reason: e.to_string() })
    }

    pub(crate) async fn request(
        &self,
        subject: String,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<Bytes, RequestError> {
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

    pub(crate) async fn flush(&self) -> Result<(), BusError> {
        self.client
            .flush()
            .await
            .map_err(|e| BusError::Publish { subject: "(flush)".to_owned(), reason: e.to_string() })
    }
}
