//! The PHP example app (`examples/php/`) under `php -S`, beside Herald, as
//! `just php-demo` runs it and as it runs against a deployed Herald: log in
//! (a PHP session), connect with no token but the session cookie (`$connect`
//! in PHP), chat actions handled in PHP, a plain form POST pushed to the
//! room through the SDK (the HTTP API with `herald dev`; NATS in the split
//! layout). The browser is played by the test's WebSocket client.

use std::net::SocketAddr;

use herald_tests::client::ConnectOptions;
use herald_tests::http::{Answer, exchange};
use herald_tests::{Client, PhpServer, SILENCE, TEST_API_KEY, TEST_WEBHOOK_SECRET};
use serde_json::json;

use crate::setup::{Herald, Layout, secret};

both_layouts!(the_example_app_flow);

/// A browser of the example app: its session cookie.
struct Browser {
    app: SocketAddr,
    cookie: String,
}

impl Browser {
    /// Logs in as `name` with the app's login form.
    async fn log_in(app: SocketAddr, name: &str) -> Browser {
        let answer = form(app, "/login.php", &[("name", name)], None).await;
        assert_eq!((answer.status, answer.header("location")), (303, Some("index.php")), "{}", answer.body);
        let set_cookie = answer.header("set-cookie").expect("login sets the session cookie");
        let cookie = set_cookie.split(';').next().unwrap().to_owned();
        assert!(cookie.starts_with("PHPSESSID="), "{set_cookie}");
        Browser { app, cookie }
    }

    /// Opens the chat's WebSocket as the page does: no token, the cookie.
    async fn connect(&self, herald: &Herald) -> Client {
        let options = ConnectOptions::default().header("Cookie", &self.cookie).header("Origin", "http://127.0.0.1");
        let mut client = Client::connect_with(&herald.ws_url(None), options).await.expect("the cookie is taken");
        client.connected().await;
        client
    }

    async fn post(&self, room: &str, text: &str, accept: Option<&str>) -> Answer {
        form(self.app, "/post.php", &[("room", room), ("text", text)], Some((&self.cookie, accept))).await
    }
}

/// Posts a form, with a cookie and an `Accept` when given.
async fn form(app: SocketAddr, path: &str, fields: &[(&str, &str)], cookie: Option<(&str, Option<&str>)>) -> Answer {
    let body = fields.iter().map(|(name, value)| format!("{name}={}", encode(value))).collect::<Vec<_>>().join("&");
    let mut headers = vec![("Content-Type", "application/x-www-form-urlencoded")];
    if let Some((cookie, accept)) = cookie {
        headers.push(("Cookie", cookie));
        headers.extend(accept.map(|accept| ("Accept", accept)));
    }
    exchange(app, "POST", path, &headers, body.as_bytes()).await
}

/// Form encoding, enough for the test's texts.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

