//! Variants: the readings of the reference that are UNVERIFIED, each switchable per lab.
//!
//! Where nobody has checked what SQL Server (or the Management Shell) really does, the lab follows
//! the reference's current reading by default and lets a test choose another one
//! (`LabOptions::variants`, `pcfail lab up --variant NAME=VALUE`), so pcfail can be tested under
//! each reading instead of baking one guess into both the client and its oracle (STYLE.md: "spec
//! twice, code once"). Every variant names the reference line it comes from; docs/lab.md lists them.
//!
//! This module only knows names, values and defaults; each behaviour reads its variant where it
//! happens.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One switchable reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VariantSpec {
    pub name: &'static str,
    /// The allowed values; the first is the default (the reference's current reading).
    pub values: &'static [&'static str],
    /// Where in the reference the open question is.
    pub reference: &'static str,
    /// What the values mean.
    pub meaning: &'static str,
}

/// Every variant the lab knows, in the order docs/lab.md lists them.
pub const VARIANTS: &[VariantSpec] = &[
    VariantSpec {
        name: "tail_log_on_mirrored",
        values: &["1468", "allowed"],
        reference: "J.1 (tail-log backup of a database in a mirroring session: which error)",
        meaning: "BACKUP LOG ... WITH NORECOVERY on a mirrored database: refused with 1468 \"The \
                  operation cannot be performed on database ... because it is involved in a \
                  database mirroring session.\" (then 3013), or allowed (leaves it RESTORING)",
    },
    VariantSpec {
        name: "delete_secondary_not_configured",
        values: &["32014", "silent"],
        reference: "A.2 (sp_delete_log_shipping_secondary_database on a database that is not a secondary)",
        meaning: "raises 32014 \"Database %s does not exist as log shipping secondary.\", or \
                  returns 0 without an error",
    },
    VariantSpec {
        name: "trn_name_time",
        values: &["utc", "local"],
        reference: "A.4 (the timestamp in <db>_<yyyymmddhhmmss>.trn is UTC)",
        meaning: "log backup file names carry UTC, or the primary's local time (the lab's ATL \
                  servers run at UTC-05:00, without daylight saving)",
    },
    VariantSpec {
        name: "restore_job_order",
        values: &["name", "lsn"],
        reference: "A.4 (how the restore job chooses the next file)",
        meaning: "the log-shipping restore job takes copied files in file-name order, or in the \
                  order of their headers' FirstLSN",
    },
    VariantSpec {
        name: "restore_missing_database",
        values: &["3118", "911"],
        reference: "B.4 (RESTORE LOG / recovery-only RESTORE of a database that does not exist)",
        meaning: "3118 \"The database ... does not exist. RESTORE can only create a database ...\", \
                  or 911 \"Database ... does not exist.\" (each followed by 3013)",
    },
    VariantSpec {
        name: "restore_history_backupset",
        values: &["recorded", "absent"],
        reference: "B.5 (RESTORE inserts the backupset/backupmediafamily rows on the restoring server)",
        meaning: "a restore records the set it read in the restoring server's msdb.dbo.backupset \
                  and backupmediafamily, or only in restorehistory (whose backup_set_id then joins \
                  to nothing there)",
    },
    VariantSpec {
        name: "standby_read_only",
        values: &["1", "0"],
        reference: "C (whether sys.databases.is_read_only is 1 for a STANDBY database)",
        meaning: "a database restored WITH STANDBY reports is_read_only = 1, or 0",
    },
    VariantSpec {
        name: "bulk_logged_desc",
        values: &["BULK_LOGGED", "BULK-LOGGED"],
        reference: "C (sys.databases.recovery_model_desc spelling)",
        meaning: "sys.databases.recovery_model_desc for the bulk-logged model (DATABASEPROPERTYEX \
                  says BULK_LOGGED; backupset says BULK-LOGGED either way)",
    },
    VariantSpec {
        name: "sp_who2_types",
        values: &["nvarchar", "varchar"],
        reference: "D (sp_who2's column data types)",
        meaning: "sp_who2's 13 columns are nvarchar, or varchar",
    },
    VariantSpec {
        name: "mirroring_partner_name",
        values: &["address", "server"],
        reference: "E.4 (sys.database_mirroring.mirroring_partner_name)",
        meaning: "the partner's TCP:// endpoint address, or its server name (@@SERVERNAME)",
    },
    VariantSpec {
        name: "pool_identity",
        values: &["both", "service", "persistentchatserver"],
        reference: "H.1 (which -Identity forms Set-CsPersistentChatState accepts)",
        meaning: "the simulated shell accepts `service:<fqdn>` and `PersistentChatServer:<fqdn>`, \
                  or only the first, or only the second",
    },
    VariantSpec {
        name: "partner_without_endpoint",
        values: &["1486", "accepted"],
        reference: "E.2 step 3 / J.5 (endpoints STARTED on both partners: what the mirror side says)",
        meaning: "ALTER DATABASE ... SET PARTNER on the mirror while its own mirroring endpoint is \
                  missing or not STARTED: refused with 1486 \"Database Mirroring Transport is \
                  disabled in the endpoint configuration.\", or accepted (the principal then \
                  gets 1418)",
    },
];

