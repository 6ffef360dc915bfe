//! HTTPS and WSS for the gateway, with rustls: the certificate chain and
//! key come from PEM files, and are read again on SIGHUP (a renewed
//! certificate needs no restart; a file that does not load keeps the one in
//! use, and says why).

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::ServerConfig;

/// Where the certificate and its key are.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsFiles {
    /// The certificate chain, PEM (leaf first).
    pub cert: PathBuf,
    /// The private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

impl TlsFiles {
    /// The files at `cert` and `key`.
    pub fn new(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        TlsFiles {
            cert: cert.into(),
            key: key.into(),
        }
    }

    /// Reads both files into a server configuration (HTTP/1.1 by ALPN).
    pub fn load(&self) -> Result<Arc<ServerConfig>, TlsError> {
        let certs = certificates(&self.cert).map_err(|e| TlsError::file(&self.cert, e))?;
        let key =
            PrivateKeyDer::from_pem_file(&self.key).map_err(|e| TlsError::file(&self.key, e))?;
        let mut config = ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| TlsError::Mismatch(e.to_string()))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// The certificates of a PEM file; none is an error.
pub(crate) fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| e.to_string())?;
    if certs.is_empty() {
        return Err("no certificate in the file".into());
    }
    Ok(certs)
}

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read as PEM.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The key does not go with the certificate, or is not usable.
    #[error("the TLS certificate and key do not make a server configuration: {0}")]
    Mismatch(String),
}

impl TlsError {
    fn file(path: &Path, e: impl std::fmt::Display) -> Self {
        TlsError::File {
            path: path.to_owned(),
            message: e.to_string(),
        }
    }
}

/// The configuration in use, replaced on reload.
#[derive(Clone)]
pub(crate) struct Reloadable {
    files: TlsFiles,
    current: Arc<RwLock<Arc<ServerConfig>>>,
}

impl Reloadable {
    pub(crate) fn new(files: TlsFiles) -> Result<Self, TlsError> {
        let config = files.load()?;
        Ok(Reloadable {
            files,
            current: Arc::new(RwLock::new(config)),
        })
    }

    pub(crate) fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        let config = self
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        tokio_rustls::TlsAcceptor::from(config)
    }

    /// Reads the files again; on failure the configuration in use stays.
    pub(crate) fn reload(&self) {
        match self.files.load() {
            Ok(config) => {
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = config;
                tracing::info!("TLS certificate reloaded");
            }
            Err(e) => {
                tracing::error!(error = %e, "TLS certificate not reloaded: the previous one stays in use; fix the files and send SIGHUP again")
            }
        }
    }

    /// Reloads on every SIGHUP, for as long as the server runs.
    pub(crate) fn reload_on_sighup(&self) {
        #[cfg(unix)]
        {
            let this = self.clone();
            let Ok(mut hangups) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            else {
                tracing::warn!("no SIGHUP handler: the TLS certificate is read once");
                return;
            };
            tokio::spawn(async move {
                while hangups.recv().await.is_some() {
                    this.reload();
                }
            });
        }
    }
}
