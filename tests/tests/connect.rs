//! `$connect`: an upgrade without a token is authenticated by the
//! `$connect` route's handler from the request's headers and cookies (a PHP
//! session cookie), here an HTTP handler served by the test that checks
//! `Herald-Signature` as a real one must. And the signature itself: valid
//! for the exact body bytes under the shared secret, and provably not under
//! another secret or for another body.

use herald_handler::{Reply, Request};
use herald_tests::client::ConnectError;
use herald_tests::{
    BusSetup, Client, HttpAnswer, HttpHandler, HttpRequest, NatsHandler, Recorder, SILENCE, TEST_WEBHOOK_SECRET,
    TestBus, TestEdge, TestRouter, Token, both_buses,
};
use serde_json::{Value, json};

/// What a PHP `connect.php` does: checks the signature, looks the session
/// cookie up, answers who it is.
fn php_connect(request: &HttpRequest) -> HttpAnswer {
    if !request.signed_with(TEST_WEBHOOK_SECRET) {
        return HttpAnswer::json(json!({"error": {"code": 401, "message": "bad signature"}}));
    }
    let body = request.json();
    match body["cookies"]["PHPSESSID"].as_str() {
        Some("sess-u1") => HttpAnswer::json(json!({
            "user": "u1",
            "groups": ["g1"],
            "claims": {"plan": "gold", "session": "sess-u1"}
        })),
        Some("sess-banned") => HttpAnswer::json(json!({"error": {"code": 403, "message": "banned"}})),
        _ => HttpAnswer::json(json!({"error": {"code": 401, "message": "no valid session"}})),
    }
}

/// Headers a browser sends with its upgrade (plus the cookie).
fn browser(cookie: &str) -> Vec<(&str, &str)> {
    vec![
        ("Cookie", cookie),
        ("Origin", "https://app.example.com"),
        ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"),
        ("Accept-Language", "en-GB,en;q=0.5"),
    ]
}

async fn refused(url: &str, headers: &[(&str, &str)]) -> ConnectError {
    match Client::connect_with_headers(url, headers).await {
        Ok(client) => panic!("the upgrade was let in: {client:?}"),
        Err(e) => e,
    }
}

