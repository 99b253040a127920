//! Where a full restore puts a database's files. RESTORE puts each file where the backup says it was
//! unless `MOVE` says otherwise (reference J.3), so a backup taken on one instance and restored on
//! another whose directories differ fails with 5133/3156 before anything is written. This module
//! works out the `MOVE` options: each file whose directory is not the target instance's default data
//! (or, for the log, log) directory goes there, under its own file name.
//!
//! It reads only: `RESTORE FILELISTONLY` of the backup, on the instance that restores it, and that
//! instance's `SERVERPROPERTY('InstanceDefaultDataPath')` / `('InstanceDefaultLogPath')`.

use super::probe;
use super::session::{Session, StepError};
use crate::quote::sql_string;
use crate::runbook::Role;

/// The `, MOVE N'..' TO N'..'` options that restoring backup set `position` of `file` on `role` needs
/// (empty when none), read from the file itself. Says on the progress line what it moves.
pub(crate) async fn moves_for_backup(
    s: &mut Session<'_>,
    role: Role,
    file: &str,
    position: u32,
) -> Result<String, StepError> {
    let text = format!(
        "RESTORE FILELISTONLY FROM DISK = {} WITH FILE = {position}",
        sql_string(file)
    );
    let set = s.query(role, &text, &[]).await?;
    let files: Vec<(String, String, bool)> = set
        .rows
        .iter()
        .map(|row| {
            let text = |c: &str| set.get(row, c).as_str().unwrap_or_default().to_owned();
            (
                text("LogicalName"),
                text("PhysicalName"),
                text("Type").trim().eq_ignore_ascii_case("L"),
            )
        })
        .collect();
    let (Some(data), Some(log)) = probe::default_paths(s, role).await? else {
        return Ok(String::new());
    };
    let moves = relocations(&files, &data, &log);
    if !moves.is_empty() {
        s.progress(&format!(
            "the backup's files are not where `{role}` keeps its own: moving {} to its default directories",
            moves
                .iter()
                .map(|(logical, _)| format!("`{logical}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(options(&moves))
}

/// `, MOVE N'a' TO N'b'` for each move, in order.
pub(crate) fn options(moves: &[(String, String)]) -> String {
    moves
        .iter()
        .map(|(logical, to)| format!(", MOVE {} TO {}", sql_string(logical), sql_string(to)))
        .collect()
}

/// (logical name, new path) for each file whose directory is not `data` (rows) or `log` (the log):
/// the same file name in that directory. Windows paths compare without case; both separators count.
pub(crate) fn relocations(
    files: &[(String, String, bool)],
    data: &str,
    log: &str,
) -> Vec<(String, String)> {
    let trim = |p: &str| p.trim_end_matches(['\\', '/']).to_owned();
    files
        .iter()
        .filter_map(|(logical, physical, is_log)| {
            let dir = trim(if *is_log { log } else { data });
            let (parent, name) = physical.rsplit_once(['\\', '/']).unwrap_or(("", physical));
            (!parent.eq_ignore_ascii_case(&dir))
                .then(|| (logical.clone(), format!("{dir}\\{name}")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{options, relocations};

    #[test]
    fn files_move_only_where_their_directory_differs() {
        let files = |data: &str, log: &str| {
            vec![
                ("mgc".to_owned(), format!("{data}\\mgc.mdf"), false),
                ("mgc_log".to_owned(), format!("{log}\\mgc_log.ldf"), true),
            ]
        };
        // (the principal's files, the mirror's data and log directories, the moves expected)
        type Case = (
            Vec<(String, String, bool)>,
            &'static str,
            &'static str,
            Vec<(&'static str, &'static str)>,
        );
        let cases: &[Case] = &[
            // Same directories (any case, trailing backslash or not): nothing moves.
            (
                files("D:\\Data", "L:\\Log"),
                "d:\\data\\",
                "L:\\LOG\\",
                vec![],
            ),
            // Data elsewhere, log in place.
            (
                files("D:\\Data", "L:\\Log"),
                "E:\\SQLData\\",
                "L:\\Log\\",
                vec![("mgc", "E:\\SQLData\\mgc.mdf")],
            ),
            // Both elsewhere, to one directory.
            (
                files("D:\\Data", "D:\\Data"),
                "F:\\Db\\",
                "F:\\Db",
                vec![
                    ("mgc", "F:\\Db\\mgc.mdf"),
                    ("mgc_log", "F:\\Db\\mgc_log.ldf"),
                ],
            ),
        ];
        for (files, data, log, want) in cases {
            let got = relocations(files, data, log);
            let want: Vec<(String, String)> = want
                .iter()
                .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
                .collect();
            assert_eq!(got, want, "{data} {log}");
        }
    }

    #[test]
    fn moves_render_as_restore_options() {
        let moves = vec![("mgc".to_owned(), "E:\\It's\\mgc.mdf".to_owned())];
        assert_eq!(options(&moves), ", MOVE N'mgc' TO N'E:\\It''s\\mgc.mdf'");
        assert_eq!(options(&[]), "");
    }
}
