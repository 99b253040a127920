//! [`LabManifest`]: the parts of `<lab dir>/lab.json` the shell needs (topology, login, share).
//!
//! The format belongs to the `pcfail-lab` crate (docs/lab.md); this is the shell's own reading of it,
//! deliberately not shared code, and lenient about fields it does not use. It is re-read for every
//! request, so a lab restarted on new ports is picked up without restarting the shell.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;

#[derive(Clone, Debug, Deserialize)]
pub(crate) struct LabManifest {
    pub login: Login,
    pub pool: String,
    pub instances: Vec<Instance>,
    #[serde(default)]
    pub persistent_chat_servers: Vec<ChatServer>,
    #[serde(default)]
    pub active_servers: Vec<String>,
    /// The Front End servers that can run the Central Management Server's master.
    #[serde(default)]
    pub front_end_servers: Vec<ChatServer>,
    /// The lab variants in force (docs/lab.md); the shell reads the ones about cmdlets.
    #[serde(default)]
    pub variants: BTreeMap<String, String>,
    /// How the lab's instances treat encryption (`not_supported`, `required`, `strict`); absent in
    /// a lab.json from before TLS came to the lab, which means plaintext.
    #[serde(default)]
    pub encryption: Option<String>,
    /// The lab's Windows account (`DOMAIN\user` and its password), the one a remoting session
    /// with explicit credentials may log on as.
    #[serde(default)]
    pub windows_login: Option<Login>,
}

impl LabManifest {
    /// The value of lab variant `name`, if lab.json names it.
    pub(crate) fn variant(&self, name: &str) -> Option<&str> {
        self.variants.get(name).map(String::as_str)
    }
}

#[derive(Clone, Debug, Deserialize)]
pub(crate) struct Login {
    pub user: String,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub password_env: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub(crate) struct Instance {
    /// `primary`, `primary_mirror`, `backup` or `backup_mirror`.
    pub role: String,
    pub fqdn: String,
    /// `host:port` of the lab's TDS listener.
    pub address: String,
    /// The database mirroring endpoint, `TCP://fqdn:port`.
    pub endpoint: String,
    /// The FQDN of the instance the topology pairs with this one as its SQL mirror.
    #[serde(default)]
    pub mirror: Option<String>,
    #[serde(default)]
    pub data_center: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub(crate) struct ChatServer {
    pub fqdn: String,
    #[serde(default)]
    pub data_center: String,
}

#[derive(Debug, Error)]
pub(crate) enum ManifestError {
    #[error("cannot read the lab manifest `{path}`: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the lab manifest `{path}` is not valid: {source}")]
    Invalid {
        path: PathBuf,
        source: serde_json::Error,
    },
}

impl LabManifest {
    pub(crate) fn load(lab_dir: &Path) -> Result<Self, ManifestError> {
        let path = lab_dir.join("lab.json");
        let bytes = std::fs::read(&path).map_err(|source| ManifestError::Read {
            path: path.clone(),
            source,
        })?;
        serde_json::from_slice(&bytes).map_err(|source| ManifestError::Invalid { path, source })
    }

    /// The instance with this FQDN (case-insensitive, as DNS names are).
    pub(crate) fn instance_by_fqdn(&self, fqdn: &str) -> Option<&Instance> {
        self.instances
            .iter()
            .find(|i| i.fqdn.eq_ignore_ascii_case(fqdn.trim()))
    }

    pub(crate) fn instance_by_role(&self, role: &str) -> Option<&Instance> {
        self.instances.iter().find(|i| i.role == role)
    }

    /// The password: lab.json's own, else the environment variable it names.
    pub(crate) fn password(&self) -> String {
        if let Some(password) = &self.login.password {
            return password.clone();
        }
        self.login
            .password_env
            .as_deref()
            .and_then(|name| std::env::var(name).ok())
            .unwrap_or_default()
    }
}
