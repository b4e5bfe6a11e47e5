//! Who may connect: JWTs (HS256, RS256, ES256; `alg: none`, algorithm
//! confusion, expiry, audience, issuer), anonymous access, allowed origins,
//! and refreshing a token in place (`$auth`, `$reauth`, close 4001).

use std::time::Duration;

use herald_tests::token::{es256_key, rs256_key};
use herald_tests::{BusSetup, Client, SILENCE, TestBus, TestEdge, Token, both_buses};
use serde_json::json;

/// Asserts that opening `url` is refused before the upgrade with `status`.
async fn refused(url: &str, headers: &[(&str, &str)], status: u16) {
    match Client::connect_with_headers(url, headers).await {
        Ok(mut client) => panic!("expected HTTP {status}, got an upgrade and {}", client.recv_raw().await),
        Err(e) => assert_eq!(e.status(), Some(status), "{url}: {e}"),
    }
}

both_buses!(hs256_token_in_the_query_or_the_authorization_header);
async fn hs256_token_in_the_query_or_the_authorization_header(setup: BusSetup) {
    let edge = TestEdge::start(&setup).await;
    let token = Token::user("alice").groups(["g1", "g2"]).hs256();

    let mut by_query = edge.client(&token).await;
    assert_eq!(by_query.info().user.as_deref(), Some("alice"));
    assert_eq!(by_query.info().groups, ["g1", "g2"]);
    by_query.ping("q").await;

    let bearer = format!("Bearer {token}");
    let mut by_header = Client::connect_with_headers(&edge.ws_url(None), &[("Authorization", &bearer)])
        .await
        .unwrap_or_else(|e| panic!("bearer token refused: {e}"));
    let connected = by_header.connected().await;
    assert_eq!(connected.user.as_deref(), Some("alice"));
    assert_eq!(connected.groups, ["g1", "g2"]);
    assert_ne!(connected.conn, by_query.conn());
}

both_buses!(rs256_edge_accepts_rs256_and_refuses_everything_else);
async fn rs256_edge_accepts_rs256_and_refuses_everything_else(setup: BusSetup) {
    let edge = TestEdge::builder(&setup).key(rs256_key()).spawn().await;
    let claims = Token::user("alice").groups(["g"]);

    let client = edge.client(&claims.rs256()).await;
    assert_eq!(client.info().user.as_deref(), Some("alice"));
    assert_eq!(client.info().groups, ["g"]);

    let url = |token: &str| edge.ws_url(Some(token));
    refused(&url(&claims.confused_hs256_with_rs256_public_key()), &[], 401).await;
    refused(&url(&claims.unsigned_alg_none()), &[], 401).await;
    refused(&url(&claims.hs256()), &[], 401).await;
    refused(&url(&claims.es256()), &[], 401).await;
    refused(&url(&Token::user("alice").expired().rs256()), &[], 401).await;
}

both_buses!(es256_edge_accepts_es256_and_refuses_everything_else);
async fn es256_edge_accepts_es256_and_refuses_everything_else(setup: BusSetup) {
    let edge = TestEdge::builder(&setup).key(es256_key()).spawn().await;
    let claims = Token::user("bob");

    let client = edge.client(&claims.es256()).await;
    assert_eq!(client.info().user.as_deref(), Some("bob"));

    let url = |token: &str| edge.ws_url(Some(token));
    refused(&url(&claims.unsigned_alg_none()), &[], 401).await;
    refused(&url(&claims.hs256_with(herald_tests::token::ES256_PUBLIC_PEM)), &[], 401).await;
    refused(&url(&claims.rs256()), &[], 401).await;
    refused(&url(&Token::user("bob").expired().es256()), &[], 401).await;
}

both_buses!(hs256_edge_refuses_bad_tokens_with_401);
async fn hs256_edge_refuses_bad_tokens_with_401(setup: BusSetup) {
    let edge = TestEdge::start(&setup).await;
    let url = |token: &str| edge.ws_url(Some(token));

    refused(&url(&Token::user("alice").unsigned_alg_none()), &[], 401).await;
    refused(&url(&Token::user("alice").hs256_with(b"another secret entirely")), &[], 401).await;
    refused(&url(&Token::user("alice").expired().hs256()), &[], 401).await;
    refused(&url(&Token::user("alice").without("exp").hs256()), &[], 401).await;
    refused(&url(&Token::user("alice").without("sub").hs256()), &[], 401).await;
    refused(&url(&Token::user("alice").claim("groups", json!("g")).hs256()), &[], 401).await;
    refused(&url(&Token::user("alice").rs256()), &[], 401).await;
    refused(&url("not.a.jwt"), &[], 401).await;
    refused(&url(""), &[], 401).await;
    // A valid token with its payload swapped for another user's.
    let good = Token::user("alice").hs256();
    let other = Token::user("mallory").hs256();
    let parts: Vec<&str> = good.split('.').collect();
    let forged = format!("{}.{}.{}", parts[0], other.split('.').nth(1).unwrap(), parts[2]);
    refused(&url(&forged), &[], 401).await;
    refused(&edge.ws_url(None), &[("Authorization", "Bearer garbage")], 401).await;
    // No token and no anonymous access.
    refused(&edge.ws_url(None), &[], 401).await;
}

