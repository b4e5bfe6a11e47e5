//! The router's Pusher HTTP API (`/apps/<id>/...`) and its webhook sender,
//! driven by Pusher's own server SDKs (the npm `pusher` 5 and the PyPI
//! `pusher` 3) on a real nats-server, with real edges and native Herald
//! clients: a Pusher channel is the Herald group of the same name, so what
//! an SDK triggers reaches every Herald client in that group.
//!
//! Channel queries and webhooks decided by edges need the edges' Pusher
//! side; here webhook events are published on `herald.pusher.webhooks` as
//! an edge publishes them, and the webhooks the router sends are checked by
//! each SDK's own webhook validation.

use std::time::{SystemTime, UNIX_EPOCH};

use herald_proto::close;
use herald_proto::conn_id::ConnId;
use herald_proto::pusher::app::{App, WebhookKind};
use herald_proto::pusher::sign::sign_rest;
use herald_proto::pusher::socket_id::SocketId;
use herald_tests::http::{exchange, metric};
use herald_tests::pusher_sdk::{PusherSdk, SdkDriver};
use herald_tests::{Client, HttpAnswer, HttpHandler, NatsServer, TestBus, TestEdge, TestRouter, both_sdks};
use serde_json::{Value, json};

/// The app every test serves: a Laravel `.env`'s PUSHER_APP_ID, KEY and
/// SECRET.
fn test_app() -> App {
    App::new("4242", "herald-test-key", "herald-test-secret")
}

/// A nats-server, a router serving `app`, and an edge.
async fn cluster(app: App) -> (NatsServer, TestRouter, TestEdge) {
    let nats = NatsServer::start().await;
    let apps = herald_proto::pusher::app::Apps::new(vec![app]).unwrap();
    let router = TestRouter::builder(&nats).config(move |config| config.pusher_apps = apps).spawn().await;
    let edge = TestEdge::start(&nats).await;
    (nats, router, edge)
}

/// What a successful API call answers, whichever SDK made it: the body
/// (the npm SDK gives the response, whose status must be 200).
fn body(sdk: PusherSdk, answer: Value) -> Value {
    match sdk {
        PusherSdk::Node => {
            assert_eq!(answer["status"], 200, "{answer}");
            answer["body"].clone()
        }
        PusherSdk::Python => answer,
    }
}

/// The `socket_id` Pusher would give connection `conn`.
fn socket_id(conn: &str) -> String {
    SocketId::of(&conn.parse::<ConnId>().unwrap()).expect("every conn id has a socket id").to_string()
}

both_sdks!(triggers_reach_herald_clients_in_the_channels_group);
async fn triggers_reach_herald_clients_in_the_channels_group(sdk: PusherSdk) {
    let (_nats, router, edge) = cluster(test_app()).await;
    let mut alice = edge.user("alice", &["news", "private-App.Models.User.1"]).await;
    let mut bob = edge.user("bob", &["news"]).await;
    let mut carol = edge.user("carol", &[]).await;
    let mut pusher = SdkDriver::start(sdk, &test_app(), router.addr());

    // One channel; data that is JSON reaches Herald clients parsed.
    let answer = pusher.ok("trigger", json!(["news", "greeting", {"hello": "world"}])).await;
    assert_eq!(body(sdk, answer), json!({}));
    let frame = json!({"action": "greeting", "details": {"hello": "world"}});
    assert_eq!(alice.recv().await, frame);
    assert_eq!(bob.recv().await, frame);
    Client::all_silent(&mut [&mut alice, &mut bob, &mut carol]).await;

    // Several channels, one with dots (Laravel's private-App.Models.User.1)
    // and one nobody holds; data that is no JSON stays a string.
    let channels = json!(["news", "private-App.Models.User.1", "presence-empty"]);
    pusher.ok("trigger", json!([channels, "multi", "plain text"])).await;
    let frame = json!({"action": "multi", "details": "plain text"});
    assert_eq!(alice.recv().await, frame);
    assert_eq!(alice.recv().await, frame, "once per channel alice is in");
    assert_eq!(bob.recv().await, frame);
    Client::all_silent(&mut [&mut alice, &mut bob, &mut carol]).await;

    // socket_id leaves out that connection (Laravel's toOthers()).
    let exclude = socket_id(alice.conn());
    let args = match sdk {
        PusherSdk::Node => json!(["news", "others", 1, {"socket_id": exclude}]),
        PusherSdk::Python => json!(["news", "others", 1, exclude]),
    };
    pusher.ok("trigger", args).await;
    assert_eq!(bob.recv().await, json!({"action": "others", "details": 1}));
    Client::all_silent(&mut [&mut alice, &mut bob, &mut carol]).await;

    // A batch: each event to its channel (the order between two channels
    // is not kept, as with Pusher).
    let batch = json!([[
        {"channel": "news", "name": "first", "data": "1"},
        {"channel": "private-App.Models.User.1", "name": "second", "data": "{\"n\":2}"},
    ]]);
    let answer = pusher.ok(pusher.method("triggerBatch", "trigger_batch"), batch).await;
    assert_eq!(body(sdk, answer), json!({}));
    let mut got = [alice.recv().await, alice.recv().await];
    got.sort_by_key(|frame| frame["action"].to_string());
    assert_eq!(got, [json!({"action": "first", "details": 1}), json!({"action": "second", "details": {"n": 2}})]);
    assert_eq!(bob.recv().await, json!({"action": "first", "details": 1}));
    Client::all_silent(&mut [&mut alice, &mut bob, &mut carol]).await;

    // The user channel (sendToUser) is the Herald user.
    pusher.ok(pusher.method("sendToUser", "send_to_user"), json!(["carol", "direct", {"to": "you"}])).await;
    assert_eq!(carol.recv().await, json!({"action": "direct", "details": {"to": "you"}}));
    Client::all_silent(&mut [&mut alice, &mut bob, &mut carol]).await;
}

