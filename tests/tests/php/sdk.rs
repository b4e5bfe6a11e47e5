//! Every HTTP API call of the PHP SDK, from real `php`, reaching real
//! clients through Herald; once with ext-curl (`php`) and once with PHP
//! streams (`php -n`, which has no ext-curl); and what each bad call throws.

use std::time::Duration;

use herald_tests::{Php, PhpDriver, SILENCE, TEST_API_KEY, TEST_SECRET, assert_eventually};
use serde_json::{Value, json};

use crate::setup::{Herald, Layout, secret};

both_layouts!(sdk_calls_reach_clients);

async fn sdk_calls_reach_clients(layout: Layout) {
    let herald = Herald::start(layout, "").await;
    for php in [Php::Full, Php::Minimal] {
        let mut driver = PhpDriver::start(php);
        let extensions = driver.send(json!({"extensions": true})).await["ok"].clone();
        assert_eq!(extensions.as_array().unwrap().contains(&json!("curl")), php == Php::Full, "{extensions}");
        api_calls(&herald, &mut driver).await;
        api_errors(&herald, &mut driver).await;
    }
}

/// A token minted by the SDK, for `user` in `groups`.
async fn token(php: &mut PhpDriver, user: &str, groups: &[&str]) -> String {
    let token = php.ok_static("Herald\\Token::mint", json!([secret(TEST_SECRET), user, groups, 600])).await;
    token.as_str().expect("a token is a string").to_owned()
}

async fn api_calls(herald: &Herald, php: &mut PhpDriver) {
    // Names of their own for each PHP, so the two runs cannot meet.
    let suffix = format!("{:?}", php.php()).to_lowercase();
    let (ann, bob, odd) = (format!("ann-{suffix}"), format!("bob-{suffix}"), format!("o.d d/é-{suffix}"));
    let (news, room) = (format!("news-{suffix}"), format!("room:{suffix}"));
    php.new_object("api", "Herald\\Client", json!([herald.api_url(), TEST_API_KEY])).await;

    // Tokens the SDK minted are taken by the edge.
    let ann_token = token(php, &ann, &[&news]).await;
    let mut ann1 = herald.client(&ann_token).await;
    let mut ann2 = herald.client(&ann_token).await;
    let mut bob1 = herald.client(&token(php, &bob, &[&news]).await).await;
    let mut odd1 = herald.client(&token(php, &odd, &[]).await).await;
    assert_eq!((ann1.info().user.as_deref(), ann1.info().groups.clone()), (Some(ann.as_str()), vec![news.clone()]));

    let details = json!({"text": "héllo / \"you\"", "n": 1.0, "list": [1, 2]});
    assert_eq!(php.ok_call("api", "publishToUsers", json!([[ann], "news", details])).await, 1);
    for ann in [&mut ann1, &mut ann2] {
        // As PHP wrote it: UTF-8 and slashes as they are, 1.0 a float.
        assert_eq!(
            ann.recv_raw().await,
            r#"{"action":"news","details":{"list":[1,2],"n":1.0,"text":"héllo / \"you\""}}"#
        );
    }
    assert_eq!(php.ok_call("api", "publishToUsers", json!([[odd], "odd", null])).await, 1);
    assert_eq!(odd1.recv().await, json!({"action": "odd", "details": null}));

    // A group, but not the connection that caused it.
    let excluded = ann2.conn().to_owned();
    php.ok_call("api", "publishToGroups", json!([[news], "group", {"g": 1}, excluded])).await;
    for client in [&mut ann1, &mut bob1] {
        assert_eq!(client.recv().await, json!({"action": "group", "details": {"g": 1}}));
    }
    php.ok_call("api", "publishToConns", json!([[bob1.conn()], "conn", 2])).await;
    assert_eq!(bob1.recv().await, json!({"action": "conn", "details": 2}));
    // Several kinds at once: each subject once.
    let target = json!({"$target": {"users": [odd], "conns": [ann1.conn()]}});
    assert_eq!(php.ok_call("api", "publish", json!([target, "mixed"])).await, 2);
    assert_eq!(ann1.recv_action("mixed").await["details"], Value::Null);
    assert_eq!(odd1.recv_action("mixed").await["details"], Value::Null);
    ann2.expect_silence(SILENCE).await;

    // Presence, of plain and odd names (a path segment with / and é).
    let presence = php.ok_call("api", "userPresence", json!([ann])).await;
    assert_eq!(presence, json!({"online": true, "conns": 2}));
    assert_eq!(php.ok_call("api", "userPresence", json!([odd])).await, json!({"online": true, "conns": 1}));
    assert_eq!(php.ok_call("api", "userPresence", json!(["nobody"])).await, json!({"online": false, "conns": 0}));
    let group = php.ok_call("api", "groupPresence", json!([news])).await;
    assert_eq!(group, json!({"conns": 3, "users": [ann, bob]}));

    // Groups: control operations the edges apply asynchronously.
    assert_eq!(php.ok_call("api", "joinGroup", json!([room, [bob], [ann1.conn()]])).await, 2);
    let members = || json!({"conns": 2, "users": [ann, bob]});
    assert_eventually!(php.ok_call("api", "groupPresence", json!([room])).await == members(), Duration::from_secs(5));
    php.ok_call("api", "publishToGroups", json!([[room], "room", "in"])).await;
    assert_eq!(ann1.recv_action("room").await["details"], "in");
    assert_eq!(bob1.recv_action("room").await["details"], "in");
    ann2.expect_silence(SILENCE).await;
    assert_eq!(php.ok_call("api", "leaveGroup", json!([room, [bob]])).await, 1);
    let left = || json!({"conns": 1, "users": [ann]});
    assert_eventually!(php.ok_call("api", "groupPresence", json!([room])).await == left(), Duration::from_secs(5));

    // Everyone, and named arguments.
    let everyone = json!({"action": "all", "details": "everyone", "excludeConn": odd1.conn()});
    assert_eq!(php.ok_call("api", "publishToAll", everyone).await, 1);
    for client in [&mut ann1, &mut ann2, &mut bob1] {
        assert_eq!(client.recv_action("all").await["details"], "everyone");
    }
    odd1.expect_silence(SILENCE).await;

    // Disconnect: every connection of a user, with a code and a reason.
    assert_eq!(php.ok_call("api", "disconnect", json!({"users": [bob], "code": 4005, "reason": "bye"})).await, 1);
    assert_eq!(bob1.expect_close(4005).await, "bye");
    php.ok_call("api", "disconnect", json!({"conns": [odd1.conn()]})).await;
    odd1.expect_close(4000).await;
    assert_eventually!(
        php.ok_call("api", "userPresence", json!([bob])).await == json!({"online": false, "conns": 0}),
        Duration::from_secs(5)
    );
}