both_buses!(a_session_cookie_authenticates_an_upgrade_through_an_http_connect_handler);
async fn a_session_cookie_authenticates_an_upgrade_through_an_http_connect_handler(setup: BusSetup) {
    let bus = TestBus::connect(&setup).await;
    let mut php = HttpHandler::start(php_connect).await;
    let routes = format!(
        "[[routes]]\naction = \"$connect\"\nhttp = \"{}\"\n\n[[routes]]\naction = \"whoami\"\nnats = \"app.whoami\"\n",
        php.url("/connect.php")
    );
    let _router = TestRouter::start(&setup, &routes).await;
    let mut seen = Recorder::new();
    let tx = seen.sender();
    let _whoami = NatsHandler::serve(&setup, "app.whoami", move |request: Request<Value>| {
        let _ = tx.send(request);
        async { Reply::empty() }
    })
    .await;
    // No anonymous access: only the handler can let a client without a
    // token in.
    let edge = TestEdge::builder(&setup).anonymous(false).spawn().await;

    let mut u1 = Client::connect_with_headers(&edge.ws_url(None), &browser("PHPSESSID=sess-u1; theme=\"dark\""))
        .await
        .unwrap_or_else(|e| panic!("a good session cookie must be let in: {e}"));
    let connected = u1.connected().await;
    assert_eq!(connected.user.as_deref(), Some("u1"));
    assert_eq!(connected.groups, ["g1"]);

    // What the handler was asked.
    let request = php.next_request().await;
    assert_eq!(request.method, "POST");
    assert_eq!(request.uri.path(), "/connect.php");
    assert!(request.signed_with(TEST_WEBHOOK_SECRET));
    let body = request.json();
    assert_eq!(body["action"], "$connect");
    assert_eq!(body["conn"], connected.conn.as_str(), "the handler is told the id the connection gets");
    assert_eq!(body["user"], Value::Null);
    assert_eq!(body["cookies"], json!({"PHPSESSID": "sess-u1", "theme": "dark"}));
    let headers = &body["headers"];
    assert_eq!(headers["cookie"], "PHPSESSID=sess-u1; theme=\"dark\"");
    assert_eq!(headers["origin"], "https://app.example.com");
    assert_eq!(headers["user-agent"], "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0");
    assert_eq!(headers["accept-language"], "en-GB,en;q=0.5");
    assert!(headers.as_object().unwrap().keys().all(|name| *name == name.to_lowercase()), "{headers}");

    // The identity is live: deliveries to the user and the group arrive.
    bus.to_user("u1", r#"{"action":"to/user"}"#).await;
    assert_eq!(u1.recv_raw().await, r#"{"action":"to/user"}"#);
    bus.to_group("g1", r#"{"action":"to/group"}"#).await;
    assert_eq!(u1.recv_raw().await, r#"{"action":"to/group"}"#);
    // And handlers see the identity and claims the $connect handler gave.
    u1.send_action("whoami", Value::Null, json!(1)).await;
    u1.recv_action("whoami").await;
    let request = seen.next().await;
    assert_eq!(request.user.as_deref(), Some("u1"));
    assert_eq!(request.groups, ["g1"]);
    assert_eq!(Value::Object(request.claims), json!({"plan": "gold", "session": "sess-u1"}));
    u1.expect_silence(SILENCE).await;
}

both_buses!(the_connect_handler_refuses_with_401_or_403_and_a_token_is_used_without_asking_it);
async fn the_connect_handler_refuses_with_401_or_403_and_a_token_is_used_without_asking_it(setup: BusSetup) {
    let mut php = HttpHandler::start(php_connect).await;
    let routes = format!("[[routes]]\naction = \"$connect\"\nhttp = \"{}\"\n", php.url("/connect.php"));
    let _router = TestRouter::start(&setup, &routes).await;
    let edge = TestEdge::builder(&setup).anonymous(false).spawn().await;
    let url = edge.ws_url(None);

    let wrong = refused(&url, &browser("PHPSESSID=sess-forged")).await;
    assert_eq!(wrong.status(), Some(401), "{wrong}");
    assert_eq!(php.next_request().await.json()["cookies"]["PHPSESSID"], "sess-forged");
    let banned = refused(&url, &browser("PHPSESSID=sess-banned")).await;
    assert_eq!(banned.status(), Some(403), "{banned}");
    assert_eq!(php.next_request().await.json()["cookies"]["PHPSESSID"], "sess-banned");
    let no_cookie = refused(&url, &[("Origin", "https://app.example.com")]).await;
    assert_eq!(no_cookie.status(), Some(401), "{no_cookie}");
    assert_eq!(php.next_request().await.json()["cookies"], json!({}));

    // A valid token is used as it is, even with a session cookie: the
    // handler is not asked.
    let asked = php.count();
    let token = Token::user("alice").groups(["g"]).hs256();
    let mut alice = Client::connect_with_headers(&edge.ws_url(Some(&token)), &browser("PHPSESSID=sess-u1"))
        .await
        .unwrap_or_else(|e| panic!("a valid token must be let in: {e}"));
    let connected = alice.connected().await;
    assert_eq!((connected.user.as_deref(), connected.groups.clone()), (Some("alice"), vec!["g".to_owned()]));
    let bearer = format!("Bearer {token}");
    let mut alice2 = Client::connect_with_headers(&url, &[("Authorization", bearer.as_str())]).await.unwrap();
    assert_eq!(alice2.connected().await.user.as_deref(), Some("alice"));
    // A bad token is refused by the edge itself, never passed to $connect.
    let bad = refused(&edge.ws_url(Some("not-a-jwt")), &browser("PHPSESSID=sess-u1")).await;
    assert_eq!(bad.status(), Some(401), "{bad}");
    alice.ping("after").await;
    assert_eq!(php.count(), asked, "the $connect handler was asked about a connection with a token");
}

both_buses!(http_handlers_get_a_signature_over_the_exact_body_that_another_secret_cannot_produce);
async fn http_handlers_get_a_signature_over_the_exact_body_that_another_secret_cannot_produce(setup: BusSetup) {
    let mut handler = HttpHandler::start(|_| HttpAnswer::json(json!({"details": "ok"}))).await;
    let routes = format!("[[routes]]\naction = \"hook/*\"\nhttp = \"{}\"\n", handler.url("/hook"));
    let _router = TestRouter::builder(&setup).routes(&routes).webhook_secret(b"the shared secret").spawn().await;
    let edge = TestEdge::start(&setup).await;
    let mut alice = edge.user("alice", &[]).await;

    // Details with odd spacing and non-ASCII: the signature must cover the
    // bytes as sent.
    alice.send_text(r#"{"action":"hook/x","details":{"b": 1,  "a": "é"},"id":"s1"}"#).await;
    assert_eq!(alice.recv_action("hook/x").await["details"], "ok");
    let request = handler.next_request().await;
    let timestamp: u64 = request.header("herald-timestamp").expect("Herald-Timestamp").parse().expect("Unix seconds");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    assert!(timestamp.abs_diff(now) <= 5, "Herald-Timestamp {timestamp} is not now ({now})");
    let signature = request.header("herald-signature").expect("Herald-Signature");
    assert!(signature.starts_with("v1=") && signature.len() == 3 + 64, "{signature}");
    assert!(std::str::from_utf8(&request.body).unwrap().contains(r#"{"b": 1,  "a": "é"}"#));

    // Valid under the shared secret, for these exact bytes.
    assert!(request.signed_with(b"the shared secret"));
    // The check can tell: another secret, another body or another
    // timestamp fail.
    assert!(!request.signed_with(b"another secret"));
    assert!(!request.signed_with(TEST_WEBHOOK_SECRET));
    let mut tampered = request.body.to_vec();
    let at = tampered.iter().position(|b| *b == b'1').expect("a digit to change");
    tampered[at] = b'2';
    assert!(!request.verify(b"the shared secret", &tampered));
    let mut spaced = request.body.to_vec();
    spaced.push(b' ');
    assert!(!request.verify(b"the shared secret", &spaced));
    let (body, later) = (&request.body, (timestamp + 1).to_string());
    assert!(!herald_proto::webhook::verify(b"the shared secret", &later, body, signature, now, 300));
    assert!(herald_proto::webhook::verify(b"the shared secret", &timestamp.to_string(), body, signature, now, 300));
}

both_buses!(a_php_connect_answer_with_empty_claims_lets_the_user_in);
/// PHP writes an empty array as `[]`, and `claims` is often empty.
async fn a_php_connect_answer_with_empty_claims_lets_the_user_in(setup: BusSetup) {
    // `json_encode(['user' => 'u1', 'groups' => [], 'claims' => []])`, as php-cli writes it.
    let php = HttpHandler::start(|_| HttpAnswer::raw(200, r#"{"user":"u1","groups":[],"claims":[]}"#)).await;
    let routes = format!("[[routes]]\naction = \"$connect\"\nhttp = \"{}\"\n", php.url("/connect.php"));
    let _router = TestRouter::start(&setup, &routes).await;
    let edge = TestEdge::builder(&setup).anonymous(false).spawn().await;

    let mut u1 = Client::connect_with_headers(&edge.ws_url(None), &browser("PHPSESSID=sess-u1"))
        .await
        .unwrap_or_else(|e| panic!("empty PHP claims must let the user in: {e}"));
    let connected = u1.connected().await;
    assert_eq!((connected.user.as_deref(), connected.groups.len()), (Some("u1"), 0));
    u1.ping("after").await;
}

both_buses!(a_connect_handlers_http_status_refuses_the_upgrade);
/// A PHP `connect.php` that refuses with HTTP 401 or 403 refuses the
/// upgrade with that status; one that fails (5xx) makes it 503. Its 404 is
/// a refusal too, never "no `$connect` route": even with anonymous clients
/// allowed, nobody gets in.
async fn a_connect_handlers_http_status_refuses_the_upgrade(setup: BusSetup) {
    let php = HttpHandler::start(|request| match request.json()["cookies"]["PHPSESSID"].as_str() {
        Some("expired") => HttpAnswer::raw(401, r#"{"error":{"code":401,"message":"session expired"}}"#),
        Some("banned") => HttpAnswer::raw(403, "banned"),
        Some("unknown") => HttpAnswer::raw(404, "no such session"),
        _ => HttpAnswer::raw(500, "PHP Fatal error"),
    })
    .await;
    let routes = format!("[[routes]]\naction = \"$connect\"\nhttp = \"{}\"\n", php.url("/connect.php"));
    let _router = TestRouter::start(&setup, &routes).await;
    let edge = TestEdge::builder(&setup).anonymous(true).spawn().await;
    let url = edge.ws_url(None);

    for (session, status, message) in [
        ("expired", 401, Some("session expired")),
        ("banned", 403, None),
        ("unknown", 401, None),
        ("crashed", 503, None),
    ] {
        let cookie = format!("PHPSESSID={session}");
        let refused = refused(&url, &browser(&cookie)).await;
        assert_eq!(refused.status(), Some(status), "{session}: {refused}");
        if let Some(message) = message {
            assert!(refused.to_string().contains(message), "{session}: {refused}");
        }
    }
}

both_buses!(an_unreachable_connect_handler_lets_nobody_in_without_a_token);
async fn an_unreachable_connect_handler_lets_nobody_in_without_a_token(setup: BusSetup) {
    let routes = format!("[[routes]]\naction = \"$connect\"\nhttp = \"{}\"\n", herald_tests::closed_port_url("/c.php"));
    let _router = TestRouter::start(&setup, &routes).await;
    let edge = TestEdge::builder(&setup).anonymous(false).spawn().await;

    let down = refused(&edge.ws_url(None), &browser("PHPSESSID=sess-u1")).await;
    assert_eq!(down.status(), Some(503), "{down}");
    // Tokens do not depend on the handler.
    let mut alice = edge.user("alice", &[]).await;
    alice.ping("fine").await;
}
