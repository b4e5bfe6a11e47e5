//! What the tests share: a handler that records, a subscriber with short
//! timings that records its events, a publisher, and temporary files.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use herald_nats_sub::{Config, Deliver, Delivery, Event, Subscriber, Subscription};
use tokio::sync::mpsc;

/// Longest wait for anything that should happen.
pub const WAIT: Duration = Duration::from_secs(10);

/// One message as a handler saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub subject: String,
    pub reply: Option<String>,
    /// Every header field, in order.
    pub headers: Vec<(String, String)>,
    pub payload: Bytes,
}

/// A handler that sends what it gets to the returned receiver.
pub fn inbox() -> (Arc<dyn Deliver>, mpsc::UnboundedReceiver<Received>) {
    let (sender, receiver) = mpsc::unbounded_channel();
    let handler = move |delivery: Delivery<'_>| {
        let _ = sender.send(Received {
            subject: delivery.subject.to_owned(),
            reply: delivery.reply.map(str::to_owned),
            headers: delivery
                .headers
                .map(|h| h.iter().map(|(n, v)| (n.to_owned(), v.to_owned())).collect())
                .unwrap_or_default(),
            payload: delivery.payload,
        });
    };
    (Arc::new(handler), receiver)
}

/// The next message, within [`WAIT`].
pub async fn next(receiver: &mut mpsc::UnboundedReceiver<Received>) -> Received {
    tokio::time::timeout(WAIT, receiver.recv())
        .await
        .unwrap_or_else(|_| panic!("no message within {WAIT:?}"))
        .expect("the handler is gone")
}

/// A subscriber with short timings, and the events it reported.
pub struct Recorded {
    pub subscriber: Subscriber,
    pub events: Arc<Mutex<Vec<Event>>>,
}

impl Recorded {
    /// Events so far.
    pub fn events(&self) -> Vec<Event> {
        self.events.lock().unwrap().clone()
    }

    pub fn count(&self, matches: impl Fn(&Event) -> bool) -> usize {
        self.events().iter().filter(|e| matches(e)).count()
    }

    /// Subscribes to `subject` with an [`inbox`], and waits until the
    /// server has it.
    pub async fn subscribed(&self, subject: &str) -> (Subscription, mpsc::UnboundedReceiver<Received>) {
        let (handler, receiver) = inbox();
        let subscription = self.subscriber.subscribe(subject, handler).expect("a good subject");
        self.sync().await;
        (subscription, receiver)
    }

    /// Waits until the server has every subscription made so far.
    pub async fn sync(&self) {
        tokio::time::timeout(WAIT, self.subscriber.sync()).await.expect("the subscriber did not sync in time");
    }
}

/// Short timings, so outages are noticed quickly.
pub fn config(urls: &[String]) -> Config {
    let mut config = Config::new(urls.to_vec(), "nats-sub-test");
    config.ping_interval = Duration::from_millis(250);
    config.max_reconnect_delay = Duration::from_millis(250);
    config
}

/// Connects with `config`, recording events.
pub fn connect(mut config: Config) -> Recorded {
    let events: Arc<Mutex<Vec<Event>>> = Arc::default();
    let recording = events.clone();
    config.on_event = Some(Arc::new(move |event: &Event| recording.lock().unwrap().push(event.clone())));
    Recorded { subscriber: Subscriber::connect(config).expect("config is good"), events }
}

/// A publisher: async-nats, connected and ready.
pub async fn publisher(url: &str) -> async_nats::Client {
    publisher_with(url, async_nats::ConnectOptions::new()).await
}

pub async fn publisher_with(url: &str, options: async_nats::ConnectOptions) -> async_nats::Client {
    let client = tokio::time::timeout(WAIT, options.connect(url)).await.expect("publisher connects in time");
    client.expect("publisher connects")
}

/// Publishes and waits until the server has it.
pub async fn publish(client: &async_nats::Client, subject: &str, payload: impl Into<Bytes>) {
    client.publish(subject.to_owned(), payload.into()).await.unwrap();
    client.flush().await.unwrap();
}

/// A directory of its own under the system's temporary directory, removed
/// on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).unwrap();
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let path = std::env::temp_dir().join(format!("nats-sub-{name}-{hex}"));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes a file in the directory and returns its path as text.
    pub fn write(&self, name: &str, contents: &str) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap();
        path.to_string_lossy().into_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
