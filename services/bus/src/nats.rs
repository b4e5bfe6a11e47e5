//! The bus on NATS.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use herald_nats_sub as nats_sub;
use prometheus_client::metrics::counter::Counter;
use tokio::sync::oneshot;
use tokio_util::task::AbortOnDropHandle;

use crate::deliveries::subscriber_config;
use crate::queue::{Member, QueueSubscription};
use crate::{BusError, RequestError, Subscription};

/// How to reach NATS.
#[derive(Debug, Clone)]
pub struct BusConfig {
    /// Server URLs, tried in turn (`nats://host:4222`).
    pub urls: Vec<String>,
    /// Connection name, shown by `nats-server` monitoring.
    pub name: String,
    /// How long each connection (the bus's and the deliveries') waits on a
    /// silent server before pinging it. A server that stops answering
    /// without closing the socket (its machine gone, its process frozen) is
    /// left for another after two to three of these: async-nats leaves after
    /// three unanswered pings, the deliveries' connection after two pings
    /// with nothing at all heard (`herald_nats_sub::Config::ping_interval`).
    /// At async-nats's default (60 s) every delivery through a frozen server
    /// would stop for three minutes; too short, and a server seconds behind
    /// on a subscribe storm is left while alive, and every subscription is
    /// sent again (ADR 0016).
    pub ping_interval: Duration,
}

impl BusConfig {
    /// `urls` under `name`, with the settings' default timings.
    pub fn new(urls: Vec<String>, name: impl Into<String>) -> BusConfig {
        BusConfig {
            urls,
            name: name.into(),
            ping_interval: herald_settings::nats::NATS_PING_INTERVAL_MS.default_value(),
        }
    }
}

/// How long [`NatsBus::sync`] waits for its echo.
const SYNC_TIMEOUT: Duration = Duration::from_secs(5);

/// How long one attempt to connect to a server may take, greeting
/// included. A frozen server's machine still accepts the connection and then
/// says nothing; at the library's default (5 s) a reconnect that tries it
/// first waits that long before trying the next. A live server greets at
/// once.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A NATS connection.
#[derive(Clone, Debug)]
pub struct NatsBus {
    client: async_nats::Client,
    /// How it was reached, for the deliveries' connection to the same servers.
    config: Arc<BusConfig>,
    /// Round trips through the server, for [`NatsBus::sync`].
    echoes: Arc<Echoes>,
    /// Connections made again after a disconnection, for `/metrics`.
    reconnects: Counter,
    /// The subscribe-only connection queue-group members ride (ADR 0033),
    /// made with the first of them: an edge has none.
    members: Arc<tokio::sync::OnceCell<nats_sub::Subscriber>>,
}

/// Pings this connection sends itself through the server: one long-lived
/// subscription on `<inbox>.*`, and a waiter per ping in flight.
#[derive(Debug)]
struct Echoes {
    /// `<inbox>`: pings go to `<inbox>.<n>`.
    prefix: String,
    /// Source of ping numbers.
    next: AtomicU64,
    /// Who waits for which ping.
    waiters: Arc<Mutex<HashMap<u64, oneshot::Sender<()>>>>,
    /// Reads the echoes; ends with the bus.
    _reader: AbortOnDropHandle<()>,
}

