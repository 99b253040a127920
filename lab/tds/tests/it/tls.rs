//! Encryption against real clients: TLS inside PRELOGIN (TDS 7.x) and TDS 8.0 strict with tiberius,
//! the certificate checked against the CA that issued it; Windows (NTLMv2) logins; FreeTDS over TLS.

use std::path::PathBuf;
use std::time::Duration;

use pcfail_lab_tds::{Encryption, Security};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use tiberius::{AuthMethod, Client, Config, EncryptionLevel};
use tokio::net::TcpStream;
use tokio_util::compat::TokioAsyncWriteCompatExt;

use crate::backend::{PASSWORD, TestBackend, WINDOWS_PASSWORD, WINDOWS_USER};
use crate::{Server, within};

/// The name the server's certificate is issued to (besides 127.0.0.1 and localhost).
const CERT_HOST: &str = "atl-sql-001.litwareinc.com";

/// A CA and a server certificate it issued, with the CA written where clients can read it.
struct Pki {
    _dir: tempfile::TempDir,
    ca_file: PathBuf,
    chain: Vec<Vec<u8>>,
    key: Vec<u8>,
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

impl Pki {
    fn new() -> Pki {
        let ca = ca("test CA");
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec![
            CERT_HOST.to_owned(),
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
        ])
        .unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, CERT_HOST);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&key, &ca).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca.pem()).unwrap();
        Pki {
            _dir: dir,
            ca_file,
            chain: vec![cert.der().to_vec()],
            key: key.serialize_der(),
        }
    }

    fn security(&self, encryption: Encryption) -> Security {
        Security::new(encryption, self.chain.clone(), self.key.clone()).unwrap()
    }

    /// A CA file of another CA, which did not issue the server's certificate.
    fn other_ca_file(&self) -> PathBuf {
        let path = self._dir.path().join("other-ca.pem");
        std::fs::write(&path, ca("another CA").pem()).unwrap();
        path
    }
}

/// tiberius's configuration for the server, checking the certificate against `ca_file` for the
/// name `CERT_HOST` (the TCP connection goes to 127.0.0.1).
fn config(server: &Server, level: EncryptionLevel, ca_file: &std::path::Path) -> Config {
    let mut config = Config::new();
    config.host("127.0.0.1");
    config.port(server.addr.port());
    config.authentication(AuthMethod::sql_server("sa", PASSWORD));
    config.encryption(level);
    config.trust_cert_ca(ca_file.display().to_string());
    config.hostname_in_certificate(CERT_HOST);
    config.command_timeout(Some(Duration::from_secs(5)));
    config
}

async fn select_one(config: Config, server: &Server) -> tiberius::Result<i32> {
    let tcp = TcpStream::connect(server.addr).await?;
    let mut client = Client::connect(config, tcp.compat_write()).await?;
    let row = client
        .simple_query("SELECT 1")
        .await?
        .into_row()
        .await?
        .expect("a row");
    Ok(row.get::<i32, _>(0).expect("an int"))
}

#[tokio::test]
async fn a_client_requiring_encryption_logs_in_over_tls_inside_prelogin() {
    let pki = Pki::new();
    let server =
        Server::start_secured(TestBackend::new(), pki.security(Encryption::Required)).await;
    for level in [
        EncryptionLevel::Off,
        EncryptionLevel::On,
        EncryptionLevel::Required,
    ] {
        let got = within(
            "login",
            select_one(config(&server, level, &pki.ca_file), &server),
        )
        .await;
        assert_eq!(got.unwrap(), 1, "{level:?}");
    }
    let batches = server.backend.transcript();
    let batches: Vec<_> = batches.iter().filter(|l| l.starts_with("batch")).collect();
    assert_eq!(batches, ["batch SELECT 1"; 3]);
}