both_sdks!(terminate_connections_closes_every_connection_of_the_user_on_every_edge);
async fn terminate_connections_closes_every_connection_of_the_user_on_every_edge(sdk: PusherSdk) {
    let (nats, router, edge1) = cluster(test_app()).await;
    let edge2 = TestEdge::start(&nats).await;
    let mut tab1 = edge1.user("alice", &["news"]).await;
    let mut tab2 = edge2.user("alice", &["news"]).await;
    let mut bob = edge2.user("bob", &["news"]).await;
    let mut pusher = SdkDriver::start(sdk, &test_app(), router.addr());

    let answer =
        pusher.ok(pusher.method("terminateUserConnections", "terminate_user_connections"), json!(["alice"])).await;
    assert_eq!(body(sdk, answer), json!({}));
    tab1.expect_close(close::BACKEND_DISCONNECT).await;
    tab2.expect_close(close::BACKEND_DISCONNECT).await;

    // Nobody else is touched.
    pusher.ok("trigger", json!(["news", "still", "here"])).await;
    assert_eq!(bob.recv().await, json!({"action": "still", "details": "here"}));
}

both_sdks!(refusals_are_pushers_and_harm_nobody);
async fn refusals_are_pushers_and_harm_nobody(sdk: PusherSdk) {
    let (_nats, router, edge) = cluster(test_app()).await;
    let mut alice = edge.user("alice", &["news"]).await;

    // The wrong secret: 401, saying what should have been signed.
    let wrong_secret = App::new("4242", "herald-test-key", "not-the-secret");
    let mut forger = SdkDriver::start(sdk, &wrong_secret, router.addr());
    let refusal = forger.refused("trigger", json!(["news", "forged", 1])).await;
    assert!(refusal.contains("Invalid signature: you should have sent HmacSHA256Hex"), "{refusal}");
    assert_status(sdk, &refusal, 401);
    // An unknown key, an unknown app: 401 and 404.
    let mut stranger = SdkDriver::start(sdk, &App::new("4242", "other-key", "s"), router.addr());
    let refusal = stranger.refused("trigger", json!(["news", "e", 1])).await;
    assert!(refusal.contains("Unknown auth_key"), "{refusal}");
    let mut lost = SdkDriver::start(sdk, &App::new("9999", "herald-test-key", "herald-test-secret"), router.addr());
    let refusal = lost.refused("trigger", json!(["news", "e", 1])).await;
    assert!(refusal.contains("Unknown app"), "{refusal}");
    assert_status(sdk, &refusal, 404);

    let mut pusher = SdkDriver::start(sdk, &test_app(), router.addr());
    // A clock more than 600 s off, either way.
    for skew in [-700, 700] {
        pusher.skew_clock(skew).await;
        let refusal = pusher.refused("trigger", json!(["news", "late", 1])).await;
        assert!(refusal.contains("Timestamp expired: Given timestamp"), "{refusal}");
        assert_status(sdk, &refusal, 401);
    }
    // Within 600 s is fine.
    pusher.skew_clock(-500).await;
    pusher.ok("trigger", json!(["news", "skewed", 1])).await;
    assert_eq!(alice.recv().await, json!({"action": "skewed", "details": 1}));
    pusher.skew_clock(0).await;

    // Data over 10 KB: 413.
    let refusal = pusher.refused("trigger", json!(["news", "big", "x".repeat(10 * 1024 + 1)])).await;
    assert!(refusal.contains("413") && refusal.contains("the limit is 10240"), "{refusal}");
    // Nothing of it reached anybody, and the next good call works.
    alice.expect_silence(herald_tests::SILENCE).await;
    pusher.ok("trigger", json!(["news", "after", 1])).await;
    assert_eq!(alice.recv().await, json!({"action": "after", "details": 1}));
}

