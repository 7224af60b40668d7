//! TLS for PostgreSQL connections, with libpq's `sslmode` and `sslrootcert` meanings, so a URL
//! that works with `psql` works with mig. The postgres crate knows `disable`, `prefer` and
//! `require` only, and verifies nothing itself: `verify-ca`, `verify-full` and `sslrootcert`
//! are taken out of the URL here, the crate is asked for `require`, and the connector does
//! the verifying.

use openssl::error::ErrorStack;
use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::X509;
use percent_encoding::percent_decode_str;
use postgres_openssl::MakeTlsConnector;

/// A URL's TLS parameters turned into a connector, and the URL the postgres crate can parse.
pub struct ClientTls {
    pub url: String,
    pub connector: MakeTlsConnector,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// `?sslmode=verify-full` alone: libpq would read `~/.postgresql/root.crt`, which mig
    /// does not, and trusting the system's authorities unasked would accept any certificate
    /// they ever signed for that name.
    #[error(
        "sslmode={mode} needs sslrootcert=PATH, the certificate of the authority that signed \
         the server's (or sslrootcert=system for the system's trusted authorities)"
    )]
    NoRootCert { mode: String },
    /// `?sslrootcert=/missing.pem`.
    #[error("cannot read sslrootcert {path}: {source}")]
    RootCertUnreadable {
        path: String,
        source: std::io::Error,
    },
    /// `?sslrootcert=/etc/hostname`: a file with no PEM certificate in it.
    #[error("sslrootcert {path} holds no PEM certificate")]
    RootCertNotPem { path: String },
    #[error("cannot set up TLS: {0}")]
    OpenSsl(#[from] ErrorStack),
}

/// How much of the server's certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Verify {
    Nothing,
    /// Signed by a trusted authority, for any host name (libpq's `verify-ca`).
    Authority,
    /// Signed by a trusted authority and naming the host connected to (`verify-full`).
    AuthorityAndHost,
}

impl ClientTls {
    /// Reads `sslmode` and `sslrootcert` from `url` (`postgres://host/db?sslmode=verify-full`).
    /// As in libpq, `require` with an `sslrootcert` verifies the authority; `prefer` (the
    /// default) and `require` without one accept any certificate.
    pub fn from_url(url: &str) -> Result<ClientTls, TlsError> {
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut mode = None;
        let mut root_cert = None;
        let mut kept = Vec::new();
        for param in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = param.split_once('=').unwrap_or((param, ""));
            let value = percent_decode_str(value).decode_utf8_lossy().into_owned();
            match key {
                "sslmode" if value == "verify-ca" || value == "verify-full" => mode = Some(value),
                "sslrootcert" => root_cert = Some(value),
                _ => kept.push(param),
            }
        }
        let verify = match (mode.as_deref(), &root_cert) {
            (Some("verify-full"), _) => Verify::AuthorityAndHost,
            (Some(_), _) => Verify::Authority,
            (None, Some(_)) if kept.contains(&"sslmode=require") => Verify::Authority,
            (None, _) => Verify::Nothing,
        };
        if let Some(mode) = mode {
            if root_cert.is_none() {
                return Err(TlsError::NoRootCert { mode });
            }
            kept.push("sslmode=require");
        }
        let url = if kept.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        let connector = connector(verify, root_cert.as_deref())?;
        Ok(ClientTls { url, connector })
    }
}

fn connector(verify: Verify, root_cert: Option<&str>) -> Result<MakeTlsConnector, TlsError> {
    let mut builder = SslConnector::builder(SslMethod::tls_client())?;
    if verify == Verify::Nothing {
        builder.set_verify(SslVerifyMode::NONE);
    } else if let Some(path) = root_cert.filter(|p| *p != "system") {
        // Only the named authority is trusted, as in libpq: the builder starts out trusting
        // the system's too.
        let pem = std::fs::read(path).map_err(|source| TlsError::RootCertUnreadable {
            path: path.to_string(),
            source,
        })?;
        let certs = X509::stack_from_pem(&pem)?;
        if certs.is_empty() {
            return Err(TlsError::RootCertNotPem {
                path: path.to_string(),
            });
        }
        let mut store = X509StoreBuilder::new()?;
        for cert in certs {
            store.add_cert(cert)?;
        }
        builder.set_cert_store(store.build());
    }
    let mut connector = MakeTlsConnector::new(builder.build());
    if verify == Verify::Authority {
        connector.set_callback(|config, _| {
            config.set_verify_hostname(false);
            Ok(())
        });
    }
    Ok(connector)
}
