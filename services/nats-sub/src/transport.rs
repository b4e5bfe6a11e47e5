//! The byte stream to a server: TCP, or TLS over it.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// A connection to a server.
#[derive(Debug)]
pub(crate) enum Transport {
    Tcp(TcpStream),
    /// Boxed: a TLS session is large, and most connections are plain.
    Tls(Box<TlsStream<TcpStream>>),
}

/// Makes TLS connections with one client config, built at the first one.
pub(crate) struct Tls {
    /// The caller's config, if it gave one.
    given: Option<Arc<rustls::ClientConfig>>,
    /// Built once from `given` or the platform's roots.
    connector: Option<TlsConnector>,
}

impl Tls {
    pub fn new(given: Option<Arc<rustls::ClientConfig>>) -> Tls {
        Tls { given, connector: None }
    }

    /// Runs the TLS handshake over `tcp`, checking the certificate is for
    /// `host`.
    pub async fn upgrade(&mut self, tcp: TcpStream, host: &str) -> io::Result<Transport> {
        let connector = match &self.connector {
            Some(connector) => connector.clone(),
            None => {
                let config = match &self.given {
                    Some(config) => config.clone(),
                    None => Arc::new(platform_config()?),
                };
                self.connector.insert(TlsConnector::from(config)).clone()
            }
        };
        let name = ServerName::try_from(host.to_owned()).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        Ok(Transport::Tls(Box::new(connector.connect(name, tcp).await?)))
    }
}

/// TLS with the platform's root certificates, on ring (as async-nats).
fn platform_config() -> io::Result<rustls::ClientConfig> {
    let loaded = rustls_native_certs::load_native_certs();
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(loaded.certs);
    if roots.is_empty() {
        let errors: Vec<String> = loaded.errors.iter().map(ToString::to_string).collect();
        return Err(io::Error::other(format!("no root certificates found on this system: {}", errors.join("; "))));
    }
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)
        .map(|builder| builder.with_root_certificates(roots).with_no_client_auth())
}

impl AsyncRead for Transport {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Tcp(stream) => Pin::new(stream).poll_read(cx, buf),
            Transport::Tls(stream) => Pin::new(stream.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Tcp(stream) => Pin::new(stream).poll_write(cx, buf),
            Transport::Tls(stream) => Pin::new(stream.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Tcp(stream) => Pin::new(stream).poll_flush(cx),
            Transport::Tls(stream) => Pin::new(stream.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Tcp(stream) => Pin::new(stream).poll_shutdown(cx),
            Transport::Tls(stream) => Pin::new(stream.as_mut()).poll_shutdown(cx),
        }
    }
}