#[tokio::test]
async fn a_strict_client_speaks_tds_8_to_an_instance_that_forces_encryption_or_strictness() {
    let pki = Pki::new();
    for encryption in [Encryption::Required, Encryption::Strict] {
        let server = Server::start_secured(TestBackend::new(), pki.security(encryption)).await;
        let config = config(&server, EncryptionLevel::Strict, &pki.ca_file);
        let got = within("login", select_one(config, &server)).await;
        assert_eq!(got.unwrap(), 1, "{encryption:?}");
    }
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_rejected_and_nothing_reaches_the_server() {
    let pki = Pki::new();
    let server =
        Server::start_secured(TestBackend::new(), pki.security(Encryption::Required)).await;
    for level in [EncryptionLevel::Required, EncryptionLevel::Strict] {
        let config = config(&server, level, &pki.other_ca_file());
        let err = within("login", select_one(config, &server))
            .await
            .expect_err("an unknown issuer must be refused");
        assert!(err.to_string().contains("certificate"), "{level:?}: {err}");
    }
    assert!(server.backend.transcript().is_empty());
}

#[tokio::test]
async fn a_certificate_for_another_name_is_rejected() {
    let pki = Pki::new();
    let server =
        Server::start_secured(TestBackend::new(), pki.security(Encryption::Required)).await;
    let mut config = config(&server, EncryptionLevel::Required, &pki.ca_file);
    config.hostname_in_certificate("dal-sql-001.litwareinc.com");
    let err = within("login", select_one(config, &server))
        .await
        .expect_err("a name mismatch must be refused");
    assert!(err.to_string().contains("certificate"), "{err}");
}

#[tokio::test]
async fn a_plaintext_client_is_refused_where_encryption_is_forced_and_a_tds7_client_where_strict() {
    let pki = Pki::new();
    let server =
        Server::start_secured(TestBackend::new(), pki.security(Encryption::Required)).await;
    let plaintext = config(&server, EncryptionLevel::NotSupported, &pki.ca_file);
    within("login", select_one(plaintext, &server))
        .await
        .expect_err("plaintext must be refused");

    let strict = Server::start_secured(TestBackend::new(), pki.security(Encryption::Strict)).await;
    let tds7 = config(&strict, EncryptionLevel::Required, &pki.ca_file);
    within("login", select_one(tds7, &strict))
        .await
        .expect_err("TDS 7.x must be refused by a strict instance");
    assert!(server.backend.transcript().is_empty() && strict.backend.transcript().is_empty());
}

fn windows_config(server: &Server, user: &str, password: &str, pki: &Pki) -> Config {
    let mut config = config(server, EncryptionLevel::Required, &pki.ca_file);
    config.authentication(AuthMethod::windows(user, password));
    config
}

#[tokio::test]
async fn a_windows_login_with_the_accounts_password_is_verified_through_ntlm() {
    let pki = Pki::new();
    let server =
        Server::start_secured(TestBackend::new(), pki.security(Encryption::Required)).await;
    let ok = windows_config(&server, WINDOWS_USER, WINDOWS_PASSWORD, &pki);
    assert_eq!(within("login", select_one(ok, &server)).await.unwrap(), 1);

    let cases = [
        (WINDOWS_USER, "wrong"),
        ("LITWAREINC\\someone", WINDOWS_PASSWORD),
        ("OTHERDOMAIN\\pcfail", WINDOWS_PASSWORD),
    ];
    for (user, password) in cases {
        let err = within(
            "login",
            select_one(windows_config(&server, user, password, &pki), &server),
        )
        .await
        .expect_err("must be refused");
        match err {
            tiberius::error::Error::Server(t) => assert_eq!(t.code(), 18452, "{user}"),
            other => panic!("{user}: expected 18452, got {other}"),
        }
    }
    let batches = server.backend.transcript();
    let batches: Vec<_> = batches.iter().filter(|l| l.starts_with("batch")).collect();
    assert_eq!(
        batches,
        ["batch SELECT 1"],
        "only the verified login ran anything"
    );
}

#[tokio::test]
async fn tsql_logs_in_over_tls_where_encryption_is_forced() {
    let pki = Pki::new();
    let server =
        Server::start_secured(TestBackend::new(), pki.security(Encryption::Required)).await;
    for tdsver in [None, Some("7.4")] {
        let out = crate::freetds::tsql(&server, PASSWORD, "SELECT 1\ngo\nexit\n", tdsver).await;
        let lines: Vec<&str> = out.stdout.lines().map(str::trim).collect();
        assert!(
            lines.contains(&"1"),
            "TDSVER={tdsver:?}:\n{}\n{}",
            out.stdout,
            out.stderr
        );
    }
}