impl NatsBus {
    pub(crate) async fn connect(config: &BusConfig) -> Result<NatsBus, BusError> {
        let urls = config
            .urls
            .iter()
            .map(|url| {
                url.parse::<async_nats::ServerAddr>()
                    .map_err(|e| BusError::BadUrl { url: url.clone(), reason: e.into() })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let reconnects = Counter::default();
        let (counting, connected_once) = (reconnects.clone(), Arc::new(AtomicBool::new(false)));
        let options = async_nats::ConnectOptions::new()
            .name(&config.name)
            .retry_on_initial_connect()
            .max_reconnects(None)
            .ping_interval(config.ping_interval)
            .connection_timeout(CONNECT_TIMEOUT)
            .event_callback(move |event| {
                let (counting, connected_once) = (counting.clone(), connected_once.clone());
                async move {
                    match event {
                        async_nats::Event::Connected => {
                            if connected_once.swap(true, Ordering::Relaxed) {
                                counting.inc();
                            }
                            tracing::info!("NATS connected");
                        }
                        async_nats::Event::Disconnected => tracing::warn!("NATS disconnected; reconnecting"),
                        other => tracing::warn!(event = %other, "NATS event"),
                    }
                }
            });
        let client = options
            .connect(urls)
            .await
            .map_err(|e| BusError::BadUrl { url: config.urls.join(","), reason: e.into() })?;
        let prefix = client.new_inbox();
        let mut echoes = client
            .subscribe(format!("{prefix}.*"))
            .await
            .map_err(|e| BusError::Subscribe { subject: format!("{prefix}.*"), reason: e.into() })?;
        let waiters: Arc<Mutex<HashMap<u64, oneshot::Sender<()>>>> = Arc::default();
        let reading = waiters.clone();
        let reader = AbortOnDropHandle::new(tokio::spawn(async move {
            while let Some(echo) = echoes.next().await {
                let Some(Ok(n)) = echo.subject.rsplit('.').next().map(str::parse::<u64>) else { continue };
                if let Some(waiter) = lock(&reading).remove(&n) {
                    let _ = waiter.send(());
                }
            }
        }));
        let echoes = Echoes { prefix, next: AtomicU64::new(0), waiters, _reader: reader };
        Ok(NatsBus {
            client,
            config: Arc::new(config.clone()),
            echoes: Arc::new(echoes),
            reconnects,
            members: Arc::default(),
        })
    }

    /// Returns once the server has handled everything this connection sent
    /// before: it sends itself a message through the server and waits for
    /// it. NATS handles one connection's operations in order, so a
    /// subscription made before a sync is live for every publisher after
    /// it. (`flush` only writes to the socket.) Queue-group members,
    /// on a connection of their own, are synced there too.
    pub(crate) async fn sync(&self) -> Result<(), BusError> {
        self.sync_echo().await?;
        if let Some(members) = self.members.get()
            && tokio::time::timeout(SYNC_TIMEOUT, members.sync()).await.is_err()
        {
            let reason = "the server did not confirm them in time".into();
            return Err(BusError::Subscribe { subject: "(queue group members)".to_owned(), reason });
        }
        Ok(())
    }

    async fn sync_echo(&self) -> Result<(), BusError> {
        let n = self.echoes.next.fetch_add(1, Ordering::Relaxed);
        let (done, echoed) = oneshot::channel();
        lock(&self.echoes.waiters).insert(n, done);
        let subject = format!("{}.{n}", self.echoes.prefix);
        let sent = self.publish(subject.clone(), None, None, Bytes::new()).await;
        let result = match sent {
            Ok(()) => match tokio::time::timeout(SYNC_TIMEOUT, echoed).await {
                Ok(Ok(())) => Ok(()),
                _ => Err(BusError::Publish { subject, reason: "no echo from the server in time".into() }),
            },
            Err(e) => Err(e),
        };
        lock(&self.echoes.waiters).remove(&n);
        result
    }

    pub(crate) fn config(&self) -> &BusConfig {
        &self.config
    }

    pub(crate) fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// Whether the bus's connection is up, and the members' if there are
    /// any (a router without it takes no request).
    pub(crate) fn is_connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
            && self.members.get().is_none_or(nats_sub::Subscriber::is_connected)
    }

    /// Counts the connections made again after a disconnection.
    pub(crate) fn reconnects(&self) -> Counter {
        self.reconnects.clone()
    }

    pub(crate) fn new_inbox(&self) -> String {
        self.client.new_inbox()
    }

    pub(crate) async fn subscribe(&self, subject: String) -> Result<Subscription, BusError> {
        let subscribed = self.client.subscribe(subject.clone()).await;
        subscribed.map(Subscription::Nats).map_err(|e| BusError::Subscribe { subject, reason: e.into() })
    }

    /// Joins queue group `group` on `subject`, over the members' connection
    /// (started with the first member, in the background like the bus's).
    pub(crate) async fn queue_subscribe(&self, subject: &str, group: &str) -> Result<QueueSubscription, BusError> {
        let members = self
            .members
            .get_or_try_init(|| async {
                let config = subscriber_config(&self.config, "queue members", self.reconnects.clone());
                nats_sub::Subscriber::connect(config)
                    .map_err(|e| BusError::BadUrl { url: self.config.urls.join(","), reason: e.into() })
            })
            .await?;
        Member::join(members, subject, group).map(QueueSubscription::Nats)
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
        published.map_err(|e| BusError::Publish { subject, reason: e.into() })
    }

    pub(crate) async fn request(
        &self,
        subject: String,
        headers: Option<async_nats::HeaderMap>,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<Bytes, RequestError> {
        let mut request = async_nats::Request::new().payload(payload).timeout(Some(timeout));
        if let Some(headers) = headers {
            request = request.headers(headers);
        }
        match self.client.send_request(subject.clone(), request).await {
            Ok(reply) => Ok(reply.payload),
            Err(e) => Err(match e.kind() {
                async_nats::RequestErrorKind::NoResponders => RequestError::NoResponders(subject),
                async_nats::RequestErrorKind::TimedOut => RequestError::TimedOut(subject),
                _ => RequestError::Failed { subject, reason: e.into() },
            }),
        }
    }

    pub(crate) async fn flush(&self) -> Result<(), BusError> {
        self.client.flush().await.map_err(|e| BusError::Publish { subject: "(flush)".to_owned(), reason: e.into() })
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