both_buses!(anonymous_access_only_when_enabled_and_never_with_a_bad_token);
async fn anonymous_access_only_when_enabled_and_never_with_a_bad_token(setup: BusSetup) {
    let edge = TestEdge::builder(&setup).anonymous(true).spawn().await;

    let mut nobody = Client::connect(&edge.ws_url(None)).await.expect("anonymous upgrade");
    let connected = nobody.connected().await;
    assert_eq!(connected.user, None);
    assert!(connected.groups.is_empty());
    nobody.ping("anon").await;

    // A bad token is not quietly downgraded to anonymous.
    refused(&edge.ws_url(Some(&Token::user("a").expired().hs256())), &[], 401).await;
    refused(&edge.ws_url(Some("garbage")), &[], 401).await;
    // A good token still names its user.
    let alice = edge.client(&Token::user("alice").hs256()).await;
    assert_eq!(alice.info().user.as_deref(), Some("alice"));
}

both_buses!(audience_and_issuer_are_checked_when_configured);
async fn audience_and_issuer_are_checked_when_configured(setup: BusSetup) {
    let edge = TestEdge::builder(&setup).audience("herald").issuer("https://id.test").spawn().await;
    let url = |token: &Token| edge.ws_url(Some(&token.hs256()));
    let right = Token::user("alice").claim("aud", json!("herald")).claim("iss", json!("https://id.test"));

    let client = edge.client(&right.hs256()).await;
    assert_eq!(client.info().user.as_deref(), Some("alice"));
    // `aud` may also be a list that contains ours.
    edge.client(&right.clone().claim("aud", json!(["other", "herald"])).hs256()).await;

    refused(&url(&right.clone().claim("aud", json!("other"))), &[], 401).await;
    refused(&url(&right.clone().without("aud")), &[], 401).await;
    refused(&url(&right.clone().claim("iss", json!("https://evil.test"))), &[], 401).await;
    refused(&url(&right.clone().without("iss")), &[], 401).await;
}

both_buses!(origins_outside_the_allowlist_are_refused_with_403);
async fn origins_outside_the_allowlist_are_refused_with_403(setup: BusSetup) {
    let edge = TestEdge::builder(&setup).origins(&["https://app.test"]).spawn().await;
    let url = edge.ws_url(Some(&Token::user("alice").hs256()));

    let mut allowed =
        Client::connect_with_headers(&url, &[("Origin", "https://app.test")]).await.expect("allowed origin");
    allowed.connected().await;
    // Non-browser clients send no Origin.
    let mut no_origin = Client::connect(&url).await.expect("no origin");
    no_origin.connected().await;

    refused(&url, &[("Origin", "https://evil.test")], 403).await;
    refused(&url, &[("Origin", "https://app.test.evil.test")], 403).await;
    refused(&url, &[("Origin", "http://app.test")], 403).await;
    refused(&url, &[("Origin", "null")], 403).await;
}