/// The variants a lab runs with: only valid names and values, defaults for the rest.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Variants(BTreeMap<String, String>);

impl Variants {
    /// Checks `chosen` against [`VARIANTS`]; the error says which name or value is wrong and what
    /// would be right.
    pub fn new(chosen: &BTreeMap<String, String>) -> Result<Variants, String> {
        for (name, value) in chosen {
            let Some(spec) = spec(name) else {
                let known: Vec<&str> = VARIANTS.iter().map(|v| v.name).collect();
                return Err(format!(
                    "unknown lab variant `{name}`; the lab knows: {}",
                    known.join(", ")
                ));
            };
            if !spec.values.contains(&value.as_str()) {
                return Err(format!(
                    "lab variant `{name}` cannot be `{value}`; choose one of: {}",
                    spec.values.join(", ")
                ));
            }
        }
        Ok(Variants(chosen.clone()))
    }

    /// The value of variant `name`: the chosen one, or the default.
    pub(crate) fn get(&self, name: &str) -> &str {
        match self.0.get(name) {
            Some(v) => v,
            None => spec(name)
                .map(|s| s.values[0])
                .unwrap_or_else(|| panic!("no lab variant `{name}`")),
        }
    }

    /// Every variant with the value in force (what lab.json records).
    pub fn effective(&self) -> BTreeMap<String, String> {
        VARIANTS
            .iter()
            .map(|v| (v.name.to_owned(), self.get(v.name).to_owned()))
            .collect()
    }
}

fn spec(name: &str) -> Option<&'static VariantSpec> {
    VARIANTS.iter().find(|v| v.name == name)
}

/// Parses `NAME=VALUE` (the CLI's `--variant`).
pub fn parse_assignment(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => {
            Ok((name.trim().to_owned(), value.trim().to_owned()))
        }
        _ => Err(format!("expected NAME=VALUE, not `{text}`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_first_value_and_choices_are_checked() {
        let none = Variants::new(&BTreeMap::new()).unwrap();
        assert_eq!(none.get("tail_log_on_mirrored"), "1468");
        let chosen: BTreeMap<String, String> =
            [("tail_log_on_mirrored".to_owned(), "allowed".to_owned())].into();
        assert_eq!(
            Variants::new(&chosen).unwrap().get("tail_log_on_mirrored"),
            "allowed"
        );
        let bad_value: BTreeMap<String, String> =
            [("tail_log_on_mirrored".to_owned(), "maybe".to_owned())].into();
        assert_eq!(
            Variants::new(&bad_value).unwrap_err(),
            "lab variant `tail_log_on_mirrored` cannot be `maybe`; choose one of: 1468, allowed"
        );
        let bad_name: BTreeMap<String, String> = [("nope".to_owned(), "x".to_owned())].into();
        assert!(
            Variants::new(&bad_name)
                .unwrap_err()
                .starts_with("unknown lab variant `nope`; the lab knows: ")
        );
    }

    #[test]
    fn every_variant_has_a_default_a_reference_and_unique_name() {
        let mut names: Vec<&str> = VARIANTS.iter().map(|v| v.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), VARIANTS.len());
        for v in VARIANTS {
            assert!(v.values.len() >= 2, "{} has a choice", v.name);
            assert!(!v.reference.is_empty() && !v.meaning.is_empty());
        }
    }

    /// docs/lab.md lists every variant with its values, default first.
    #[test]
    fn docs_list_every_variant() {
        let docs = include_str!("../../../docs/lab.md");
        for v in VARIANTS {
            let values: Vec<String> = v.values.iter().map(|x| format!("`{x}`")).collect();
            let row = format!("| `{}` | {} |", v.name, values.join(", "));
            assert!(
                docs.contains(&row),
                "docs/lab.md lacks the row starting {row}"
            );
        }
    }

    #[test]
    fn assignments_parse_as_name_equals_value() {
        assert_eq!(
            parse_assignment("a=b"),
            Ok(("a".to_owned(), "b".to_owned()))
        );
        assert_eq!(
            parse_assignment("a"),
            Err("expected NAME=VALUE, not `a`".to_owned())
        );
    }
}
