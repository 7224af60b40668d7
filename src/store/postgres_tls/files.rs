//! The files a TLS connection reads: authorities, the client's certificate chain and its
//! private key, named in the URL or found where libpq looks for them by default.

use super::TlsError;
use openssl::pkey::{PKey, Private};
use openssl::x509::store::{X509Store, X509StoreBuilder};
use openssl::x509::X509;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// libpq's folder for a user's certificates and keys, under the home directory.
const DEFAULT_FOLDER: &str = ".postgresql";
pub const DEFAULT_ROOT_CERT: &str = "root.crt";
pub const DEFAULT_CERT: &str = "postgresql.crt";
pub const DEFAULT_KEY: &str = "postgresql.key";

/// A file and where its name came from, so that an error says which parameter to fix.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsFile {
    /// The URL parameter that names it (`sslcert`), or would have.
    param: &'static str,
    pub path: PathBuf,
    /// Named in the URL, rather than libpq's default.
    named: bool,
}

impl std::fmt::Display for TlsFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.named {
            write!(f, "{} {}", self.param, self.path.display())
        } else {
            write!(f, "{} (the default {})", self.path.display(), self.param)
        }
    }
}

impl TlsFile {
    pub fn named(param: &'static str, path: &str) -> TlsFile {
        TlsFile {
            param,
            path: PathBuf::from(path),
            named: true,
        }
    }

    /// `~/.postgresql/NAME` as `param`'s default; none without a home directory.
    pub fn default(param: &'static str, home: Option<&Path>, name: &str) -> Option<TlsFile> {
        Some(TlsFile {
            param,
            path: home?.join(DEFAULT_FOLDER).join(name),
            named: false,
        })
    }

    pub fn exists(&self) -> bool {
        self.path.exists()
    }

    fn read(&self) -> Result<Vec<u8>, TlsError> {
        std::fs::read(&self.path).map_err(|source| TlsError::Unreadable {
            file: self.clone(),
            source,
        })
    }
}

/// The authorities in a PEM file, as the only ones trusted: a store of their own, since the
/// connector starts out trusting the system's too.
pub fn read_authorities(file: &TlsFile) -> Result<X509Store, TlsError> {
    let (first, others) = read_certificates(file)?;
    let mut store = X509StoreBuilder::new()?;
    for cert in std::iter::once(first).chain(others) {
        store.add_cert(cert)?;
    }
    Ok(store.build())
}

/// The certificates in a PEM file, in order: the first, and any after it.
pub fn read_certificates(file: &TlsFile) -> Result<(X509, Vec<X509>), TlsError> {
    let mut certs = X509::stack_from_pem(&file.read()?)?;
    if certs.is_empty() {
        return Err(TlsError::NotPem { file: file.clone() });
    }
    let first = certs.remove(0);
    Ok((first, certs))
}

/// The private key in a PEM file, decrypted with `password` where it is encrypted. As libpq
/// does, a key file that others than its owner may read is refused before it is read.
pub fn read_private_key(file: &TlsFile, password: Option<&str>) -> Result<PKey<Private>, TlsError> {
    check_key_access(file)?;
    let pem = file.read()?;
    let mut asked_for_password = false;
    // A callback, never OpenSSL's default one: that one prompts on the terminal, and the
    // node reads its requests from stdin.
    let key = PKey::private_key_from_pem_callback(&pem, |buf| {
        asked_for_password = true;
        let given = password.unwrap_or_default().as_bytes();
        let len = given.len().min(buf.len());
        buf[..len].copy_from_slice(&given[..len]);
        Ok(len)
    });
    match key {
        Ok(key) => Ok(key),
        Err(_) if asked_for_password && password.is_none() => {
            Err(TlsError::KeyEncrypted { file: file.clone() })
        }
        Err(source) => Err(TlsError::KeyUnreadable {
            file: file.clone(),
            source,
        }),
    }
}

fn check_key_access(file: &TlsFile) -> Result<(), TlsError> {
    let meta = std::fs::metadata(&file.path).map_err(|source| TlsError::Unreadable {
        file: file.clone(),
        source,
    })?;
    if !meta.is_file() {
        return Err(TlsError::KeyNotAFile { file: file.clone() });
    }
    if !key_access_is_private(meta.mode(), meta.uid()) {
        return Err(TlsError::KeyAccess {
            file: file.clone(),
            mode: meta.mode() & 0o777,
        });
    }
    Ok(())
}

/// libpq's rule for a client key: no access for group or others (0600 or less), except that
/// a key owned by root may be readable by its group (0640 or less), for keys the system
/// manages and hands to the members of a group.
fn key_access_is_private(mode: u32, owner: u32) -> bool {
    let forbidden = if owner == 0 { 0o037 } else { 0o077 };
    mode & forbidden == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_private_to_its_owner_or_to_roots_group() {
        let user = 1000;
        assert!(key_access_is_private(0o100600, user));
        assert!(key_access_is_private(0o100400, user));
        assert!(key_access_is_private(0o100700, user));
        assert!(!key_access_is_private(0o100640, user));
        assert!(!key_access_is_private(0o100604, user));
        assert!(!key_access_is_private(0o100644, user));
        assert!(key_access_is_private(0o100640, 0));
        assert!(key_access_is_private(0o100600, 0));
        assert!(!key_access_is_private(0o100660, 0));
        assert!(!key_access_is_private(0o100650, 0));
        assert!(!key_access_is_private(0o100644, 0));
    }

    #[test]
    fn a_file_says_which_parameter_it_stands_for() {
        let named = TlsFile::named("sslcert", "/etc/mig/client.crt");
        assert_eq!(named.to_string(), "sslcert /etc/mig/client.crt");
        let default = TlsFile::default("sslkey", Some(Path::new("/home/ann")), DEFAULT_KEY);
        assert_eq!(
            default.unwrap().to_string(),
            "/home/ann/.postgresql/postgresql.key (the default sslkey)"
        );
        assert_eq!(TlsFile::default("sslkey", None, DEFAULT_KEY), None);
    }

    #[test]
    fn a_shared_key_is_refused_before_it_is_read() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("client.key");
        std::fs::write(&path, "not even a key").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let file = TlsFile::named("sslkey", path.to_str().unwrap());
        let err = read_private_key(&file, None).unwrap_err();
        assert!(
            matches!(err, TlsError::KeyAccess { mode: 0o644, .. }),
            "{err}"
        );
    }
}
