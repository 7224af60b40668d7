//! TLS for PostgreSQL connections, with libpq's meanings of `sslmode`, `sslrootcert`,
//! `sslcert`, `sslkey` and `sslpassword` and its default files under `~/.postgresql/`, so a
//! URL that works with `psql` works with mig. The postgres crate knows `disable`, `prefer`
//! and `require` only, verifies nothing itself and refuses the other parameters: they are
//! taken out of the URL here, the crate is asked for `require` where the server is verified,
//! and the connector does the verifying and presents the client's certificate.

mod files;

use files::{TlsFile, DEFAULT_CERT, DEFAULT_KEY, DEFAULT_ROOT_CERT};
use openssl::error::ErrorStack;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{SslConnector, SslConnectorBuilder, SslMethod, SslVerifyMode};
use openssl::x509::X509;
use percent_encoding::percent_decode_str;
use postgres_openssl::MakeTlsConnector;
use std::path::{Path, PathBuf};

/// `sslrootcert=system`: OpenSSL's default authorities rather than a file.
const SYSTEM: &str = "system";

/// A URL's TLS parameters turned into a connector, and the URL the postgres crate can parse.
pub struct ClientTls {
    pub url: String,
    pub connector: MakeTlsConnector,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error(
        "sslmode={0} is not supported: use disable, prefer, require, verify-ca or verify-full"
    )]
    UnknownMode(String),
    /// As libpq 16 refuses it: the system's authorities sign certificates for any host name
    /// its owner shows control of, so a check that leaves out the name proves nothing.
    #[error(
        "sslmode={mode} cannot be used with sslrootcert=system: the system's authorities sign \
         certificates for anyone's host names, so only verify-full (the default with \
         sslrootcert=system) checks which server answers"
    )]
    WeakModeWithSystemRoots { mode: &'static str },
    /// `?sslmode=verify-full` alone, with no home directory to find libpq's default in.
    #[error(
        "sslmode={mode} needs sslrootcert=PATH, the certificate of the authority that signed \
         the server's (or sslrootcert=system for the system's trusted authorities)"
    )]
    NoRootCert { mode: &'static str },
    #[error(
        "sslmode={mode} needs the certificate of the authority that signed the server's, and \
         its default file {} does not exist: put it there, or name it with sslrootcert=PATH \
         (or sslrootcert=system for the system's trusted authorities)",
        path.display()
    )]
    DefaultRootCertMissing { mode: &'static str, path: PathBuf },
    /// Named files are read or refused, never skipped: libpq goes on without a client
    /// certificate it cannot find, and the server's refusal then says nothing of the typo.
    #[error("cannot read {file}: {source}")]
    Unreadable {
        file: TlsFile,
        source: std::io::Error,
    },
    #[error("{file} holds no PEM certificate")]
    NotPem { file: TlsFile },
    #[error(
        "{key} is given without a client certificate to go with it: name that with \
         sslcert=PATH, or put it in ~/.postgresql/{DEFAULT_CERT}"
    )]
    KeyWithoutCert { key: TlsFile },
    #[error(
        "the client certificate {cert} needs its private key, and {key} does not exist: put \
         it there, or name it with sslkey=PATH"
    )]
    KeyMissing { cert: TlsFile, key: TlsFile },
    /// A client certificate named, no `sslkey` and no home directory to find the default in.
    #[error("the client certificate {cert} needs its private key: name it with sslkey=PATH")]
    NoKey { cert: TlsFile },
    #[error("{file} is not a regular file")]
    KeyNotAFile { file: TlsFile },
    #[error(
        "{file} is open to others than its owner (mode {mode:04o}); as libpq does, mig refuses a \
         private key that group or others may read: chmod 0600 it (0640 where root owns it \
         and its group is to read it)"
    )]
    KeyAccess { file: TlsFile, mode: u32 },
    #[error("{file} is encrypted: give its passphrase as sslpassword")]
    KeyEncrypted { file: TlsFile },
    #[error(
        "cannot read the private key in {file} (a PEM key is expected, and sslpassword must \
         be its passphrase where it is encrypted): {source}"
    )]
    KeyUnreadable { file: TlsFile, source: ErrorStack },
    #[error("{key} is not the private key of the client certificate {cert}")]
    KeyMismatch { cert: TlsFile, key: TlsFile },
    #[error("cannot set up TLS: {0}")]
    OpenSsl(#[from] ErrorStack),
}

