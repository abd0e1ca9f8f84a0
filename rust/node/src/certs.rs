//! `lambdaroute certs`: a CA and the certificates of a network's nodes, for secured mode
//! ([`crate::tls`], docs/security.md).
//!
//! A directory holds `ca.pem` and `ca-key.pem` (the CA; its key signs, and stays with whoever
//! makes certificates), and per node `NAME.pem` and `NAME-key.pem`. A node's certificate names
//! its addresses and DNS names (what its peers dial) and its role (see [`crate::tls`]); it is
//! valid for TLS servers and clients both, since every node is both. Keys are ECDSA P-256;
//! certificates are valid from a year ago to ten years on.

use std::io::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};

use crate::tls::{CA_FILE, CA_KEY_FILE, Role, TlsFiles};

/// The CA's common name.
const CA_NAME: &str = "lambdaroute CA";

/// One node's certificate to make.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeSpec {
    /// File name stem (`NAME.pem`, `NAME-key.pem`) and common name.
    pub name: String,
    /// What the certificate lets the node do.
    pub role: Role,
    /// Addresses its peers dial (subject alternative names).
    pub ips: Vec<IpAddr>,
    /// Host names its peers dial (subject alternative names).
    pub dns: Vec<String>,
}

/// Certificates that cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum CertsError {
    /// A file cannot be read or written.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        error: std::io::Error,
    },
    /// The CA exists and `--force` was not given.
    #[error(
        "{} exists: a new CA would invalidate every certificate made with it; give --force to replace it, or leave out --ca to add nodes to it",
        path.display()
    )]
    CaExists {
        /// The CA certificate.
        path: PathBuf,
    },
    /// No CA to sign with.
    #[error(
        "no CA in {}: make it first with `lambdaroute certs --out {} --ca`",
        dir.display(), dir.display()
    )]
    NoCa {
        /// The directory.
        dir: PathBuf,
    },
    /// A node name that is not a file name stem.
    #[error(
        "node name '{0}' cannot be a file name: use letters, digits, '.', '_' and '-' (and not 'ca' or 'ca-key')"
    )]
    BadName(String),
    /// A DNS name rcgen refuses.
    #[error("--dns '{0}' is not a DNS name")]
    BadDns(String),
    /// rcgen failed.
    #[error("cannot make the certificate: {0}")]
    Rcgen(#[from] rcgen::Error),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CertsError + '_ {
    move |error| CertsError::Io {
        path: path.to_owned(),
        error,
    }
}

/// Valid from January of last year to January ten years on (whole years: rcgen takes dates).
fn set_validity(params: &mut CertificateParams) {
    let days = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400);
    // Days to years, good to a day around New Year: the bounds have a year of slack.
    let year = 1970 + (days as f64 / 365.2425) as i32;
    params.not_before = rcgen::date_time_ymd(year - 1, 1, 1);
    params.not_after = rcgen::date_time_ymd(year + 10, 1, 1);
}

fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    // Positive, and never with a leading zero byte the encoding would drop.
    bytes[0] = (bytes[0] & 0x7f) | 0x01;
    SerialNumber::from_slice(&bytes)
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, CA_NAME);
    name.push(DnType::OrganizationName, "lambdaroute");
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

/// Writes `text` to `path`; private files readable by their owner only.
fn write(path: &Path, text: &str, private: bool) -> Result<(), CertsError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options.open(path).map_err(io(path))?;
    file.write_all(text.as_bytes()).map_err(io(path))
}

/// Makes the CA in `dir` (created if missing): `ca.pem` and `ca-key.pem`. An existing CA is
/// kept unless `force`.
pub fn make_ca(dir: &Path, force: bool) -> Result<PathBuf, CertsError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let cert_path = dir.join(CA_FILE);
    if cert_path.exists() && !force {
        return Err(CertsError::CaExists { path: cert_path });
    }
    let key = KeyPair::generate()?;
    let mut params = ca_params();
    set_validity(&mut params);
    params.serial_number = Some(random_serial());
    let cert = params.self_signed(&key)?;
    write(&dir.join(CA_KEY_FILE), &key.serialize_pem(), true)?;
    write(&cert_path, &cert.pem(), false)?;
    Ok(cert_path)
}

/// Whether `dir` holds a CA.
pub fn has_ca(dir: &Path) -> bool {
    dir.join(CA_FILE).exists() && dir.join(CA_KEY_FILE).exists()
}

fn check_name(name: &str) -> Result<(), CertsError> {
    let fine = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && !name.starts_with('.')
        && name != "ca"
        && name != "ca-key";
    if fine {
        Ok(())
    } else {
        Err(CertsError::BadName(crate::limits::clip(name).into_owned()))
    }
}

