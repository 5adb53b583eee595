//! TLS for the HTTP API (`--http-cert`, `--http-key`): rustls with the
//! ring provider, PEM files, HTTP/1.1 over it. Without TLS a token and the
//! map cross the network in clear; with it, only the holder of the key
//! answers and what is said is sealed.

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Connections served at once, at most; past it a new one waits in the
/// listener's backlog.
const MAX_CONNECTIONS: usize = 256;
/// A handshake, or a request's headers (the first or, on a kept-alive
/// connection, the next), that takes longer is dropped: a client that
/// connects and says nothing holds no slot for long.
const HANDSHAKE: Duration = Duration::from_secs(10);
/// A connection is closed after this long whatever it does (clients
/// reconnect), so slots cannot be held by slow trickles either.
const MAX_CONNECTION: Duration = Duration::from_secs(300);

/// A certificate chain and its key, ready to serve.
#[derive(Clone)]
pub struct Tls(Arc<rustls::ServerConfig>);

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tls(..)")
    }
}

impl Tls {
    /// Reads a PEM certificate chain (the server's first) and its PEM
    /// private key (PKCS#8, PKCS#1 or SEC1); errors name the file.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Tls, String> {
        let read =
            |p: &Path| std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()));
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&read(cert)?)
            .collect::<Result<_, _>>()
            .map_err(|e| format!("{}: not a PEM certificate chain: {e}", cert.display()))?;
        if certs.is_empty() {
            return Err(format!(
                "{}: no certificate in it (expected -----BEGIN CERTIFICATE-----)",
                cert.display()
            ));
        }
        let key_der = PrivateKeyDer::from_pem_slice(&read(key)?)
            .map_err(|e| format!("{}: not a PEM private key: {e}", key.display()))?;
        // ring, as the client commands' ureq uses: aws-lc-rs would add
        // post-quantum key exchange at the cost of a long C build in every
        // CI run; the API's traffic is an operator's, not a long-lived
        // secret's.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_single_cert(certs, key_der)
            .map_err(|e| {
                format!(
                    "{} and {} do not make a usable pair: {e}",
                    cert.display(),
                    key.display()
                )
            })?;
        Ok(Tls(Arc::new(cfg)))
    }
}

/// Serves `router` over TLS on `listener` until the listener fails.
pub async fn serve(listener: TcpListener, router: Router, tls: Tls) -> std::io::Result<()> {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls.0);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let slot = slots.clone().acquire_owned().await.expect("never closed");
        let (tcp, _) = match listener.accept().await {
            Ok(c) => c,
            // Out of descriptors, a connection reset before accept: go on.
            Err(e) if is_transient(&e) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
            Err(e) => return Err(e),
        };
        let acceptor = acceptor.clone();
        let svc = TowerToHyperService::new(router.clone());
        tokio::spawn(async move {
            let Ok(Ok(stream)) = tokio::time::timeout(HANDSHAKE, acceptor.accept(tcp)).await else {
                return;
            };
            let mut b = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            b.http1()
                .timer(TokioTimer::new())
                .header_read_timeout(HANDSHAKE);
            let conn = b.serve_connection(TokioIo::new(stream), svc);
            let _ = tokio::time::timeout(MAX_CONNECTION, conn).await;
            drop(slot);
        });
    }
}

fn is_transient(e: &std::io::Error) -> bool {
    use std::io::ErrorKind as K;
    matches!(
        e.kind(),
        K::ConnectionAborted | K::ConnectionReset | K::Interrupted | K::WouldBlock
    ) || e.raw_os_error().is_some_and(|c| c == 24 || c == 23) // EMFILE, ENFILE
}