async fn api_errors(herald: &Herald, php: &mut PhpDriver) {
    let error =
        |class: &str, status: Value, message: &str| json!({"class": class, "status": status, "message": message});

    php.new_object("wrong-key", "Herald\\Client", json!([herald.api_url(), "not-the-key"])).await;
    assert_eq!(
        php.error_call("wrong-key", "publishToAll", json!(["news"])).await,
        error("Herald\\Exception\\UnauthorizedException", json!(401), "Herald API answered HTTP 401: wrong API key")
    );
    assert_eq!(
        php.error_call("api", "publishToAll", json!(["news", null, "nope"])).await,
        error(
            "Herald\\Exception\\BadRequestException",
            json!(400),
            r#"Herald API answered HTTP 400: "nope" is not a connection id (expected <edge>.<number>)"#
        )
    );
    assert_eq!(php.error_call("api", "disconnect", json!({"users": ["x"], "code": 1001})).await["status"], 400);
    // Over the API's body limit (1 MiB by default).
    let oversized = "x".repeat(1_100_000);
    assert_eq!(
        php.error_call("api", "publishToAll", json!(["big", oversized])).await,
        error(
            "Herald\\Exception\\PayloadTooLargeException",
            json!(413),
            "Herald API answered HTTP 413: request body too large"
        )
    );
    // Refused before anything is sent.
    let empty = php.error_call("api", "publishToGroups", json!([[], "news"])).await;
    assert_eq!(empty["class"], "Herald\\Exception\\InvalidArgumentException", "{empty}");

    // Nobody there, and somebody there who never answers.
    let closed = herald_tests::php::free_addr();
    php.new_object("nobody", "Herald\\Client", json!([format!("http://{closed}"), TEST_API_KEY])).await;
    let unreachable = php.error_call("nobody", "publishToAll", json!(["news"])).await;
    assert_eq!(unreachable["class"], "Herald\\Exception\\ConnectionException", "{unreachable}");
    assert!(unreachable["message"].as_str().unwrap().contains(&closed.to_string()), "{unreachable}");
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    php.new_object("silent", "Herald\\Client", json!([url, TEST_API_KEY, {"timeout": 0.5}])).await;
    let timeout = php.error_call("silent", "userPresence", json!(["ann"])).await;
    assert_eq!(timeout["class"], "Herald\\Exception\\TimeoutException", "{timeout}");

    // And the client still works after all of it.
    assert_eq!(php.ok_call("api", "userPresence", json!(["nobody"])).await, json!({"online": false, "conns": 0}));
}