/// Makes `spec`'s certificate and key in `dir`, signed by the CA there; returns the files a
/// node is given.
pub fn make_node(dir: &Path, spec: &NodeSpec) -> Result<TlsFiles, CertsError> {
    check_name(&spec.name)?;
    let key_path = dir.join(CA_KEY_FILE);
    if !has_ca(dir) {
        return Err(CertsError::NoCa {
            dir: dir.to_owned(),
        });
    }
    let ca_key_pem = std::fs::read_to_string(&key_path).map_err(io(&key_path))?;
    let ca_key = KeyPair::from_pem(&ca_key_pem)?;
    // The issuer is the CA's name and key: what the new certificate's issuer field and
    // signature need (the CA certificate itself is not re-read).
    let issuer = Issuer::new(ca_params(), ca_key);

    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, spec.name.as_str());
    name.push(DnType::OrganizationalUnitName, spec.role.as_str());
    name.push(DnType::OrganizationName, "lambdaroute");
    params.distinguished_name = name;
    set_validity(&mut params);
    params.serial_number = Some(random_serial());
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.use_authority_key_identifier_extension = true;
    let mut sans = vec![SanType::DnsName(
        spec.role
            .marker()
            .try_into()
            .map_err(|_| CertsError::BadDns(spec.role.marker()))?,
    )];
    for dns in &spec.dns {
        sans.push(SanType::DnsName(
            dns.as_str()
                .try_into()
                .map_err(|_| CertsError::BadDns(dns.clone()))?,
        ));
    }
    sans.extend(spec.ips.iter().copied().map(SanType::IpAddress));
    params.subject_alt_names = sans;
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer)?;
    let files = TlsFiles::in_dir(dir, &spec.name);
    write(&files.key, &key.serialize_pem(), true)?;
    write(&files.cert, &cert.pem(), false)?;
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::roles_of;
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;

    #[test]
    fn a_node_certificate_loads_under_its_ca_and_carries_its_role_and_addresses() {
        let dir = tempfile::tempdir().unwrap();
        make_ca(dir.path(), false).unwrap();
        let files = make_node(
            dir.path(),
            &NodeSpec {
                name: "c1".into(),
                role: Role::Computer,
                ips: vec!["10.0.0.7".parse().unwrap()],
                dns: vec!["c1.example".into()],
            },
        )
        .unwrap();
        let tls = files.load().unwrap();
        assert_eq!(tls.roles(), &[Role::Computer]);
        let pem = std::fs::read(&files.cert).unwrap();
        let cert = CertificateDer::from_pem_slice(&pem).unwrap();
        assert_eq!(roles_of(&cert), vec![Role::Computer]);
        assert!(crate::tls::names_host(&cert, "10.0.0.7"));
        assert!(crate::tls::names_host(&cert, "c1.example"));
        assert!(!crate::tls::names_host(&cert, "10.0.0.8"));
    }

    #[test]
    fn a_certificate_of_another_ca_or_another_key_is_refused_with_the_file() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        make_ca(a.path(), false).unwrap();
        make_ca(b.path(), false).unwrap();
        let spec = |name: &str| NodeSpec {
            name: name.into(),
            role: Role::Router,
            ips: vec![],
            dns: vec![],
        };
        let files = make_node(a.path(), &spec("r1")).unwrap();
        let foreign = TlsFiles {
            ca: b.path().join(CA_FILE),
            ..files.clone()
        };
        let error = foreign.load().unwrap_err().to_string();
        assert!(error.contains("not valid under the CA"), "{error}");
        assert!(error.contains("r1.pem"), "{error}");
        let other = make_node(a.path(), &spec("r2")).unwrap();
        let mismatched = TlsFiles {
            key: other.key.clone(),
            ..files
        };
        let error = mismatched.load().unwrap_err().to_string();
        assert!(error.contains("r2-key.pem"), "{error}");
        assert!(error.contains("not the private key"), "{error}");
    }

    #[test]
    fn the_ca_is_kept_unless_forced_and_bad_names_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        make_ca(dir.path(), false).unwrap();
        let error = make_ca(dir.path(), false).unwrap_err().to_string();
        assert!(error.contains("--force"), "{error}");
        make_ca(dir.path(), true).unwrap();
        let bad = NodeSpec {
            name: "../x".into(),
            role: Role::Client,
            ips: vec![],
            dns: vec![],
        };
        assert!(matches!(
            make_node(dir.path(), &bad),
            Err(CertsError::BadName(_))
        ));
        let empty = tempfile::tempdir().unwrap();
        let error = make_node(
            empty.path(),
            &NodeSpec {
                name: "x".into(),
                ..bad
            },
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("--ca"), "{error}");
    }
}
