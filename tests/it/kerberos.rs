//! Kerberos for `auth = "integrated"` on Linux and macOS (the `kerberos` feature), against a
//! throwaway MIT KDC on loopback (Debian: krb5-kdc, krb5-admin-server, krb5-user) and the lab.
//!
//! The lab holds no Kerberos service keys, so no login completes: what is proved is pcfail's
//! side. It asks the KDC for the SPN SQL Server registers, `MSSQLSvc/host:<TCP port>` (also for a
//! named instance found through SQL Browser, whose UDP port tiberius would otherwise put there),
//! sends the ticket in LOGIN7, and reports the server's refusal (18452) as a refusal; an instance
//! whose SPN the KDC does not know is a configuration problem, not an outage.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pcfail_lab::Role;
use serde_json::Value;

use crate::lab_support::{LabRig, RestoreJob, assert_exit, text};

const REALM: &str = "LITWAREINC.TEST";

/// A KDC of its own, stopped when dropped.
struct Kdc {
    dir: tempfile::TempDir,
    child: Child,
}

impl Drop for Kdc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tool(name: &str) -> PathBuf {
    ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("`{name}` (MIT Kerberos: krb5-kdc, krb5-admin-server, krb5-user) is installed")
        })
}

impl Kdc {
    fn start() -> Kdc {
        let dir = tempfile::tempdir().unwrap();
        // A free port for the KDC (TCP only: `udp_preference_limit = 1` keeps clients off UDP).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let d = dir.path().display();
        std::fs::write(
            dir.path().join("krb5.conf"),
            format!(
                "[libdefaults]\n default_realm = {REALM}\n dns_lookup_realm = false\n dns_lookup_kdc = false\n rdns = false\n dns_canonicalize_hostname = false\n udp_preference_limit = 1\n[realms]\n {REALM} = {{\n  kdc = 127.0.0.1:{port}\n }}\n"
            ),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("kdc.conf"),
            format!(
                "[kdcdefaults]\n kdc_ports = {port}\n kdc_tcp_ports = {port}\n[realms]\n {REALM} = {{\n  database_name = {d}/principal\n  key_stash_file = {d}/stash\n  acl_file = {d}/kadm5.acl\n }}\n"
            ),
        )
        .unwrap();
        let mut kdc = Kdc {
            child: Command::new("true").spawn().unwrap(),
            dir,
        };
        kdc.run(
            &tool("kdb5_util"),
            &["create", "-s", "-r", REALM, "-P", "master"],
        );
        kdc.add(&["-pw", "ticket-password", "pcfail-admin"]);
        kdc.child = kdc
            .command(&tool("krb5kdc"))
            .args(["-n", "-r", REALM])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start krb5kdc");
        // kinit until the KDC listens.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mut child = kdc
                .command(&tool("kinit"))
                .arg("pcfail-admin")
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("kinit");
            use std::io::Write;
            let _ = writeln!(child.stdin.take().unwrap(), "ticket-password");
            if child.wait().unwrap().success() {
                return kdc;
            }
            assert!(Instant::now() < deadline, "the KDC never issued a ticket");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn env(&self) -> [(&'static str, String); 3] {
        let d = self.dir.path();
        [
            ("KRB5_CONFIG", d.join("krb5.conf").display().to_string()),
            ("KRB5_KDC_PROFILE", d.join("kdc.conf").display().to_string()),
            ("KRB5CCNAME", format!("FILE:{}", d.join("cc").display())),
        ]
    }

    fn command(&self, program: &Path) -> Command {
        let mut command = Command::new(program);
        command.envs(self.env());
        command
    }

    fn run(&self, program: &Path, args: &[&str]) -> String {
        let out = self.command(program).args(args).output().expect("run");
        assert!(
            out.status.success(),
            "{program:?} {args:?}: {}",
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// `kadmin.local addprinc ARGS`.
    fn add(&self, args: &[&str]) {
        let query = format!("addprinc {}", args.join(" "));
        self.run(&tool("kadmin.local"), &["-q", &query]);
    }
}

#[test]
fn integrated_authentication_asks_kerberos_for_the_instances_tcp_port_spn_and_reports_the_refusal()
{
    let kdc = Kdc::start();
    let rig = LabRig::start(RestoreJob::Default);
    let backup = rig.manifest().instance(Role::Backup).unwrap().address;
    let spn = format!("MSSQLSvc/127.0.0.1:{}", backup.port());
    // Only the backup instance has its SPN registered.
    kdc.add(&["-randkey", &spn]);
    rig.edit_runbook("auth = \"sql\"", "auth = \"integrated\"");
    rig.edit_runbook("user = \"sa\"\n", "");
    let password_env = format!("password_env = \"{}\"\n", rig.manifest().login.password_env);
    rig.edit_runbook(&password_env, "");
    assert_exit(&rig.pcfail(&["validate"]), 0);

    let env = kdc.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let output = rig.pcfail_with_env(&["status", "--live", "--format", "json"], &env);
    assert_exit(&output, 0);
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    for instance in report["instances"].as_array().unwrap() {
        let role = instance["role"].as_str().unwrap();
        let error = instance["error"].as_str().unwrap_or_default();
        if role == "backup" {
            assert!(error.contains("18452"), "`{role}`: {error}");
        } else {
            // The principal the KDC was asked for: the instance's TCP port, not its Browser's.
            let port = rig
                .manifest()
                .instance(pcfail_lab::parse_role(role).unwrap())
                .unwrap()
                .address
                .port();
            assert!(
                error.contains(&format!(
                    "MSSQLSvc/127.0.0.1:{port}@{REALM} not found in Kerberos database"
                )),
                "`{role}`: {error}"
            );
            assert_eq!(instance["cause"], "configuration", "{instance:#}");
        }
    }
    let tickets = kdc.run(&tool("klist"), &[]);
    assert!(tickets.contains(&format!("{spn}@{REALM}")), "{tickets}");
}
