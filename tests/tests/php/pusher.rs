//! The PHP SDK's Pusher-compatible calls (`Herald\Pusher\Pusher`, the calls
//! of pusher-php-server), from real `php` with ext-curl and with streams,
//! against a real router and edge on nats-server: what they trigger reaches
//! Herald clients in the channel's group, what they sign is what the edge
//! checks (`herald_proto::pusher::sign`), and what Herald refuses is an
//! `ApiErrorException` with Pusher's message and status.

use herald_proto::conn_id::ConnId;
use herald_proto::pusher::app::{App, Apps};
use herald_proto::pusher::sign::Signed;
use herald_proto::pusher::socket_id::SocketId;
use herald_tests::{Client, NatsServer, Php, PhpDriver, SILENCE, TestEdge, TestRouter, closed_port_url};
use serde_json::{Value, json};

const CLASS: &str = "Herald\\Pusher\\Pusher";

fn app() -> App {
    App::new("77", "php-pusher-key", "php-pusher-secret")
}

/// The constructor's arguments for `app` on the router at `port`, as a
/// Laravel app's config/broadcasting.php gives them.
fn args(app: &App, port: u16) -> Value {
    json!([app.key, app.secret, app.id, {"host": "127.0.0.1", "port": port, "scheme": "http", "useTLS": false}])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pusher_calls_from_php_reach_herald_clients() {
    let nats = NatsServer::start().await;
    let apps = Apps::new(vec![app()]).unwrap();
    let router = TestRouter::builder(&nats).config(move |config| config.pusher_apps = apps).spawn().await;
    let edge = TestEdge::start(&nats).await;
    let port = router.addr().port();
    for php in [Php::Full, Php::Minimal] {
        let suffix = format!("{php:?}").to_lowercase();
        let (news, private) = (format!("news-{suffix}"), format!("private-App.Models.User.{suffix}"));
        let mut ann = edge.user(&format!("ann-{suffix}"), &[&news, &private]).await;
        let mut bob = edge.user(&format!("bob-{suffix}"), &[&news]).await;
        let mut driver = PhpDriver::start(php);
        driver.new_object("pusher", CLASS, args(&app(), port)).await;

        // trigger: the data as JSON, to one channel or several.
        let answer = driver.ok_call("pusher", "trigger", json!([news, "greeting", {"hello": "world"}])).await;
        assert_eq!(answer, json!([]), "{php:?}: {{}} as pusher-php-server gives it");
        let frame = json!({"action": "greeting", "details": {"hello": "world"}});
        assert_eq!(ann.recv().await, frame);
        assert_eq!(bob.recv().await, frame);
        driver.ok_call("pusher", "trigger", json!([[news, private], "both", "text"])).await;
        for _ in 0..2 {
            assert_eq!(ann.recv().await, json!({"action": "both", "details": "text"}));
        }
        assert_eq!(bob.recv().await, json!({"action": "both", "details": "text"}));
        // socket_id: Laravel's toOthers().
        let socket = SocketId::of(&ann.conn().parse::<ConnId>().unwrap()).unwrap().to_string();
        driver.ok_call("pusher", "trigger", json!([news, "others", 1, {"socket_id": socket}])).await;
        assert_eq!(bob.recv().await, json!({"action": "others", "details": 1}));
        Client::all_silent(&mut [&mut ann, &mut bob]).await;

        // triggerBatch and sendToUser.
        let batch =
            json!([[{"channel": news, "name": "b1", "data": {"n": 1}}, {"channel": news, "name": "b2", "data": 2}]]);
        driver.ok_call("pusher", "triggerBatch", batch).await;
        for client in [&mut ann, &mut bob] {
            assert_eq!(client.recv().await, json!({"action": "b1", "details": {"n": 1}}));
            assert_eq!(client.recv().await, json!({"action": "b2", "details": 2}));
        }
        driver.ok_call("pusher", "sendToUser", json!([format!("bob-{suffix}"), "direct", "hi"])).await;
        assert_eq!(bob.recv().await, json!({"action": "direct", "details": "hi"}));
        Client::all_silent(&mut [&mut ann, &mut bob]).await;

        // What PHP signs for a page is what the edge checks.
        let auth = driver.ok_call("pusher", "authorizeChannel", json!([private, "12.34"])).await;
        let auth: Value = serde_json::from_str(auth.as_str().unwrap()).unwrap();
        let signed = Signed::Channel { socket_id: "12.34", channel: &private };
        assert!(signed.verify(&app().key, &app().secret, auth["auth"].as_str().unwrap()), "{auth}");
        let presence = driver
            .ok_call("pusher", "authorizePresenceChannel", json!(["presence-room", "12.34", "7", {"name": "Ann"}]))
            .await;
        let presence: Value = serde_json::from_str(presence.as_str().unwrap()).unwrap();
        let channel_data = presence["channel_data"].as_str().unwrap();
        assert_eq!(channel_data, r#"{"user_id":"7","user_info":{"name":"Ann"}}"#);
        let signed = Signed::Presence { socket_id: "12.34", channel: "presence-room", channel_data };
        assert!(signed.verify(&app().key, &app().secret, presence["auth"].as_str().unwrap()), "{presence}");
        let user = driver.ok_call("pusher", "authenticateUser", json!(["12.34", {"id": "7", "name": "Ann"}])).await;
        let user: Value = serde_json::from_str(user.as_str().unwrap()).unwrap();
        let signed = Signed::SignIn { socket_id: "12.34", user_data: user["user_data"].as_str().unwrap() };
        assert!(signed.verify(&app().key, &app().secret, user["auth"].as_str().unwrap()), "{user}");

        // Refusals: Pusher's message and status, and nobody reached.
        let forged = App::new("77", "php-pusher-key", "wrong-secret");
        driver.new_object("forger", CLASS, args(&forged, port)).await;
        let refused = driver.error_call("forger", "trigger", json!([news, "forged", 1])).await;
        assert_eq!((&refused["class"], &refused["status"]), (&json!("Herald\\Pusher\\ApiErrorException"), &json!(401)));
        assert!(
            refused["message"].as_str().unwrap().starts_with("Invalid signature: you should have sent"),
            "{refused}"
        );
        let big = "x".repeat(10 * 1024 + 1);
        let refused = driver.error_call("pusher", "trigger", json!([news, "big", big, {}, true])).await;
        assert_eq!(refused["status"], 413, "{refused}");
        let elsewhere = App::new("78", "php-pusher-key", "php-pusher-secret");
        driver.new_object("lost", CLASS, args(&elsewhere, port)).await;
        assert_eq!(driver.error_call("lost", "trigger", json!([news, "e", 1])).await["status"], 404);
        let closed: u16 =
            closed_port_url("/").trim_start_matches("http://127.0.0.1:").trim_end_matches('/').parse().unwrap();
        driver.new_object("down", CLASS, args(&app(), closed)).await;
        let refused = driver.error_call("down", "trigger", json!([news, "e", 1])).await;
        assert_eq!((&refused["class"], &refused["status"]), (&json!("Herald\\Pusher\\ApiErrorException"), &json!(0)));
        Client::all_silent(&mut [&mut ann, &mut bob]).await;

        // terminateUserConnections closes every connection of the user.
        driver.ok_call("pusher", "terminateUserConnections", json!([format!("ann-{suffix}")])).await;
        ann.expect_close(herald_proto::close::BACKEND_DISCONNECT).await;
        driver.ok_call("pusher", "trigger", json!([news, "after", 1])).await;
        assert_eq!(bob.recv().await, json!({"action": "after", "details": 1}));
        bob.expect_silence(SILENCE).await;
    }
}