/// libpq's `sslmode`, but for `allow`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Disable,
    Prefer,
    Require,
    /// Signed by a trusted authority, for any host name.
    VerifyCa,
    /// Signed by a trusted authority and naming the host connected to.
    VerifyFull,
}

impl Mode {
    fn parse(text: &str) -> Option<Mode> {
        [
            Mode::Disable,
            Mode::Prefer,
            Mode::Require,
            Mode::VerifyCa,
            Mode::VerifyFull,
        ]
        .into_iter()
        .find(|mode| mode.name() == text)
    }

    fn name(self) -> &'static str {
        match self {
            Mode::Disable => "disable",
            Mode::Prefer => "prefer",
            Mode::Require => "require",
            Mode::VerifyCa => "verify-ca",
            Mode::VerifyFull => "verify-full",
        }
    }

    /// What the postgres crate is asked for: it has no verifying modes, the connector verifies.
    fn for_crate(self) -> &'static str {
        match self {
            Mode::Disable => "disable",
            Mode::Prefer => "prefer",
            Mode::Require | Mode::VerifyCa | Mode::VerifyFull => "require",
        }
    }
}

/// A URL's TLS parameters, percent-decoded. An empty one counts as not given, as in libpq.
#[derive(Debug, Default)]
struct Params {
    mode: Option<String>,
    root_cert: Option<String>,
    cert: Option<String>,
    key: Option<String>,
    password: Option<String>,
}

/// Whose signature makes the server's certificate good.
#[derive(Debug, PartialEq)]
enum Authorities {
    Unchecked,
    /// OpenSSL's default paths (`SSL_CERT_FILE`, `SSL_CERT_DIR` move them).
    System,
    File(TlsFile),
}

/// The certificate a client presents when the server asks for one, and its key.
struct Identity {
    cert: X509,
    /// Sent along after the client's own, as libpq sends what follows it in the file.
    intermediates: Vec<X509>,
    key: PKey<Private>,
}

impl ClientTls {
    /// Reads the TLS parameters from `url` (`postgres://host/db?sslmode=verify-full`), with
    /// libpq's defaults under `$HOME/.postgresql/`.
    pub fn from_url(url: &str) -> Result<ClientTls, TlsError> {
        let home = std::env::var_os("HOME")
            .filter(|home| !home.is_empty())
            .map(PathBuf::from);
        ClientTls::from_url_at_home(url, home.as_deref())
    }

    fn from_url_at_home(url: &str, home: Option<&Path>) -> Result<ClientTls, TlsError> {
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let (params, mut kept) = split_query(query);
        let mode = mode(&params)?;
        let crate_mode = format!("sslmode={}", mode.for_crate());
        kept.push(&crate_mode);
        let url = format!("{base}?{}", kept.join("&"));
        let (authorities, identity) = if mode == Mode::Disable {
            // A connection in clear reads no file, as with libpq.
            (Authorities::Unchecked, None)
        } else {
            (
                authorities(mode, params.root_cert.as_deref(), home)?,
                identity(&params, home)?,
            )
        };
        let connector = connector(mode, &authorities, identity)?;
        Ok(ClientTls { url, connector })
    }
}

/// Takes the TLS parameters out of a URL's query; the others are kept as they are.
fn split_query(query: &str) -> (Params, Vec<&str>) {
    let mut params = Params::default();
    let mut kept = Vec::new();
    for param in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = param.split_once('=').unwrap_or((param, ""));
        let slot = match key {
            "sslmode" => &mut params.mode,
            "sslrootcert" => &mut params.root_cert,
            "sslcert" => &mut params.cert,
            "sslkey" => &mut params.key,
            "sslpassword" => &mut params.password,
            _ => {
                kept.push(param);
                continue;
            }
        };
        let value = percent_decode_str(value).decode_utf8_lossy().into_owned();
        *slot = Some(value).filter(|v| !v.is_empty());
    }
    (params, kept)
}

/// libpq's `prefer` unless the URL says otherwise; `verify-full` with `sslrootcert=system`,
/// which takes no other.
fn mode(params: &Params) -> Result<Mode, TlsError> {
    let system_roots = params.root_cert.as_deref() == Some(SYSTEM);
    let mode = match params.mode.as_deref() {
        None if system_roots => Mode::VerifyFull,
        None => Mode::Prefer,
        Some(text) => Mode::parse(text).ok_or_else(|| TlsError::UnknownMode(text.to_string()))?,
    };
    if system_roots && mode != Mode::VerifyFull {
        return Err(TlsError::WeakModeWithSystemRoots { mode: mode.name() });
    }
    Ok(mode)
}

