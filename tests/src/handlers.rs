//! Handlers the routers call, played by the test, each a real service on
//! the real transport:
//!
//! - [`NatsHandler`]: a handler written with the handler SDK
//!   (`herald_handler::Handler`), answering a bus subject in its queue
//!   group, as an application would.
//! - [`RawHandler`]: a plain subscriber that answers whatever the test
//!   says, whenever it says: late, twice, or with bytes no SDK would write.
//! - [`HttpHandler`]: an HTTP server (axum) on 127.0.0.1 that records every
//!   request, headers and exact body bytes, and answers per test, like a PHP
//!   script behind a web server.
//!
//! Each records what it was asked, so a test can assert what the handler saw
//! (and that it saw nothing).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use futures_util::StreamExt;
use herald_bus::RequestError;
use herald_handler::{Handler, Reply, Request};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::task::AbortOnDropHandle;

use crate::background::{Background, next_within};
use crate::bus::TestBus;
use crate::setup::BusSource;

// --- the handler SDK ---------------------------------------------------------

/// A handler written with the handler SDK, serving one subject of the bus.
/// Dropping it stops it at once (like a crash); [`NatsHandler::stop`] stops
/// it gracefully.
#[derive(Debug)]
pub struct NatsHandler {
    subject: String,
    running: Background,
}

impl NatsHandler {
    /// Serves `subject` with `handle` (in the queue group named after the
    /// subject) on a bus of its own (on NATS, a connection of its own), and
    /// returns once requests reach it.
    pub async fn serve<D, F, Fut>(source: impl Into<BusSource>, subject: &str, handle: F) -> NatsHandler
    where
        D: DeserializeOwned + Send + 'static,
        F: Fn(Request<D>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Reply> + Send + 'static,
    {
        let bus = source.into().connect(&format!("herald-tests-handler-{subject}")).await;
        let serving_bus = bus.clone();
        let handler = Handler::new(subject);
        let running = Background::spawn(|stopped| async move {
            if let Err(e) = handler.serve(&serving_bus, handle, stopped).await {
                panic!("handler failed: {e}");
            }
        });
        // The SDK answers a payload that is not a handler request with a 400
        // of its own, without calling `handle`: a probe that proves the
        // subscription is live.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            match bus.request(subject.to_owned(), Bytes::from_static(b"probe"), Duration::from_millis(500)).await {
                Ok(_) => break,
                Err(RequestError::NoResponders(_) | RequestError::TimedOut(_))
                    if tokio::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err(e) => panic!("handler on {subject} did not start: {e}"),
            }
        }
        NatsHandler { subject: subject.to_owned(), running }
    }

    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// Stops taking requests, finishes the ones it has, and returns.
    pub async fn stop(&mut self) {
        self.running.stop(&format!("handler {}", self.subject), Duration::from_secs(10)).await;
    }
}

impl Drop for NatsHandler {
    fn drop(&mut self) {
        self.running.abort();
    }
}

/// Records requests a handler closure saw, for the test to read in order.
#[derive(Debug)]
pub struct Recorder<T> {
    tx: mpsc::UnboundedSender<T>,
    rx: mpsc::UnboundedReceiver<T>,
}

impl<T: std::fmt::Debug> Recorder<T> {
    pub fn new() -> Recorder<T> {
        let (tx, rx) = mpsc::unbounded_channel();
        Recorder { tx, rx }
    }

    /// Give this to the handler.
    pub fn sender(&self) -> mpsc::UnboundedSender<T> {
        self.tx.clone()
    }

    /// The next thing recorded, within [`RECV_TIMEOUT`](crate::RECV_TIMEOUT).
    pub async fn next(&mut self) -> T {
        next_within(&mut self.rx, "record").await
    }

    /// Asserts nothing is recorded for `time`.
    pub async fn expect_nothing(&mut self, time: Duration) {
        if let Ok(Some(got)) = tokio::time::timeout(time, self.rx.recv()).await {
            panic!("expected nothing recorded for {time:?}, got {got:?}");
        }
    }
}

impl<T: std::fmt::Debug> Default for Recorder<T> {
    fn default() -> Self {
        Recorder::new()
    }
}

// --- raw NATS ------------------------------------------------------------------

/// A subscriber on the test's bus answering requests with exactly what the
/// test says.
#[derive(Debug)]
pub struct RawHandler {
    requests: mpsc::UnboundedReceiver<Value>,
    sent: Arc<AtomicUsize>,
    /// Answers until the handler is dropped.
    _task: AbortOnDropHandle<()>,
}

