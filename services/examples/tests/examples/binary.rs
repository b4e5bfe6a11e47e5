//! The `herald-examples` binary reads its settings as `herald` does: flags,
//! `HERALD_*` variables and the `--config` TOML file, with a bad one stopping
//! it in one line. Every run gets a cleared environment, so variables of the
//! shell running the tests cannot change what is tested.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};

use herald_examples::expiry::SUBJECT;

use crate::support::{Nats, next, request, subscribe};

/// `herald-examples` with `args` and only the variables in `env`.
fn examples(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_herald-examples"));
    command.args(args).env_clear().envs(env.iter().copied());
    command
}

/// Runs `herald-examples` to its end: its exit code and standard error.
fn refused(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let Output { status, stderr, .. } = examples(args, env).output().unwrap();
    (status.code(), String::from_utf8(stderr).unwrap())
}

/// A config file of this test's own (and this run's) holding `text`.
fn config_file(test: &str, text: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{test}-{}.toml", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

/// A running `herald-examples`, killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_bad_setting_is_one_line_on_stderr_and_exit_code_2() {
    let (code, stderr) = refused(&["echo"], &[("HERALD_SUBJECT_PREFIX", "a.*")]);
    assert_eq!(code, Some(2));
    assert_eq!(
        stderr,
        "herald-examples: bad setting HERALD_SUBJECT_PREFIX=\"a.*\" (from environment): \
         expected a NATS subject prefix: dot-separated tokens of A-Z a-z 0-9 _ -\n"
    );
    let (code, stderr) = refused(&["echo", "--log", "info,["], &[]);
    assert_eq!(code, Some(2));
    assert!(stderr.starts_with("herald-examples: bad setting HERALD_LOG=\"info,[\" (from flag --log): "), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn a_url_the_nats_client_refuses_is_a_bad_setting() {
    let (code, stderr) = refused(&["echo", "--nats-url", "http://x"], &[]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.starts_with("herald-examples: bad setting HERALD_NATS_URL=\"http://x\" (from flag --nats-url): "),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn an_unknown_key_in_the_config_file_is_refused_naming_it() {
    let path = config_file("unknown-key", "[nats]\nurl = \"nats://127.0.0.1:1\"\nulr = \"nats://127.0.0.1:2\"\n");
    let (code, stderr) = refused(&["--config", path.to_str().unwrap()], &[]);
    assert_eq!(code, Some(2));
    assert_eq!(stderr, format!("herald-examples: unknown setting \"nats.ulr\" in config file {}\n", path.display()));
    // herald's own settings are not the examples': an edge's setting is a
    // typo here.
    let path = config_file("edge-key", "listen = \"0.0.0.0:8080\"\n");
    let (code, stderr) = refused(&[], &[("HERALD_CONFIG", path.to_str().unwrap())]);
    assert_eq!(code, Some(2));
    assert_eq!(stderr, format!("herald-examples: unknown setting \"listen\" in config file {}\n", path.display()));
}

#[tokio::test]
async fn serves_with_the_nats_server_and_subject_prefix_of_its_config_file() {
    let nats = Nats::start().await;
    let path = config_file("serves", &format!("subject_prefix = \"acme.rt\"\n\n[nats]\nurl = \"{}\"\n", nats.url()));
    let child = examples(&["expiry", "--config", path.to_str().unwrap()], &[]).stdout(Stdio::null()).spawn().unwrap();
    let _running = Running(child);
    let bus = nats.bus().await;
    let mut frames = subscribe(&bus, "acme.rt.user.bob").await;

    assert_eq!(request(&bus, SUBJECT, r#"{"user": "bob"}"#).await, r#"{"notified":true}"#);
    let (subject, _) = next(&mut frames).await;
    assert_eq!(subject, "acme.rt.user.bob");
}
