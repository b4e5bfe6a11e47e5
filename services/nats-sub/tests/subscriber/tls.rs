//! TLS: when the URL says `tls://`, when the server requires it, and the
//! certificate checks that must fail. Certificates are made for each test
//! by the `openssl` command (a throwaway CA and a server certificate for
//! 127.0.0.1).

use std::process::Command;
use std::sync::Arc;

use herald_nats_sub::Event;
use herald_tests::NatsServer;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::support::{TempDir, WAIT, config, connect, next, publish, publisher_with};

/// A CA and a server certificate it signed, as PEM files.
struct Certificates {
    dir: TempDir,
}

impl Certificates {
    fn make() -> Certificates {
        let dir = TempDir::new("tls");
        dir.write(
            "server.ext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        );
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
        openssl(
            &dir,
            &[
                &["req", "-x509"][..],
                &ec,
                &["-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=nats-sub test CA"],
            ]
            .concat(),
        );
        openssl(
            &dir,
            &[&["req"][..], &ec, &["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"]].concat(),
        );
        openssl(
            &dir,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.pem",
                "-days",
                "1",
                "-extfile",
                "server.ext",
            ],
        );
        Certificates { dir }
    }

    fn file(&self, name: &str) -> String {
        self.dir.path().join(name).to_string_lossy().into_owned()
    }

    /// nats-server arguments that make it require TLS with these.
    fn server_args(&self) -> Vec<String> {
        vec!["--tls".into(), "--tlscert".into(), self.file("server.pem"), "--tlskey".into(), self.file("server.key")]
    }

    /// A client config that trusts the CA only.
    fn client_config(&self) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from_pem_file(self.file("ca.pem")).expect("CA certificate")).unwrap();
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        Arc::new(config)
    }

    fn publisher_options(&self) -> async_nats::ConnectOptions {
        async_nats::ConnectOptions::new().require_tls(true).add_root_certificates(self.file("ca.pem").into())
    }
}

fn openssl(dir: &TempDir, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir.path())
        .output()
        .expect("the openssl command (apt-get install openssl)");
    assert!(output.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&output.stderr));
}

#[tokio::test]
async fn a_server_that_requires_tls_gets_it_whatever_the_url_says() {
    let certificates = Certificates::make();
    let server = NatsServer::start_with_args(&certificates.server_args()).await;
    let tls_url = format!("tls://127.0.0.1:{}", server.port());
    for url in [server.url(), tls_url] {
        let mut config = config(std::slice::from_ref(&url));
        config.tls = Some(certificates.client_config());
        let sub = connect(config);
        let (_s, mut rx) = sub.subscribed("secure").await;
        let publisher = publisher_with(&server.url(), certificates.publisher_options()).await;
        publish(&publisher, "secure", url.clone()).await;
        assert_eq!(next(&mut rx).await.payload, url);
    }
}

#[tokio::test]
async fn a_certificate_nobody_vouches_for_is_refused() {
    let certificates = Certificates::make();
    let server = NatsServer::start_with_args(&certificates.server_args()).await;
    // The platform's roots do not include the test CA.
    let sub = connect(config(&[server.url()]));
    herald_tests::assert_eventually!(sub.count(|e| matches!(e, Event::ConnectFailed { .. })) >= 1, WAIT);
    assert!(!sub.subscriber.is_connected());
    let failure = sub.events().into_iter().find(|e| matches!(e, Event::ConnectFailed { .. })).unwrap();
    assert!(format!("{failure:?}").contains("TLS handshake"), "{failure:?}");
}

#[tokio::test]
async fn asking_a_plain_server_for_tls_is_an_error_that_says_so() {
    let server = NatsServer::start().await;
    let sub = connect(config(&[format!("tls://127.0.0.1:{}", server.port())]));
    herald_tests::assert_eventually!(sub.count(|e| matches!(e, Event::ConnectFailed { .. })) >= 1, WAIT);
    let failure = sub.events().into_iter().find(|e| matches!(e, Event::ConnectFailed { .. })).unwrap();
    assert!(format!("{failure:?}").contains("does not offer"), "{failure:?}");
}
