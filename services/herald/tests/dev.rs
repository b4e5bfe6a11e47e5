//! `herald dev` as a developer meets it: one process that starts at once
//! and serves, on one port, the demo page, the SDK, dev tokens, WebSocket
//! clients whose actions reach the example handlers, and the backend API;
//! and that closes its clients with 1012 and exits 0 on SIGTERM.
//!
//! Each test runs its own `herald dev` on a free port, with a cleared
//! environment; no NATS is involved.

mod support;

use std::net::{SocketAddr, TcpStream};
use std::time::Instant;

use jsonwebtoken::{EncodingKey, Header};
use serde_json::{Value, json};
use support::{PATIENCE, Running, get, request};
use tokio_tungstenite::tungstenite::{self, Message, WebSocket};

/// `herald dev` on a free port, with `env`; returns it and its address.
fn dev(env: &[(&str, &str)]) -> (Running, SocketAddr) {
    let running = Running::start(&["dev", "--listen", "127.0.0.1:0"], env);
    let (_, addr) = running.listening();
    (running, addr)
}

/// A file of the repository, as `herald dev` should serve it.
fn repository_file(path: &str) -> String {
    let path = format!("{}/../../{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

/// A dev token for `user`, from `/dev/token`.
fn token(addr: SocketAddr, user: &str) -> String {
    let response = get(addr, &format!("/dev/token?user={user}"));
    assert_eq!(response.status, 200, "{response:?}");
    let answer = response.json();
    assert_eq!(answer["user"], user);
    answer["token"].as_str().expect("a token").to_owned()
}

/// A WebSocket client of the edge.
struct Client {
    socket: WebSocket<TcpStream>,
}

impl Client {
    /// Opens `url` (`ws://<addr>/ws...`).
    fn open(url: &str) -> Client {
        let authority = url.trim_start_matches("ws://").split('/').next().unwrap();
        let stream = TcpStream::connect(authority).unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        let (socket, _) = tungstenite::client(url, stream).unwrap_or_else(|e| panic!("cannot open {url}: {e}"));
        Client { socket }
    }

    /// Connects with `token` and checks the `$connected` frame names `user`.
    fn connect(addr: SocketAddr, user: &str) -> Client {
        let mut client = Client::open(&format!("ws://{addr}/ws?token={}", token(addr, user)));
        client.connected(Some(user));
        client
    }

    /// Reads `$connected` and checks it names `user`.
    fn connected(&mut self, user: Option<&str>) {
        let connected = self.next();
        assert_eq!(connected["action"], "$connected", "{connected}");
        assert_eq!(connected["details"]["user"], json!(user), "{connected}");
    }

    fn send(&mut self, frame: Value) {
        self.socket.send(Message::text(frame.to_string())).unwrap();
    }

    /// The next frame, read as JSON.
    fn next(&mut self) -> Value {
        match self.socket.read().unwrap() {
            Message::Text(text) => serde_json::from_str(text.as_str()).unwrap(),
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    /// The next frame with `action`, skipping others (room announcements).
    fn next_with(&mut self, action: &str) -> Value {
        loop {
            let frame = self.next();
            if frame["action"] == action {
                return frame;
            }
        }
    }

    /// Reads until the server closes; returns its close code.
    fn close_code(&mut self) -> u16 {
        loop {
            match self.socket.read().unwrap() {
                Message::Close(frame) => return frame.map_or(1005, |frame| frame.code.into()),
                Message::Text(_) | Message::Ping(_) | Message::Pong(_) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
    }
}

#[test]
fn starts_in_well_under_a_second_and_serves_the_demo_and_the_sdk() {
    let started = Instant::now();
    let (_dev, addr) = dev(&[]);
    let took = started.elapsed();
    println!("herald dev was listening {took:?} after it was started");
    // Well under a second on a laptop; CI machines get some slack.
    assert!(took.as_secs_f64() < 2.0, "took {took:?}");

    for (path, file, content_type) in [
        ("/", "demo/index.html", "text/html"),
        ("/demo/app.js", "demo/app.js", "text/javascript"),
        ("/demo/style.css", "demo/style.css", "text/css"),
        ("/sdk/herald.js", "clients/js/herald.js", "text/javascript"),
        ("/sdk/herald.d.ts", "clients/js/herald.d.ts", "text/plain"),
    ] {
        let response = get(addr, path);
        assert_eq!(response.status, 200, "{path}");
        let served_as = response.header("content-type").unwrap();
        assert!(served_as.starts_with(content_type), "{path}: {served_as}");
        assert_eq!(response.header("cache-control"), Some("no-cache"), "{path}");
        assert!(response.body == repository_file(file), "{path} is not {file}");
    }
    // The edge's own paths stay the edge's.
    assert_eq!(get(addr, "/readyz").body, "ready\n");
    assert_eq!(get(addr, "/nowhere").status, 404);
}

#[test]
fn a_dev_token_opens_a_websocket_whose_echo_goes_through_router_and_example() {
    let (_dev, addr) = dev(&[]);
    let refused = get(addr, "/dev/token?user=");
    assert_eq!((refused.status, refused.json()), (400, json!({"error": "\"user\" must be 1 to 64 characters"})));

    let mut ann = Client::connect(addr, "ann");
    ann.send(json!({"action": "echo", "details": {"text": "hi", "n": [1, 2]}, "id": "e1"}));
    assert_eq!(ann.next(), json!({"action": "echo", "details": {"text": "hi", "n": [1, 2]}, "id": "e1"}));
    // Anything else has no route.
    ann.send(json!({"action": "nowhere", "id": 2}));
    assert_eq!(ann.next()["details"]["code"], 404);
}

#[test]
fn two_clients_chat_in_a_room_and_hear_when_one_goes() {
    let (_dev, addr) = dev(&[]);
    let (mut ann, mut bob) = (Client::connect(addr, "ann"), Client::connect(addr, "bob"));
    for client in [&mut ann, &mut bob] {
        client.send(json!({"action": "chat/join", "details": {"room": "lobby"}, "id": 1}));
        assert_eq!(client.next_with("chat/join")["details"], json!({"room": "lobby"}));
    }

    bob.send(json!({"action": "chat/send", "details": {"room": "lobby", "text": "hi ann"}, "id": 2}));
    assert_eq!(bob.next_with("chat/send")["details"], json!({"ok": true}));
    let message = ann.next_with("chat/message")["details"].clone();
    assert_eq!(
        (&message["room"], &message["user"], &message["text"]),
        (&json!("lobby"), &json!("bob"), &json!("hi ann"))
    );

    // The $disconnect route tells chat, which tells the room.
    drop(bob);
    assert_eq!(ann.next_with("chat/left")["details"], json!({"room": "lobby", "user": "bob"}));
}

#[test]
fn the_printed_token_and_api_key_work_and_a_publish_reaches_every_client() {
    let (dev, addr) = dev(&[]);
    let url = dev.line_containing("ws://").trim().to_owned();
    assert!(url.starts_with(&format!("ws://{addr}/ws?token=")), "{url}");
    let mut printed = Client::open(&url);
    printed.connected(Some("dev"));
    let mut anonymous = Client::open(&format!("ws://{addr}/ws"));
    anonymous.connected(None);

    let key_line = dev.line_containing("API key:");
    let key = key_line.split_whitespace().last().unwrap();
    assert!(dev.line_containing("curl ").contains(&format!("Bearer {key}")));
    let publish = r#"{"to": {"all": true}, "action": "news", "details": {"text": "hello"}}"#;
    let wrong = request(addr, "POST", "/api/publish", &[("Authorization", "Bearer nope")], publish);
    assert_eq!(wrong.status, 401);
    let bearer = format!("Bearer {key}");
    let published = request(addr, "POST", "/api/publish", &[("Authorization", &bearer)], publish);
    assert_eq!(published.status, 200, "{published:?}");

    let news = json!({"action": "news", "details": {"text": "hello"}});
    assert_eq!(printed.next(), news);
    assert_eq!(anonymous.next(), news);
}

#[test]
fn a_given_secret_and_key_are_used_and_anonymous_clients_can_be_refused() {
    let env = [("HERALD_JWT_SECRET", "test-secret"), ("HERALD_API_KEY", "test-key"), ("HERALD_ALLOW_ANONYMOUS", "0")];
    let (dev, addr) = dev(&env);
    assert_eq!(dev.line_containing("API key:").split_whitespace().last(), Some("test-key"));

    let claims = json!({"sub": "zoe", "exp": 4_102_444_800u64});
    let own = jsonwebtoken::encode(&Header::default(), &claims, &EncodingKey::from_secret(b"test-secret")).unwrap();
    let mut zoe = Client::open(&format!("ws://{addr}/ws?token={own}"));
    zoe.connected(Some("zoe"));
    let tokenless = tungstenite::client(format!("ws://{addr}/ws"), TcpStream::connect(addr).unwrap());
    assert!(tokenless.is_err(), "a tokenless client got in");

    let presence = request(addr, "GET", "/api/presence/users/zoe", &[("Authorization", "Bearer test-key")], "");
    assert_eq!((presence.status, presence.json()), (200, json!({"online": true, "conns": 1})));
}

#[test]
fn sigterm_closes_clients_with_1012_and_exits_0() {
    let (mut dev, addr) = dev(&[("HERALD_LOG", "herald=info")]);
    let mut ann = Client::connect(addr, "ann");
    dev.signal("TERM");
    assert_eq!(ann.close_code(), 1012);
    dev.line_containing("SIGTERM received: draining");
    assert_eq!(dev.wait().code(), Some(0));
}