/// The authorities the server's certificate is checked against. As in libpq, `require`
/// checks it where an authority is named or `~/.postgresql/root.crt` exists, and the
/// verifying modes need one; `prefer` checks nothing (libpq would check and, on a failure,
/// go on in clear, which the postgres crate cannot).
fn authorities(
    mode: Mode,
    root_cert: Option<&str>,
    home: Option<&Path>,
) -> Result<Authorities, TlsError> {
    if matches!(mode, Mode::Disable | Mode::Prefer) {
        return Ok(Authorities::Unchecked);
    }
    match root_cert {
        Some(SYSTEM) => return Ok(Authorities::System),
        Some(path) => return Ok(Authorities::File(TlsFile::named("sslrootcert", path))),
        None => {}
    }
    match TlsFile::default("sslrootcert", home, DEFAULT_ROOT_CERT) {
        Some(file) if file.exists() => Ok(Authorities::File(file)),
        _ if mode == Mode::Require => Ok(Authorities::Unchecked),
        Some(file) => Err(TlsError::DefaultRootCertMissing {
            mode: mode.name(),
            path: file.path,
        }),
        None => Err(TlsError::NoRootCert { mode: mode.name() }),
    }
}

/// The client certificate named by `sslcert`, else `~/.postgresql/postgresql.crt` where it
/// exists, with its key (`sslkey`, else `~/.postgresql/postgresql.key`); none where neither
/// certificate is there, as libpq then presents none.
fn identity(params: &Params, home: Option<&Path>) -> Result<Option<Identity>, TlsError> {
    let named_key = params.key.as_deref().map(|p| TlsFile::named("sslkey", p));
    let default_cert = TlsFile::default("sslcert", home, DEFAULT_CERT).filter(TlsFile::exists);
    let cert_file = match (params.cert.as_deref(), default_cert, named_key.clone()) {
        (Some(path), _, _) => TlsFile::named("sslcert", path),
        (None, Some(file), _) => file,
        (None, None, Some(key)) => return Err(TlsError::KeyWithoutCert { key }),
        (None, None, None) => return Ok(None),
    };
    let (cert, intermediates) = files::read_certificates(&cert_file)?;
    let key_file = key_file(named_key, home, &cert_file)?;
    let key = files::read_private_key(&key_file, params.password.as_deref())?;
    if !cert.public_key()?.public_eq(&key) {
        return Err(TlsError::KeyMismatch {
            cert: cert_file,
            key: key_file,
        });
    }
    Ok(Some(Identity {
        cert,
        intermediates,
        key,
    }))
}

/// The key file that goes with the client certificate `cert`: the named one, else the
/// default, which must then exist.
fn key_file(
    named: Option<TlsFile>,
    home: Option<&Path>,
    cert: &TlsFile,
) -> Result<TlsFile, TlsError> {
    let cert = cert.clone();
    match (named, TlsFile::default("sslkey", home, DEFAULT_KEY)) {
        (Some(file), _) => Ok(file),
        (None, Some(file)) if file.exists() => Ok(file),
        (None, Some(key)) => Err(TlsError::KeyMissing { cert, key }),
        (None, None) => Err(TlsError::NoKey { cert }),
    }
}

fn connector(
    mode: Mode,
    authorities: &Authorities,
    identity: Option<Identity>,
) -> Result<MakeTlsConnector, TlsError> {
    let mut builder = SslConnector::builder(SslMethod::tls_client())?;
    match authorities {
        Authorities::Unchecked => builder.set_verify(SslVerifyMode::NONE),
        // The builder starts out trusting them.
        Authorities::System => {}
        Authorities::File(file) => builder.set_cert_store(files::read_authorities(file)?),
    }
    if let Some(identity) = identity {
        present(&mut builder, identity)?;
    }
    let mut connector = MakeTlsConnector::new(builder.build());
    if *authorities != Authorities::Unchecked && mode != Mode::VerifyFull {
        connector.set_callback(|config, _| {
            config.set_verify_hostname(false);
            Ok(())
        });
    }
    Ok(connector)
}