/// The status a refusal carries: the npm SDK gives it as a number, the
/// PyPI one as its exception's class.
fn assert_status(sdk: PusherSdk, refusal: &str, status: u16) {
    let expected = match (sdk, status) {
        (PusherSdk::Node, status) => format!("{status} "),
        (PusherSdk::Python, 401) => "PusherBadAuth ".to_owned(),
        (PusherSdk::Python, 400) => "PusherBadRequest ".to_owned(),
        (PusherSdk::Python, status) => format!("PusherBadStatus {status}: "),
    };
    assert!(refusal.starts_with(&expected), "expected {expected:?}: {refusal}");
}

/// Limits the SDKs check themselves before sending (over 100 channels) or
/// not at all (over 10 events in a batch, a bad `body_md5`), checked with
/// calls signed as they sign them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_the_sdks_do_not_check_are_checked_by_the_router() {
    let (_nats, router, edge) = cluster(test_app()).await;
    let mut alice = edge.user("alice", &["c1"]).await;
    let app = test_app();
    let post = |path: &'static str, body: Value| signed_post(&router, path, body);
    let channels: Vec<String> = (1..=101).map(|i| format!("c{i}")).collect();
    let (status, answer) = post("/apps/4242/events", json!({"name": "e", "data": "1", "channels": channels})).await;
    assert_eq!((status, answer.trim()), (400, "An event goes to 1 to 100 channels; this one names 101"));
    let (status, answer) = post("/apps/4242/events", json!({"name": "e", "data": "1", "channel": "c1!"})).await;
    assert_eq!(
        (status, answer.trim()),
        (400, r#"Invalid channel "c1!": channel name must be 1 to 164 characters of A-Z a-z 0-9 _ - = @ , . ;"#)
    );
    let hundred = &channels[..100];
    let (status, _) = post("/apps/4242/events", json!({"name": "e", "data": "1", "channels": hundred})).await;
    assert_eq!(status, 200);
    assert_eq!(alice.recv().await, json!({"action": "e", "details": 1}));

    let event = json!({"channel": "c1", "name": "b", "data": "2"});
    let (status, answer) = post("/apps/4242/batch_events", json!({"batch": vec![event.clone(); 11]})).await;
    assert_eq!((status, answer.trim()), (400, "Batch too large: 11 events; at most 10 may be sent at once"));
    let (status, _) = post("/apps/4242/batch_events", json!({"batch": vec![event; 10]})).await;
    assert_eq!(status, 200);
    for _ in 0..10 {
        assert_eq!(alice.recv().await, json!({"action": "b", "details": 2}));
    }

    // A body that is not the one signed.
    let query = sign_rest(&app.key, &app.secret, "POST", "/apps/4242/events", &[], b"{}", now());
    let body = json!({"name": "e", "data": "1", "channel": "c1"}).to_string();
    let answer = exchange(router.addr(), "POST", &format!("/apps/4242/events?{query}"), &[], body.as_bytes()).await;
    assert_eq!((answer.status, answer.body.trim()), (401, "Invalid body_md5: it is not the MD5 of the body"));
    alice.expect_silence(herald_tests::SILENCE).await;
}

