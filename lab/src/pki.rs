//! The lab's certificates: its own CA, and one server certificate per instance issued by it, made
//! fresh at every `lab up` (rcgen) and never written with their keys.
//!
//! The CA certificate is written to DIR/tls/ca.pem, which lab.json declares (`ca_file`) and the lab
//! runbook names, so clients check the instances' certificates the way a site checks its own PKI's.
//! Each server certificate names the instance's FQDN, its host name, `localhost` and 127.0.0.1.
//! Keys live only in the daemon's memory: a restarted lab has a new CA, and the file follows.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

use crate::error::LabError;
use crate::fsutil;

/// The CA's name, as clients show it in certificate errors.
const CA_NAME: &str = "pcfail lab CA";

/// The CA of one lab start, ready to issue server certificates.
pub(crate) struct LabCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
    /// DIR/tls/ca.pem.
    pub(crate) file: PathBuf,
}

/// A server certificate (DER chain, leaf first) and its private key (PKCS#8 DER).
pub(crate) struct ServerCert {
    pub(crate) chain: Vec<Vec<u8>>,
    pub(crate) key: Vec<u8>,
}

impl LabCa {
    /// Makes a CA and writes its certificate to DIR/tls/ca.pem.
    pub(crate) fn create(dir: &Path) -> Result<LabCa, LabError> {
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(pki_error)?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, CA_NAME);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().map_err(pki_error)?;
        let issuer = CertifiedIssuer::self_signed(params, key).map_err(pki_error)?;
        let tls = dir.join("tls");
        std::fs::create_dir_all(&tls).map_err(|e| LabError::io("create", &tls, e))?;
        let file = tls.join("ca.pem");
        fsutil::write_atomic(&file, issuer.pem().as_bytes(), false)?;
        Ok(LabCa { issuer, file })
    }

    /// A server certificate for `fqdn` (and its first label, `localhost`, 127.0.0.1).
    pub(crate) fn issue(&self, fqdn: &str) -> Result<ServerCert, LabError> {
        let host = fqdn.split('.').next().unwrap_or(fqdn);
        let names = [fqdn, host, "localhost", "127.0.0.1"].map(str::to_owned);
        let mut params = CertificateParams::new(names.to_vec()).map_err(pki_error)?;
        params.distinguished_name.push(DnType::CommonName, fqdn);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().map_err(pki_error)?;
        let cert = params.signed_by(&key, &self.issuer).map_err(pki_error)?;
        Ok(ServerCert {
            chain: vec![cert.der().to_vec()],
            key: key.serialize_der(),
        })
    }
}

fn pki_error(e: rcgen::Error) -> LabError {
    LabError::Tls(format!("cannot make the lab's certificates: {e}"))
}
