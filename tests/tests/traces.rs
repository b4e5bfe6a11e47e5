//! Traces: a `herald edge` and a `herald router` export their spans over
//! OTLP to a receiver this test runs (built on `opentelemetry-proto`'s
//! types), and so does this process for its handler written with the Rust
//! SDK. One client action makes one trace, edge → router → handler, with the
//! right parent links; an HTTP handler receives `traceparent` naming the
//! router's handler call, and a PHP handler written with the SDK carries
//! the trace on through what it publishes (HTTP API and NATS).

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use futures_util::StreamExt;
use herald_handler::{Reply, Request};
use herald_tests::{
    Client, HeraldProcess, HttpAnswer, HttpHandler, NatsHandler, NatsServer, PhpServer, RoutesFile, TEST_API_KEY,
    TEST_WEBHOOK_SECRET, TestBus, Token, assert_eventually,
};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use prost::Message;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// One span as the receiver got it.
#[derive(Debug, Clone)]
struct ReceivedSpan {
    service: String,
    name: String,
    trace_id: String,
    span_id: String,
    parent: String,
    attributes: Vec<(String, String)>,
}

impl ReceivedSpan {
    fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// An OTLP/HTTP trace receiver on a free port: keeps every span posted to
/// `/v1/traces`.
struct Receiver {
    url: String,
    spans: Arc<Mutex<Vec<ReceivedSpan>>>,
}

impl Receiver {
    async fn start() -> Receiver {
        let spans: Arc<Mutex<Vec<ReceivedSpan>>> = Arc::default();
        let app = axum::Router::new().route("/v1/traces", post(receive)).with_state(spans.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the receiver");
        let url = format!("http://{}", listener.local_addr().expect("bound"));
        tokio::spawn(async move { axum::serve(listener, app).await.expect("receiver serves") });
        Receiver { url, spans }
    }

    fn spans(&self) -> Vec<ReceivedSpan> {
        self.spans.lock().expect("spans").clone()
    }

    /// The one span named `name` with `attribute`, once it has arrived.
    async fn span(&self, name: &str, attribute: (&str, &str)) -> ReceivedSpan {
        let find = || {
            self.spans().into_iter().find(|span| span.name == name && span.attribute(attribute.0) == Some(attribute.1))
        };
        assert_eventually!(find().is_some(), Duration::from_secs(15));
        find().expect("found")
    }

    /// The span named `name` in `trace`, once it has arrived.
    async fn in_trace(&self, trace: &str, name: &str) -> ReceivedSpan {
        let find = || self.spans().into_iter().find(|span| span.trace_id == trace && span.name == name);
        let found = tokio::time::timeout(Duration::from_secs(15), async {
            loop {
                if let Some(span) = find() {
                    return span;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        found.unwrap_or_else(|_| panic!("no span {name} in trace {trace}; received:\n{:#?}", self.spans()))
    }
}

async fn receive(State(spans): State<Arc<Mutex<Vec<ReceivedSpan>>>>, body: Bytes) -> &'static str {
    let request = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf trace export");
    let mut received = spans.lock().expect("spans");
    for resource_spans in request.resource_spans {
        let resource = resource_spans.resource.map(|r| r.attributes).unwrap_or_default();
        let service = text_attributes(&resource)
            .into_iter()
            .find(|(k, _)| k == "service.name")
            .map(|(_, v)| v)
            .unwrap_or_default();
        for span in resource_spans.scope_spans.into_iter().flat_map(|scope| scope.spans) {
            received.push(ReceivedSpan {
                service: service.clone(),
                name: span.name,
                trace_id: hex::encode(&span.trace_id),
                span_id: hex::encode(&span.span_id),
                parent: hex::encode(&span.parent_span_id),
                attributes: text_attributes(&span.attributes),
            });
        }
    }
    ""
}

fn text_attributes(attributes: &[KeyValue]) -> Vec<(String, String)> {
    attributes
        .iter()
        .filter_map(|kv| match kv.value.as_ref()?.value.as_ref()? {
            AnyValue::StringValue(text) => Some((kv.key.clone(), text.clone())),
            _ => None,
        })
        .collect()
}

/// This process exports its own spans (the SDK handler's) to `receiver`,
/// as a handler application would with its collector.
fn export_this_process_to(receiver: &Receiver) {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        // The exporter's HTTP client needs a crypto provider, as Herald's does.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(format!("{}/v1/traces", receiver.url))
            .build()
            .expect("an OTLP exporter");
        let batch = opentelemetry_sdk::trace::BatchSpanProcessor::builder(exporter)
            .with_batch_config(
                opentelemetry_sdk::trace::BatchConfigBuilder::default()
                    .with_scheduled_delay(Duration::from_millis(100))
                    .build(),
            )
            .build();
        let resource = opentelemetry_sdk::Resource::builder().with_service_name("test-handler").build();
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
            .with_span_processor(batch)
            .with_resource(resource)
            .build();
        opentelemetry::global::set_text_map_propagator(opentelemetry_sdk::propagation::TraceContextPropagator::new());
        tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test-handler")))
            .init();
        // Kept for the whole test binary: it exports until the process ends.
        std::mem::forget(provider);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_action_is_one_trace_from_the_edge_through_the_router_to_the_handler() {
    let nats = NatsServer::start().await;
    let receiver = Receiver::start().await;
    export_this_process_to(&receiver);
    let _echo =
        NatsHandler::serve(&nats, "app.echo", |request: Request<Value>| async move { Reply::details(request.details) })
            .await;
    let mut page = HttpHandler::start(|_| HttpAnswer::json(json!({"details": "from http"}))).await;
    let php_addr = herald_tests::php::free_addr();
    let routes = RoutesFile::new(&format!(
        "[[routes]]\naction = \"echo\"\nnats = \"app.echo\"\n\n[[routes]]\naction = \"page\"\nhttp = \"{}\"\n\n\
         [[routes]]\naction = \"traced/*\"\nhttp = \"http://{php_addr}/traced.php\"\n",
        page.url("/handler.php")
    ));
    let exported = |command: herald_tests::process::HeraldCommand| {
        command.env("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.url).env("OTEL_BSP_SCHEDULE_DELAY", "100")
    };
    let router = exported(HeraldProcess::router(&nats, TEST_API_KEY))
        .env("HERALD_ROUTES_FILE", routes.path_str())
        .env("HERALD_WEBHOOK_SECRET", std::str::from_utf8(TEST_WEBHOOK_SECRET).expect("ASCII"))
        .spawn()
        .await;
    let edge = exported(HeraldProcess::edge(&nats)).spawn().await;
    assert_eventually!(edge.http("/readyz").await.0 == 200, Duration::from_secs(10));
    assert_eventually!(router.http("/readyz").await.0 == 200, Duration::from_secs(10));
    let mut alice = Client::open(&edge.ws_url(Some(&Token::user("alice").hs256()))).await;

    // A NATS handler: edge → router → handler call → the SDK's request span.
    alice.send_action("echo", json!({"n": 1}), json!(1)).await;
    assert_eq!(alice.recv_action("echo").await["details"], json!({"n": 1}));
    let action = receiver.span("herald.edge.action", ("action", "echo")).await;
    assert_eq!(action.service, "herald-edge");
    assert_eq!(action.parent, "", "the action starts the trace");
    let dispatch = receiver.in_trace(&action.trace_id, "herald.router.dispatch").await;
    assert_eq!(dispatch.service, "herald-router");
    assert_eq!(dispatch.parent, action.span_id, "the router continues the edge's action");
    let call = receiver.in_trace(&action.trace_id, "herald.router.handler").await;
    assert_eq!(call.parent, dispatch.span_id);
    assert_eq!(call.attribute("transport"), Some("nats"));
    let handled = receiver.in_trace(&action.trace_id, "herald.handler.request").await;
    assert_eq!(handled.service, "test-handler");
    assert_eq!(handled.parent, call.span_id, "the SDK continues the router's handler call");

    // An HTTP handler: it gets `traceparent` naming the router's call.
    alice.send_action("page", json!({}), json!(2)).await;
    assert_eq!(alice.recv_action("page").await["details"], "from http");
    let request = page.next_request().await;
    let traceparent = request.header("traceparent").expect("an HTTP handler gets traceparent").to_owned();
    let action = receiver.span("herald.edge.action", ("action", "page")).await;
    let dispatch = receiver.in_trace(&action.trace_id, "herald.router.dispatch").await;
    assert_eq!(dispatch.parent, action.span_id);
    let call = receiver.in_trace(&action.trace_id, "herald.router.handler").await;
    assert_eq!(call.parent, dispatch.span_id);
    assert_eq!(call.attribute("transport"), Some("http"));
    assert_eq!(traceparent, format!("00-{}-{}-01", action.trace_id, call.span_id));

    // A PHP handler (the SDK's) publishing while it answers: through the
    // API, the router's publish span continues the action's trace under
    // the handler call; over NATS, the message carries the same context.
    let php = PhpServer::start_at(
        php_addr,
        "sdk/php/tests/integration/public",
        &[
            ("HERALD_WEBHOOK_SECRET", std::str::from_utf8(TEST_WEBHOOK_SECRET).expect("ASCII").to_owned()),
            ("HERALD_API_URL", format!("http://{}", router.addr())),
            ("HERALD_API_KEY", TEST_API_KEY.to_owned()),
            ("NATS_URL", nats.url()),
        ],
    )
    .await;
    let bus = TestBus::connect(&nats).await;
    let mut traced = bus.subscribe(bus.subjects().group("traced")).await;
    bus.flush().await;
    alice.send_action("traced/publish", json!({}), json!(3)).await;
    let answered = alice.recv_action("traced/publish").await;
    let action = receiver.span("herald.edge.action", ("action", "traced/publish")).await;
    let call = receiver.in_trace(&action.trace_id, "herald.router.handler").await;
    let sent = format!("00-{}-{}-01", action.trace_id, call.span_id);
    assert_eq!(answered["details"]["traceparent"], sent.as_str(), "PHP reads the traceparent it was sent");
    let published = receiver.span("herald.router.api.publish", ("action", "via-api")).await;
    assert_eq!(published.trace_id, action.trace_id, "the API publish continues the action's trace");
    assert_eq!(published.parent, call.span_id, "under the router's call to the PHP handler");
    let mut via_nats = None;
    for _ in 0..2 {
        let message =
            tokio::time::timeout(Duration::from_secs(5), traced.next()).await.expect("a publish").expect("open");
        if message.payload.as_ref() == br#"{"action":"via-nats","details":null}"# {
            via_nats = Some(message);
        }
    }
    let via_nats = via_nats.expect("the PHP handler's NATS publish");
    assert_eq!(via_nats.header("traceparent"), Some(sent.as_str()), "the NATS publish carries the trace on");
    drop(php);

    // A publish through the API starts its own trace.
    let (status, _) = router
        .api("POST", "/api/publish", Some(&json!({"to": {"groups": ["room"]}, "action": "news"})), Some(TEST_API_KEY))
        .await;
    assert_eq!(status, 200);
    let publish = receiver.span("herald.router.api.publish", ("action", "news")).await;
    assert_eq!(publish.service, "herald-router");
}