/// `POST path` with `body`, signed as the SDKs sign, for the test app.
async fn signed_post(router: &TestRouter, path: &str, body: Value) -> (u16, String) {
    let app = test_app();
    let body = body.to_string();
    let query = sign_rest(&app.key, &app.secret, "POST", path, &[], body.as_bytes(), now());
    let headers = [("content-type", "application/json")];
    let answer = exchange(router.addr(), "POST", &format!("{path}?{query}"), &headers, body.as_bytes()).await;
    (answer.status, answer.body)
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

/// Publishes a webhook event as an edge does.
async fn edge_decides(bus: &TestBus, app: &App, time_ms: u64, event: Value) {
    let event = json!({"app_id": app.id, "time_ms": time_ms, "event": event});
    bus.publish(bus.subjects().pusher_webhooks(), event.to_string()).await;
}

/// The headers and body of a webhook request, for an SDK to check.
fn webhook_of(request: &herald_tests::HttpRequest) -> (Value, String) {
    let headers = json!({
        "Content-Type": request.header("content-type").unwrap_or_default(),
        "X-Pusher-Key": request.header("x-pusher-key").unwrap_or_default(),
        "X-Pusher-Signature": request.header("x-pusher-signature").unwrap_or_default(),
    });
    (headers, String::from_utf8(request.body.to_vec()).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_batched_signed_and_valid_for_both_sdks() {
    let mut receiver = HttpHandler::start(|_| HttpAnswer::json(json!({}))).await;
    let app = App { webhook_url: Some(receiver.url("/pusher/webhook")), ..test_app() };
    let (nats, router, _edge) = cluster(app.clone()).await;
    let bus = TestBus::connect(&nats).await;

    let first = now_ms();
    let events = [
        json!({"name": "channel_occupied", "channel": "news"}),
        json!({"name": "member_added", "channel": "presence-room", "user_id": "7"}),
        json!({"name": "client_event", "channel": "private-chat", "event": "client-typing", "data": "{}", "socket_id": "1.2"}),
    ];
    for (offset, event) in events.iter().enumerate() {
        edge_decides(&bus, &app, first + offset as u64, event.clone()).await;
    }
    let request = receiver.next_request().await;
    assert_eq!(request.uri.path(), "/pusher/webhook");
    assert_eq!(request.json(), json!({"time_ms": first, "events": events}), "one batch, the first event's time");
    let (headers, body) = webhook_of(&request);
    for sdk in PusherSdk::ALL {
        let mut pusher = SdkDriver::start(sdk, &app, router.addr());
        let checked = pusher.webhook(headers.clone(), &body).await;
        assert_eq!(checked, json!({"valid": true, "time_ms": first, "events": events}), "{sdk:?}");
        // A body changed on the way is not valid.
        let tampered = body.replace("news", "newz");
        assert_eq!(pusher.webhook(headers.clone(), &tampered).await["valid"], false, "{sdk:?}");
    }
    assert_eq!(receiver.count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_receiver_gets_the_batch_again_and_unwanted_events_are_not_sent() {
    let failures = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(2));
    let left = failures.clone();
    let mut receiver = HttpHandler::start(move |_| {
        match left.fetch_update(std::sync::atomic::Ordering::SeqCst, std::sync::atomic::Ordering::SeqCst, |n| {
            n.checked_sub(1)
        }) {
            Ok(_) => HttpAnswer::raw(503, "busy"),
            Err(_) => HttpAnswer::json(json!({})),
        }
    })
    .await;
    let app = App {
        webhook_url: Some(receiver.url("/hook")),
        webhook_events: Some(vec![WebhookKind::ChannelVacated]),
        ..test_app()
    };
    let (nats, router, _edge) = cluster(app.clone()).await;
    let bus = TestBus::connect(&nats).await;

    let at = now_ms();
    edge_decides(&bus, &app, at, json!({"name": "member_added", "channel": "presence-a", "user_id": "1"})).await;
    edge_decides(&bus, &app, at, json!({"name": "channel_vacated", "channel": "news"})).await;
    // An event for an app this router does not serve, and a malformed one.
    edge_decides(&bus, &App::new("other", "k", "s"), at, json!({"name": "channel_vacated", "channel": "x"})).await;
    bus.publish(bus.subjects().pusher_webhooks(), "not json").await;

    let expected = json!({"time_ms": at, "events": [{"name": "channel_vacated", "channel": "news"}]});
    for attempt in 0..3 {
        let request = receiver.next_request().await;
        assert_eq!(request.json(), expected, "attempt {attempt}: the same batch, member_added left out");
        assert_eq!(request.header("x-pusher-key"), Some("herald-test-key"));
    }
    tokio::time::sleep(herald_tests::SILENCE).await;
    assert_eq!(receiver.count(), 3, "sent until taken, then never again");
    let (_, page) = router.http("/metrics").await;
    assert_eq!(metric(&page, "herald_router_pusher_webhooks_sent_total"), Some(1));
    assert_eq!(metric(&page, "herald_router_pusher_webhook_retries_total"), Some(2));
    let dropped = |reason: &str| {
        metric(&page, &format!("herald_router_pusher_webhook_events_dropped_total{{reason=\"{reason}\"}}"))
    };
    assert_eq!(dropped("no_webhook"), Some(1), "the stranger's");
    assert_eq!(dropped("malformed"), Some(1));
    assert_eq!(dropped("queue_full"), Some(0));
    assert_eq!(dropped("undelivered"), Some(0));
}