async fn the_example_app_flow(layout: Layout) {
    // Herald's routes name the app's address and the app is told Herald's:
    // the app's address is chosen first, and the app starts on it once
    // Herald is up.
    let app_addr = herald_tests::php::free_addr();
    let routes = format!(
        "[[routes]]\naction = \"$connect\"\nhttp = \"http://{app_addr}/herald.php\"\n\n\
         [[routes]]\naction = \"chat/*\"\nhttp = \"http://{app_addr}/herald.php\"\n"
    );
    let herald = Herald::start(layout, &routes).await;
    let mut env = vec![
        ("HERALD_API_URL", herald.api_url()),
        ("HERALD_API_KEY", TEST_API_KEY.to_owned()),
        ("HERALD_WEBHOOK_SECRET", secret(TEST_WEBHOOK_SECRET).to_owned()),
    ];
    if let Some(nats) = &herald.nats {
        env.push(("HERALD_NATS_URL", nats.url()));
    }
    let app = PhpServer::start_at(app_addr, "examples/php/public", &env).await;

    // The login page, then two people log in.
    let (status, page) = herald_tests::http::get(app.addr(), "/").await;
    assert_eq!(status, 200);
    assert!(page.contains(r#"action="login.php""#), "{page}");
    let ann = Browser::log_in(app.addr(), "Ann").await;
    let bob = Browser::log_in(app.addr(), "Bob").await;
    let (status, page) =
        herald_tests::http::request(app.addr(), "GET", "/?room=php", &[("Cookie", &ann.cookie)], b"").await;
    assert_eq!(status, 200);
    assert!(page.contains("Logged in as <strong id=\"me\">Ann</strong>"), "{page}");

    // Connected by the session cookie alone: PHP's $connect says who.
    let mut ann_ws = ann.connect(&herald).await;
    let mut bob_ws = bob.connect(&herald).await;
    assert_eq!(
        (ann_ws.info().user.as_deref(), ann_ws.info().groups.clone()),
        (Some("Ann"), vec!["room:lobby".to_owned()])
    );
    assert_eq!(bob_ws.info().user.as_deref(), Some("Bob"));

    // Actions handled in PHP: join a room (a join effect and a publish to
    // the room, which the one already there hears of).
    join(&mut bob_ws, "php", "Bob").await;
    join(&mut ann_ws, "php", "Ann").await;
    assert_eq!(bob_ws.recv_action("chat/joined").await["details"], json!({"room": "php", "user": "Ann"}));

    ann_ws.send_action("chat/send", json!({"room": "php", "text": "hello from a socket"}), json!(3)).await;
    let message = json!({"action": "chat/message",
        "details": {"room": "php", "user": "Ann", "text": "hello from a socket", "via": "websocket"}});
    // The reply and the published message travel apart: either may be first.
    let mut frames = [ann_ws.recv().await, ann_ws.recv().await];
    frames.sort_by_key(|frame| frame["action"].as_str().unwrap().to_owned());
    assert_eq!(frames, [message.clone(), json!({"action": "chat/send", "details": {"sent": true}, "id": 3})]);
    assert_eq!(bob_ws.recv().await, message);

    // Bad actions get error replies from PHP.
    ann_ws.send_action("chat/send", json!({"room": "nowhere", "text": "x"}), json!(4)).await;
    assert_eq!(ann_ws.recv_error("chat/send", 404).await["details"]["message"], "no such room");
    ann_ws.send_action("chat/send", json!({"room": "php", "text": ""}), json!(5)).await;
    assert_eq!(ann_ws.recv_error("chat/send", 400).await["details"]["message"], "a message is 1 to 500 characters");

    // An ordinary form POST pushes to the room through the SDK.
    let posted = bob.post("php", "hello from a form, é & co", None).await;
    assert_eq!((posted.status, posted.header("location")), (303, Some("index.php?room=php")), "{}", posted.body);
    let message = json!({"room": "php", "user": "Bob", "text": "hello from a form, é & co", "via": "form"});
    for client in [&mut ann_ws, &mut bob_ws] {
        assert_eq!(client.recv().await, json!({"action": "chat/message", "details": message}));
    }
    let json_post = ann.post("php", "again", Some("application/json")).await;
    assert_eq!((json_post.status, json_post.body.as_str()), (200, r#"{"published":1}"#));
    assert_eq!(bob_ws.recv().await["details"]["text"], "again");
    assert_eq!(ann_ws.recv().await["details"]["text"], "again");

    // Refused posts push nothing.
    assert_eq!(ann.post("nowhere", "x", None).await.status, 400);
    let nobody = form(app.addr(), "/post.php", &[("room", "php"), ("text", "x")], None).await;
    assert_eq!(nobody.status, 401);
    Client::all_silent(&mut [&mut ann_ws, &mut bob_ws]).await;

    // No session, a made-up one, or one logged out: the upgrade is refused.
    assert_eq!(refused(&herald, None).await, 401);
    assert_eq!(refused(&herald, Some("PHPSESSID=madeupmadeupmadeup1234")).await, 401);
    let logout = exchange(app.addr(), "GET", "/logout.php", &[("Cookie", &bob.cookie)], b"").await;
    assert_eq!(logout.status, 303);
    assert_eq!(refused(&herald, Some(&bob.cookie)).await, 401);
    // Bob's open connection is his until it ends; Ann's is untouched.
    ann_ws.send_action("chat/leave", json!({"room": "php"}), json!(6)).await;
    assert_eq!(ann_ws.recv_action("chat/leave").await["details"], json!({"room": "php"}));
    assert_eq!(bob_ws.recv_action("chat/left").await["details"], json!({"room": "php", "user": "Ann"}));
    ann_ws.expect_silence(SILENCE).await;
}

/// The status a WebSocket upgrade with `cookie` is refused with; panics if
/// it is taken.
async fn refused(herald: &Herald, cookie: Option<&str>) -> u16 {
    let options = cookie.map_or_else(ConnectOptions::default, |c| ConnectOptions::default().header("Cookie", c));
    match Client::connect_with(&herald.ws_url(None), options).await {
        Ok(_) => panic!("an upgrade with cookie {cookie:?} was taken"),
        Err(e) => e.status().unwrap_or_else(|| panic!("upgrade with cookie {cookie:?}: {e}")),
    }
}

/// `chat/join` of `room`, handled in PHP: the reply says the room. The
/// room hears of the join by a publish effect, which the joiner itself may
/// or may not receive (its new subscription and the publish race).
async fn join(client: &mut Client, room: &str, user: &str) {
    client.send_action("chat/join", json!({"room": room}), json!(room)).await;
    let joined = json!({"action": "chat/joined", "details": {"room": room, "user": user}});
    let mut own = 0;
    loop {
        let frame = client.recv().await;
        if frame["action"] == "chat/join" {
            assert_eq!(frame, json!({"action": "chat/join", "details": {"room": room}, "id": room}));
            break;
        }
        assert_eq!(frame, joined);
        own += 1;
    }
    if let Some(frame) = client.try_recv(SILENCE).await {
        assert_eq!(frame, joined);
        own += 1;
    }
    assert!(own <= 1, "the join was announced {own} times");
}
