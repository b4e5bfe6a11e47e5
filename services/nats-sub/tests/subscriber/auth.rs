//! Credentials: user and password, token; from the URL or the config.

use herald_nats_sub::{Auth, Event};
use herald_tests::NatsServer;

use crate::support::{WAIT, config, connect, next, publish, publisher_with};

fn args(pairs: &[(&str, &str)]) -> Vec<String> {
    pairs.iter().flat_map(|(flag, value)| [flag.to_string(), value.to_string()]).collect()
}

/// Subscribes with `config`, publishes with `publisher`, and checks the
/// message arrives.
async fn delivers(sub_config: herald_nats_sub::Config, publisher: async_nats::ConnectOptions, url: &str) {
    let sub = connect(sub_config);
    let (_s, mut rx) = sub.subscribed("private").await;
    let publisher = publisher_with(url, publisher).await;
    publish(&publisher, "private", "hello").await;
    assert_eq!(next(&mut rx).await.payload, "hello");
}

#[tokio::test]
async fn user_and_password_from_the_url_or_the_config() {
    let server = NatsServer::start_with_args(&args(&[("--user", "edge"), ("--pass", "s3cr3t/:@")])).await;
    let port = server.port();
    let backend = || async_nats::ConnectOptions::with_user_and_password("edge".into(), "s3cr3t/:@".into());
    let in_url = format!("nats://edge:s3cr3t%2F%3A%40@127.0.0.1:{port}");
    delivers(config(&[in_url]), backend(), &server.url()).await;

    let mut in_config = config(&[server.url()]);
    in_config.auth = Auth::UserPassword { user: "edge".into(), password: "s3cr3t/:@".into() };
    delivers(in_config, backend(), &server.url()).await;
}

#[tokio::test]
async fn a_token() {
    let server = NatsServer::start_with_args(&args(&[("--auth", "t0ken")])).await;
    let backend = || async_nats::ConnectOptions::with_token("t0ken".into());
    delivers(config(&[format!("nats://t0ken@127.0.0.1:{}", server.port())]), backend(), &server.url()).await;
    let mut in_config = config(&[server.url()]);
    in_config.auth = Auth::Token("t0ken".into());
    delivers(in_config, backend(), &server.url()).await;
}

#[tokio::test]
async fn wrong_credentials_are_reported_and_retried_never_connected() {
    let server = NatsServer::start_with_args(&args(&[("--user", "edge"), ("--pass", "right")])).await;
    let sub = connect(config(&[format!("nats://edge:wrong@127.0.0.1:{}", server.port())]));
    herald_tests::assert_eventually!(sub.count(|e| matches!(e, Event::ConnectFailed { .. })) >= 2, WAIT);
    assert!(!sub.subscriber.is_connected());
    let failure = sub.events().into_iter().find(|e| matches!(e, Event::ConnectFailed { .. })).unwrap();
    assert!(format!("{failure:?}").contains("Authorization Violation"), "{failure:?}");
    assert!(!format!("{failure:?}").contains("wrong"), "the password is in an event: {failure:?}");
}
