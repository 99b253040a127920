//! A lab that looks like a real site (the default options): TLS required with certificates from the
//! lab's CA, named instances behind a SQL Browser per host, a Windows account in lab.json. FreeTDS
//! `tsql`, a client that shares nothing with the lab, logs in over TLS and checks the certificate
//! against the lab's CA file; SQL Browser answers SSRP for each host's instance.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use pcfail_lab::{Lab, LabOptions, Role};

const TSQL: &str = "/usr/bin/tsql";

async fn real_site_lab() -> (tempfile::TempDir, Lab) {
    let dir = tempfile::tempdir().expect("temp dir");
    let options = LabOptions {
        clock_speed: 600.0,
        tick_ms: 20,
        ..LabOptions::new(dir.path())
    };
    let lab = Lab::start(options).await.expect("lab starts");
    (dir, lab)
}

/// `tsql -S lab` with a freetds.conf that requires encryption and names `ca_file`; stdout+stderr.
fn tsql(dir: &std::path::Path, port: u16, ca_file: &std::path::Path, password: &str) -> String {
    assert!(
        std::path::Path::new(TSQL).exists(),
        "{TSQL} is missing: install the Debian package `freetds-bin` (CI installs it)"
    );
    let conf = dir.join(format!("freetds-{port}.conf"));
    std::fs::write(
        &conf,
        format!(
            "[lab]\n\thost = 127.0.0.1\n\tport = {port}\n\ttds version = 7.4\n\tencryption = require\n\tca file = {}\n",
            ca_file.display()
        ),
    )
    .unwrap();
    let mut child = Command::new(TSQL)
        .args(["-S", "lab", "-U", "sa", "-P", password])
        .env("FREETDSCONF", &conf)
        .env_remove("TDSVER")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tsql");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"SELECT name, state_desc FROM sys.databases\ngo\nexit\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tsql_logs_in_over_tls_with_the_certificate_checked_against_the_lab_ca() {
    let (dir, lab) = real_site_lab().await;
    let manifest = lab.manifest().clone();
    assert_eq!(manifest.encryption, "required");
    let ca = manifest.ca_file.clone().expect("a CA file");
    let password = manifest.login.password.clone();
    let port = manifest.instance(Role::Backup).unwrap().address.port();
    let work = dir.path().to_owned();
    let (ca2, pw2) = (ca.clone(), password.clone());
    let all = tokio::task::spawn_blocking(move || tsql(&work, port, &ca2, &pw2))
        .await
        .unwrap();
    assert!(all.contains("master") && all.contains("ONLINE"), "{all}");

    // Another CA's file: FreeTDS refuses the lab's certificate.
    let other = dir.path().join("not-the-ca.pem");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let other_ca = params
        .self_signed(&rcgen::KeyPair::generate().unwrap())
        .unwrap();
    std::fs::write(&other, other_ca.pem()).unwrap();
    let work = dir.path().to_owned();
    let all = tokio::task::spawn_blocking(move || tsql(&work, port, &other, &password))
        .await
        .unwrap();
    assert!(!all.contains("master"), "{all}");
    lab.shutdown().await.unwrap();
}

/// One SSRP request to a Browser, and its answer (None: no answer within a second).
async fn ssrp(browser: std::net::SocketAddr, request: &[u8]) -> Option<String> {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.send_to(request, browser).await.unwrap();
    let mut buf = [0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(1), socket.recv(&mut buf))
        .await
        .ok()?
        .unwrap();
    assert_eq!(buf[0], 0x05, "SVR_RESP");
    let size = u16::from_le_bytes([buf[1], buf[2]]) as usize;
    assert_eq!(size, n - 3);
    Some(String::from_utf8_lossy(&buf[3..n]).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_hosts_browser_names_its_instances_port_and_falls_silent_when_the_host_is_lost() {
    let (_dir, lab) = real_site_lab().await;
    let manifest = lab.manifest().clone();
    for instance in &manifest.instances {
        let browser = instance.browser.expect("a Browser");
        assert_eq!(instance.instance_name.as_deref(), Some("PCHAT"));
        let answer = ssrp(browser, b"\x04PCHAT").await.expect("an answer");
        assert_eq!(
            answer,
            format!(
                "ServerName;{};InstanceName;PCHAT;IsClustered;No;Version;13.0.5026.0;tcp;{};;",
                instance.name,
                instance.address.port()
            )
        );
        assert_eq!(ssrp(browser, b"\x04NOSUCH").await, None);
    }
    lab.disaster().await.unwrap();
    let primary = manifest.instance(Role::Primary).unwrap().browser.unwrap();
    assert_eq!(
        ssrp(primary, b"\x04PCHAT").await,
        None,
        "a lost host is silent"
    );
    let backup = manifest.instance(Role::Backup).unwrap().browser.unwrap();
    assert!(ssrp(backup, b"\x03").await.is_some());
    lab.shutdown().await.unwrap();
}