/// Gives the connector the client's certificate to present when the server asks for one.
fn present(builder: &mut SslConnectorBuilder, identity: Identity) -> Result<(), TlsError> {
    builder.set_certificate(&identity.cert)?;
    for cert in identity.intermediates {
        builder.add_extra_chain_cert(cert)?;
    }
    builder.set_private_key(&identity.key)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(query: &str) -> Params {
        split_query(query).0
    }

    #[test]
    fn tls_parameters_leave_the_url_and_the_crate_gets_a_mode_it_knows() {
        let home = tempfile::tempdir().unwrap();
        let root = home.path().join("ca.pem");
        std::fs::write(&root, include_str!("../../tests/data/tls/other_ca.pem")).unwrap();
        let url = format!(
            "postgres://u@h/db?connect_timeout=5&sslmode=verify-full&sslrootcert={}&password=x",
            root.display()
        );
        let tls = ClientTls::from_url_at_home(&url, Some(home.path())).unwrap();
        assert_eq!(
            tls.url,
            "postgres://u@h/db?connect_timeout=5&password=x&sslmode=require"
        );
        let tls = ClientTls::from_url_at_home("postgres://u@h/db", Some(home.path())).unwrap();
        assert_eq!(tls.url, "postgres://u@h/db?sslmode=prefer");
    }

    #[test]
    fn system_roots_mean_verify_full_and_take_no_weaker_mode() {
        assert_eq!(
            mode(&params("sslrootcert=system")).unwrap(),
            Mode::VerifyFull
        );
        for weaker in ["verify-ca", "require", "prefer", "disable"] {
            let err = mode(&params(&format!("sslrootcert=system&sslmode={weaker}")));
            assert!(
                matches!(err, Err(TlsError::WeakModeWithSystemRoots { .. })),
                "{weaker}"
            );
        }
        assert_eq!(mode(&params("")).unwrap(), Mode::Prefer);
        assert_eq!(mode(&params("sslmode=")).unwrap(), Mode::Prefer);
        let err = mode(&params("sslmode=allow")).unwrap_err();
        assert!(err.to_string().contains("sslmode=allow is not supported"));
    }

    #[test]
    fn the_root_certificate_defaults_to_home_postgresql_root_crt() {
        let home = tempfile::tempdir().unwrap();
        let home = home.path();
        let err = authorities(Mode::VerifyFull, None, Some(home)).unwrap_err();
        let default = home.join(".postgresql/root.crt");
        assert!(
            err.to_string()
                .contains(&format!("{} does not exist", default.display())),
            "{err}"
        );
        assert!(matches!(
            authorities(Mode::VerifyCa, None, None),
            Err(TlsError::NoRootCert { .. })
        ));
        assert_eq!(
            authorities(Mode::Require, None, Some(home)).unwrap(),
            Authorities::Unchecked
        );

        std::fs::create_dir(home.join(".postgresql")).unwrap();
        std::fs::write(&default, "").unwrap();
        for mode in [Mode::Require, Mode::VerifyCa, Mode::VerifyFull] {
            let Authorities::File(file) = authorities(mode, None, Some(home)).unwrap() else {
                panic!("{mode:?} does not read {}", default.display());
            };
            assert_eq!(file.path, default);
        }
        assert_eq!(
            authorities(Mode::Prefer, None, Some(home)).unwrap(),
            Authorities::Unchecked
        );
    }

    #[test]
    fn client_certificate_files_named_or_defaulted() {
        let home = tempfile::tempdir().unwrap();
        let home = home.path();
        assert!(identity(&params(""), Some(home)).unwrap().is_none());
        assert!(identity(&params(""), None).unwrap().is_none());

        let err = identity(&params("sslcert=/nowhere/client.crt"), Some(home))
            .err()
            .unwrap();
        assert!(
            err.to_string()
                .starts_with("cannot read sslcert /nowhere/client.crt: "),
            "{err}"
        );
        let err = identity(&params("sslkey=/nowhere/client.key"), Some(home))
            .err()
            .unwrap();
        assert!(matches!(err, TlsError::KeyWithoutCert { .. }), "{err}");

        // Any certificate will do: the key is missed before anything is checked.
        let cert = include_str!("../../tests/data/tls/other_ca.pem");
        std::fs::create_dir(home.join(".postgresql")).unwrap();
        std::fs::write(home.join(".postgresql/postgresql.crt"), cert).unwrap();
        let err = identity(&params(""), Some(home)).err().unwrap();
        assert!(matches!(err, TlsError::KeyMissing { .. }), "{err}");
        assert!(
            err.to_string().contains(&format!(
                "{} (the default sslkey) does not exist",
                home.join(".postgresql/postgresql.key").display()
            )),
            "{err}"
        );
        let named = format!(
            "sslcert={}",
            home.join(".postgresql/postgresql.crt").display()
        );
        let err = identity(&params(&named), None).err().unwrap();
        assert!(matches!(err, TlsError::NoKey { .. }), "{err}");
    }
}
