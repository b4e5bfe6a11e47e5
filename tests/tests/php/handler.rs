//! Client actions answered by a PHP endpoint written with the SDK's handler
//! helper (`sdk/php/tests/integration/public/handler.php` under `php -S`):
//! replies, effects, errors, `$connect` from a cookie, `$join`,
//! `$disconnect` notices; and requests that are not Herald's (unsigned,
//! tampered, stale) refused before any handler runs, with everything else
//! unharmed.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use herald_proto::webhook;
use herald_tests::client::ConnectOptions;
use herald_tests::{Client, PhpServer, SILENCE, TEST_WEBHOOK_SECRET, Token, assert_eventually};
use serde_json::{Value, json};

use crate::setup::{Herald, Layout, secret};

both_layouts!(a_php_handler_answers);

fn routes(handler: &str) -> String {
    ["$connect", "$join", "$disconnect", "echo/*", "fx/*"]
        .map(|action| format!("[[routes]]\naction = \"{action}\"\nhttp = \"{handler}\"\n"))
        .join("\n")
}

async fn a_php_handler_answers(layout: Layout) {
    let log = std::env::temp_dir().join(format!("herald-php-handler-{}-{layout:?}.log", std::process::id()));
    let _ = std::fs::remove_file(&log);
    let php = PhpServer::start(
        "sdk/php/tests/integration/public",
        &[
            ("HERALD_WEBHOOK_SECRET", secret(TEST_WEBHOOK_SECRET).to_owned()),
            ("HANDLER_LOG", log.display().to_string()),
        ],
    )
    .await;
    let herald = Herald::start(layout, &routes(&php.url("/handler.php"))).await;
    let mut ann = herald.client(&Token::user("ann").groups(["g"]).claim("plan", json!("pro")).hs256()).await;
    let mut bob = herald.user("bob", &[]).await;

    // The request as PHP read it, and its reply.
    ann.send_action("echo/me", json!({"text": "héllo", "n": [1, 2.5]}), json!("id-1")).await;
    let reply = ann.recv_action("echo/me").await;
    assert_eq!(reply["id"], "id-1");
    assert_eq!(
        reply["details"],
        json!({"action": "echo/me", "details": {"text": "héllo", "n": [1, 2.5]}, "id": "id-1", "conn": ann.conn(),
               "user": "ann", "groups": ["g"], "claims": {"plan": "pro"}, "traceparent": null})
    );

    // Effects: join (then a publish to the group reaches it), publish to
    // another user without a reply, leave, disconnect.
    ann.send_action("fx/join", json!({"group": "joined-by-php"}), json!(2)).await;
    assert_eq!(ann.recv_action("fx/join").await["details"], json!({"joined": "joined-by-php"}));
    bob.send_action("fx/publish", json!({"to": {"groups": ["joined-by-php"], "users": ["bob"]}}), json!(3)).await;
    assert_eq!(ann.recv().await, json!({"action": "fx/published", "details": {"from": "bob"}}));
    assert_eq!(bob.recv().await, json!({"action": "fx/published", "details": {"from": "bob"}}));
    ann.send_action("fx/leave", json!({"group": "joined-by-php"}), json!(4)).await;
    assert_eq!(ann.recv_action("fx/leave").await["details"], Value::Null);
    bob.send_action("fx/publish", json!({"to": {"groups": ["joined-by-php"]}}), json!(5)).await;
    Client::all_silent(&mut [&mut ann, &mut bob]).await;

    // Errors: the app's own, a crash, an action nobody handles.
    ann.send_action("fx/error", Value::Null, json!(6)).await;
    assert_eq!(ann.recv_error("fx/error", 409).await["details"]["message"], "conflict");
    ann.send_action("fx/crash", Value::Null, json!(7)).await;
    assert_eq!(ann.recv_error("fx/crash", 500).await["details"]["message"], "the handler failed");
    ann.send_action("fx/unknown", Value::Null, json!(8)).await;
    assert_eq!(ann.recv_error("fx/unknown", 404).await["details"]["message"], r#"no handler for action "fx/unknown""#);

    // $join: what the token does not allow, PHP decides.
    ann.send_action("$join", json!({"group": "open:1"}), json!(9)).await;
    assert_eq!(ann.recv_action("$join").await["details"], json!({"group": "open:1"}));
    ann.send_action("$join", json!({"group": "closed:1"}), json!(10)).await;
    assert_eq!(ann.recv_error("$join", 403).await["details"]["message"], "closed:1 is closed");

    // $connect: no token, a cookie and a header of the upgrade.
    let options = ConnectOptions::default().header("Cookie", "a=1; test-user=carol").header("X-Test-Agent", "phpunit");
    let mut carol = Client::connect_with(&herald.ws_url(None), options).await.unwrap();
    let connected = carol.connected().await;
    assert_eq!((connected.user.as_deref(), connected.groups), (Some("carol"), vec!["from-cookie".to_owned()]));
    carol.send_action("echo/claims", Value::Null, json!(11)).await;
    assert_eq!(carol.recv_action("echo/claims").await["details"]["claims"], json!({"agent": "phpunit"}));
    let refused = |cookie: &str| ConnectOptions::default().header("Cookie", cookie);
    let status = |result: Result<Client, _>| result.err().and_then(|e: herald_tests::ConnectError| e.status());
    assert_eq!(status(Client::connect_with(&herald.ws_url(None), refused("other=1")).await), Some(401));
    assert_eq!(status(Client::connect_with(&herald.ws_url(None), refused("test-user=x; banned=1")).await), Some(403));

    // $disconnect: PHP hears of a connection that ended.
    let carol_conn = carol.conn().to_owned();
    carol.close(1000, "done").await;
    let heard = || std::fs::read_to_string(&log).unwrap_or_default();
    assert_eventually!(heard().contains(&carol_conn), Duration::from_secs(10));
    assert!(heard().contains(r#""user":"carol""#), "{}", heard());

    // Requests not from Herald: refused with 401, nothing runs.
    let body =
        br#"{"action":"fx/publish","details":{"to":{"all":true}},"conn":"e.1","user":"x","groups":[],"claims":{}}"#;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let sign = |at: u64, body: &[u8]| (at.to_string(), webhook::sign(TEST_WEBHOOK_SECRET, &at.to_string(), body));
    let (fresh, signature) = sign(now, body);
    let (old, old_signature) = sign(now - 600, body);
    let mut tampered = body.to_vec();
    tampered[12] = b'X';
    for (timestamp, signature, body, why) in [
        (None, None, &body[..], "missing Herald-Timestamp header"),
        (Some(fresh.as_str()), Some(signature.as_str()), &tampered[..], "wrong signature"),
        (Some(old.as_str()), Some(old_signature.as_str()), &body[..], "stale request"),
        (Some(fresh.as_str()), Some("v1=00"), &body[..], "is not v1="),
    ] {
        let mut headers = vec![("Content-Type", "application/json")];
        headers.extend(timestamp.map(|t| (webhook::TIMESTAMP_HEADER, t)));
        headers.extend(signature.map(|s| (webhook::SIGNATURE_HEADER, s)));
        let (status, answer) = herald_tests::http::request(php.addr(), "POST", "/handler.php", &headers, body).await;
        assert_eq!(status, 401, "{why}: {answer}");
        assert!(answer.contains(why), "{why}: {answer}");
    }
    Client::all_silent(&mut [&mut ann, &mut bob]).await;
    // The same request, signed right, runs: the handler was never the problem.
    let signed = [(webhook::TIMESTAMP_HEADER, fresh.as_str()), (webhook::SIGNATURE_HEADER, signature.as_str())];
    let (status, answer) = herald_tests::http::request(php.addr(), "POST", "/handler.php", &signed, body).await;
    assert_eq!(
        (status, answer.as_str()),
        (
            200,
            r#"{"noreply":true,"effects":[{"publish":{"to":{"all":true},"action":"fx/published","details":{"from":"x"}}}]}"#
        )
    );
    ann.expect_silence(SILENCE).await;

    // And Herald still answers through PHP.
    ann.send_action("echo/again", Value::Null, json!(12)).await;
    assert_eq!(ann.recv_action("echo/again").await["details"]["action"], "echo/again");
    let _ = std::fs::remove_file(&log);
}