both_buses!(auth_refreshes_the_token_in_place);
async fn auth_refreshes_the_token_in_place(setup: BusSetup) {
    let edge = TestEdge::start(&setup).await;
    let mut alice = edge.client(&Token::user("alice").hs256()).await;

    let fresh = Token::user("alice").expires_in(Duration::from_secs(7200));
    alice.send_json(&json!({"action": "$auth", "details": {"token": fresh.hs256()}, "id": "a1"})).await;
    let reply = alice.recv_action("$auth").await;
    assert_eq!(reply["id"], "a1");
    assert_eq!(reply["details"]["user"], "alice");
    assert_eq!(reply["details"]["exp"], fresh.exp());

    // A bad token: 401, and the session goes on with the old identity.
    for (id, token) in [
        ("a2", Token::user("alice").expired().hs256()),
        ("a3", Token::user("alice").hs256_with(b"wrong secret")),
        ("a4", Token::user("alice").unsigned_alg_none()),
        ("a5", "garbage".to_owned()),
    ] {
        alice.send_json(&json!({"action": "$auth", "details": {"token": token}, "id": id})).await;
        let error = alice.recv_error("$auth", 401).await;
        assert_eq!(error["id"], id);
    }
    alice.ping("still-open").await;
    let bus = TestBus::connect(&setup).await;
    bus.to_user("alice", r#"{"action":"u"}"#).await;
    assert_eq!(alice.recv_raw().await, r#"{"action":"u"}"#);
}

both_buses!(an_expired_token_gets_reauth_then_4001_without_a_new_one);
async fn an_expired_token_gets_reauth_then_4001_without_a_new_one(setup: BusSetup) {
    let bus = TestBus::connect(&setup).await;
    let edge = TestEdge::start(&setup).await;
    let mut events = bus.events().await;
    let token = Token::user("alice").expires_in(Duration::from_secs(2));
    let mut alice = edge.client(&token.hs256()).await;
    events.connect_of(alice.conn()).await;

    let reauth = alice.recv_action("$reauth").await;
    assert!(reauth.get("id").is_none(), "$reauth is not a reply: {reauth}");
    // Then nothing from the client: closed with 4001 once the grace ends.
    alice.expect_close(4001).await;
    assert_eq!(events.disconnect_of(alice.conn()).await["code"], 4001);
}

both_buses!(a_valid_auth_after_reauth_keeps_the_session);
async fn a_valid_auth_after_reauth_keeps_the_session(setup: BusSetup) {
    let bus = TestBus::connect(&setup).await;
    let edge = TestEdge::start(&setup).await;
    let mut alice = edge.client(&Token::user("alice").expires_in(Duration::from_secs(2)).hs256()).await;

    alice.recv_action("$reauth").await;
    // A bad token does not count.
    alice.send_json(&json!({"action": "$auth", "details": {"token": "garbage"}})).await;
    alice.recv_error("$auth", 401).await;
    let fresh = Token::user("alice");
    alice.send_json(&json!({"action": "$auth", "details": {"token": fresh.hs256()}, "id": 9})).await;
    let reply = alice.recv_action("$auth").await;
    assert_eq!(reply["id"], 9);
    assert_eq!(reply["details"]["exp"], fresh.exp());

    // Well past the grace (600 ms in test edges): no close, no new $reauth.
    alice.expect_silence(Duration::from_millis(1500)).await;
    alice.ping("kept").await;
    bus.to_user("alice", r#"{"action":"u"}"#).await;
    assert_eq!(alice.recv_raw().await, r#"{"action":"u"}"#);
}

both_buses!(an_anonymous_session_never_gets_reauth);
async fn an_anonymous_session_never_gets_reauth(setup: BusSetup) {
    let edge = TestEdge::builder(&setup).anonymous(true).spawn().await;
    let mut nobody = Client::open(&edge.ws_url(None)).await;
    nobody.expect_silence(Duration::from_millis(1500)).await;
    nobody.ping("anon").await;
}

both_buses!(auth_with_another_users_token_moves_the_session_to_that_user);
async fn auth_with_another_users_token_moves_the_session_to_that_user(setup: BusSetup) {
    // `$auth` "refreshes identity and expiry in place": after it, the
    // connection is the new token's user for delivery.
    let bus = TestBus::connect(&setup).await;
    let edge = TestEdge::start(&setup).await;
    let mut client = edge.client(&Token::user("alice").hs256()).await;

    client.send_json(&json!({"action": "$auth", "details": {"token": Token::user("bob").hs256()}})).await;
    let reply = client.recv_action("$auth").await;
    assert_eq!(reply["details"]["user"], "bob");
    bus.to_user("bob", r#"{"action":"for/bob"}"#).await;
    assert_eq!(client.recv_raw().await, r#"{"action":"for/bob"}"#);
    bus.to_user("alice", r#"{"action":"for/alice"}"#).await;
    client.expect_silence(SILENCE).await;
}

both_buses!(handlers_get_the_extra_claims_and_not_heralds_own);
async fn handlers_get_the_extra_claims_and_not_heralds_own(setup: BusSetup) {
    let bus = TestBus::connect(&setup).await;
    let edge = TestEdge::start(&setup).await;
    let mut responder = bus.responder(|_| Some(json!({"noreply": true}))).await;
    let token =
        Token::user("alice").groups(["g"]).join(["room:*"]).claim("plan", json!("pro")).claim("tenant", json!(7));
    let mut alice = edge.client(&token.hs256()).await;

    alice.send_json(&json!({"action": "whoami"})).await;
    let (_, request) = responder.next_request().await;
    assert_eq!(request["user"], "alice");
    assert_eq!(request["groups"], json!(["g"]));
    assert_eq!(request["claims"], json!({"plan": "pro", "tenant": 7}));
    assert_eq!(request["conn"], alice.conn());
    assert!(request["claims"].get("sub").is_none() && request["claims"].get("exp").is_none());
}
