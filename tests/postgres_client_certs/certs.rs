//! Certificate authorities and the certificates they sign, made afresh for each test with
//! the openssl crate (no fixture to expire, no openssl command needed).

use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::symm::Cipher;
use openssl::x509::extension::{
    BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
};
use openssl::x509::{X509Builder, X509NameBuilder, X509};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

/// A certificate and its private key.
pub struct Issued {
    pub cert: X509,
    pub key: PKey<Private>,
}

/// A self-signed authority.
pub struct Authority(Issued);

/// Who a certificate is for, which decides its extensions.
enum Holder {
    Authority,
    /// A PostgreSQL server at 127.0.0.1, also called localhost.
    Server,
    /// A client: `cert` authentication takes the certificate's CN for the role it logs in as.
    Client,
}

impl Authority {
    pub fn new(name: &str) -> Authority {
        let key = new_key();
        Authority(Issued {
            cert: sign(name, &Holder::Authority, &key, None),
            key,
        })
    }

    pub fn cert(&self) -> &X509 {
        &self.0.cert
    }

    pub fn server(&self) -> Issued {
        let key = new_key();
        Issued {
            cert: sign("localhost", &Holder::Server, &key, Some(&self.0)),
            key,
        }
    }

    pub fn client(&self, role: &str) -> Issued {
        let key = new_key();
        Issued {
            cert: sign(role, &Holder::Client, &key, Some(&self.0)),
            key,
        }
    }
}

impl Issued {
    pub fn write_cert(&self, path: &Path) {
        std::fs::write(path, self.cert.to_pem().unwrap()).unwrap();
    }

    /// The key, readable by its owner alone as libpq and PostgreSQL require.
    pub fn write_key(&self, path: &Path) {
        write_private(path, &self.key.private_key_to_pem_pkcs8().unwrap());
    }

    pub fn write_encrypted_key(&self, path: &Path, passphrase: &str) {
        let pem = self
            .key
            .private_key_to_pem_pkcs8_passphrase(Cipher::aes_256_cbc(), passphrase.as_bytes())
            .unwrap();
        write_private(path, &pem);
    }
}

fn write_private(path: &Path, contents: &[u8]) {
    std::fs::write(path, contents).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

fn new_key() -> PKey<Private> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
}

/// A certificate for `name`, signed by `issuer` (itself where none), valid from an hour ago
/// for a day.
fn sign(name: &str, holder: &Holder, key: &PKey<Private>, issuer: Option<&Issued>) -> X509 {
    static SERIAL: AtomicU32 = AtomicU32::new(1);
    let mut subject = X509NameBuilder::new().unwrap();
    subject.append_entry_by_nid(Nid::COMMONNAME, name).unwrap();
    let subject = subject.build();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut builder = X509Builder::new().unwrap();
    builder.set_version(2).unwrap();
    let serial = BigNum::from_u32(SERIAL.fetch_add(1, Ordering::Relaxed)).unwrap();
    builder
        .set_serial_number(&serial.to_asn1_integer().unwrap())
        .unwrap();
    builder.set_subject_name(&subject).unwrap();
    builder
        .set_issuer_name(issuer.map_or(&subject, |i| i.cert.subject_name()))
        .unwrap();
    builder.set_pubkey(key).unwrap();
    builder
        .set_not_before(&Asn1Time::from_unix(now - 3600).unwrap())
        .unwrap();
    builder
        .set_not_after(&Asn1Time::from_unix(now + 86_400).unwrap())
        .unwrap();
    match holder {
        Holder::Authority => {
            let constraints = BasicConstraints::new().critical().ca().build().unwrap();
            builder.append_extension(constraints).unwrap();
            let usage = KeyUsage::new()
                .critical()
                .key_cert_sign()
                .crl_sign()
                .build();
            builder.append_extension(usage.unwrap()).unwrap();
        }
        Holder::Server => {
            let names = SubjectAlternativeName::new()
                .dns("localhost")
                .ip("127.0.0.1")
                .build(&builder.x509v3_context(issuer.map(|i| i.cert.as_ref()), None))
                .unwrap();
            builder.append_extension(names).unwrap();
            let usage = ExtendedKeyUsage::new().server_auth().build().unwrap();
            builder.append_extension(usage).unwrap();
        }
        Holder::Client => {
            let usage = ExtendedKeyUsage::new().client_auth().build().unwrap();
            builder.append_extension(usage).unwrap();
        }
    }
    let signer = issuer.map_or(key, |i| &i.key);
    builder.sign(signer, MessageDigest::sha256()).unwrap();
    builder.build()
}