impl RawHandler {
    /// Answers each request on `subject` with the payloads `answer` gives,
    /// each published to the request's reply subject (and flushed) after
    /// its delay, counted from when the request arrived. An empty list
    /// answers nothing.
    pub async fn start<F>(bus: &TestBus, subject: &str, answer: F) -> RawHandler
    where
        F: Fn(&Value) -> Vec<(Duration, String)> + Send + Sync + 'static,
    {
        let mut subscription = bus.subscribe(subject.to_owned()).await;
        let bus = bus.bus().clone();
        let (tx, requests) = mpsc::unbounded_channel();
        let sent = Arc::new(AtomicUsize::new(0));
        let counter = sent.clone();
        let answer = Arc::new(answer);
        let task = tokio::spawn(async move {
            while let Some(message) = subscription.next().await {
                let request: Value = serde_json::from_slice(&message.payload).unwrap_or(Value::Null);
                let answers = answer(&request);
                let _ = tx.send(request);
                let Some(reply) = message.reply().map(str::to_owned) else { continue };
                let bus = bus.clone();
                let counter = counter.clone();
                let arrived = tokio::time::Instant::now();
                tokio::spawn(async move {
                    for (delay, payload) in answers {
                        tokio::time::sleep_until(arrived + delay).await;
                        let _ = bus.publish(reply.clone(), payload.into()).await;
                        let _ = bus.flush().await;
                        counter.fetch_add(1, Ordering::SeqCst);
                    }
                });
            }
        });
        RawHandler { requests, sent, _task: AbortOnDropHandle::new(task) }
    }

    /// The next request it received.
    pub async fn next_request(&mut self) -> Value {
        next_within(&mut self.requests, "request to the raw handler").await
    }

    /// Answers published so far.
    pub fn answers_sent(&self) -> usize {
        self.sent.load(Ordering::SeqCst)
    }
}

// --- HTTP ------------------------------------------------------------------------

/// One request an [`HttpHandler`] received.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    /// The body, byte for byte.
    pub body: Bytes,
}

impl HttpRequest {
    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("handler request body is not JSON ({e}): {:?}", self.body))
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// Whether `Herald-Signature` is valid for this request's timestamp and
    /// exact body under `secret`, with the timestamp within five minutes of
    /// now (what a handler should check).
    pub fn signed_with(&self, secret: &[u8]) -> bool {
        self.verify(secret, &self.body)
    }

    /// Like [`HttpRequest::signed_with`], for another body.
    pub fn verify(&self, secret: &[u8], body: &[u8]) -> bool {
        let (Some(timestamp), Some(signature)) = (
            self.header(herald_proto::webhook::TIMESTAMP_HEADER),
            self.header(herald_proto::webhook::SIGNATURE_HEADER),
        ) else {
            return false;
        };
        herald_proto::webhook::verify(secret, timestamp, body, signature, unix_now(), 300)
    }
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_secs()
}

/// What an [`HttpHandler`] answers one request with.
#[derive(Debug, Clone)]
pub struct HttpAnswer {
    pub status: u16,
    pub body: String,
    /// Waits this long before answering.
    pub delay: Duration,
}

impl HttpAnswer {
    /// 200 with `value` as JSON.
    pub fn json(value: Value) -> HttpAnswer {
        HttpAnswer { status: 200, body: value.to_string(), delay: Duration::ZERO }
    }

    /// `status` with `body` as it is.
    pub fn raw(status: u16, body: &str) -> HttpAnswer {
        HttpAnswer { status, body: body.to_owned(), delay: Duration::ZERO }
    }

    /// The same answer, after `delay`.
    pub fn after(mut self, delay: Duration) -> HttpAnswer {
        self.delay = delay;
        self
    }
}

type Answer = dyn Fn(&HttpRequest) -> HttpAnswer + Send + Sync;

/// An HTTP server answering POSTs as a handler script would.
#[derive(Debug)]
pub struct HttpHandler {
    addr: SocketAddr,
    requests: mpsc::UnboundedReceiver<HttpRequest>,
    count: Arc<AtomicUsize>,
    /// Serves until the handler is dropped.
    _task: AbortOnDropHandle<()>,
}

impl HttpHandler {
    /// Serves on 127.0.0.1 with a port the OS picks; answers every request
    /// (any method, any path) with what `answer` says, after recording it.
    pub async fn start(answer: impl Fn(&HttpRequest) -> HttpAnswer + Send + Sync + 'static) -> HttpHandler {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local_addr");
        let (tx, requests) = mpsc::unbounded_channel();
        let count = Arc::new(AtomicUsize::new(0));
        let answer: Arc<Answer> = Arc::new(answer);
        let counter = count.clone();
        let app = axum::Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let answer = answer.clone();
            let tx = tx.clone();
            let counter = counter.clone();
            async move {
                let request = HttpRequest { method, uri, headers, body };
                let HttpAnswer { status, body, delay } = answer(&request);
                counter.fetch_add(1, Ordering::SeqCst);
                let _ = tx.send(request);
                tokio::time::sleep(delay).await;
                let status = StatusCode::from_u16(status).expect("a valid HTTP status");
                (status, [(axum::http::header::CONTENT_TYPE, "application/json")], body)
            }
        });
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                panic!("test HTTP handler failed: {e}");
            }
        });
        HttpHandler { addr, requests, count, _task: AbortOnDropHandle::new(task) }
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The next request it received.
    pub async fn next_request(&mut self) -> HttpRequest {
        next_within(&mut self.requests, "HTTP handler request").await
    }

    /// Requests received so far.
    pub fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }
}

/// `http://127.0.0.1:<port><path>` for a port nobody listens on: calls to
/// it are refused at once.
pub fn closed_port_url(path: &str) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let port = listener.local_addr().expect("local_addr").port();
    drop(listener);
    format!("http://127.0.0.1:{port}{path}")
}
