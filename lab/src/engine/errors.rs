//! The SQL Server error catalog the lab speaks: numbers, severities (classes) and message templates
//! exactly as sys.messages holds them (reference B.4, D, E.5, A.2), and [`SqlError`], one rendered error.
//!
//! Templates keep SQL Server's placeholders (`%ls`, `%.*ls`, `%d`, `%hs`, `%s`, `%I64d`); [`SqlError::new`]
//! substitutes the arguments in order, as RAISERROR does. Fidelity matters more than tidiness here:
//! pcfail decides by number, and operators read the text.

/// One error (or informational message) as the server would send it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("Msg {number}, Level {class}, State {state}: {text}")]
pub(crate) struct SqlError {
    pub number: u32,
    pub class: u8,
    pub state: u8,
    pub text: String,
    /// The stored procedure that raised it, empty for a batch.
    pub procedure: String,
}

/// The number of the lab's "does not model" error: in the range SQL Server leaves to user-defined
/// messages (above 50000) and used by no SQL Server component.
pub(crate) const NOT_MODELLED: u32 = 59_999;

/// (number, class, template).
const CATALOG: &[(u32, u8, &str)] = &[
    (102, 15, "Incorrect syntax near '%.*ls'."),
    (
        105,
        15,
        "Unclosed quotation mark after the character string '%.*ls'.",
    ),
    (
        134,
        15,
        "The variable name '%.*ls' has already been declared. Variable names must be unique within a query batch or stored procedure.",
    ),
    (137, 15, "Must declare the scalar variable \"%.*ls\"."),
    (156, 15, "Incorrect syntax near the keyword '%.*ls'."),
    // sys.messages: "'%.*ls' is not a recognized %S_MSG."; the caller passes the rendered %S_MSG.
    (195, 15, "'%.*ls' is not a recognized %ls."),
    (
        201,
        16,
        "Procedure or function '%.*ls' expects parameter '%.*ls', which was not supplied.",
    ),
    (207, 16, "Invalid column name '%.*ls'."),
    (208, 16, "Invalid object name '%.*ls'."),
    (209, 16, "Ambiguous column name '%.*ls'."),
    (
        245,
        16,
        "Conversion failed when converting the %ls value '%.*ls' to data type %ls.",
    ),
    (
        911,
        16,
        "Database '%.*ls' does not exist. Make sure that the name is entered correctly.",
    ),
    (
        927,
        14,
        "Database '%.*ls' cannot be opened. It is in the middle of a restore.",
    ),
    (
        1223,
        16,
        "Cannot release the application lock (Database Principal: '%.*ls', Resource: '%.*ls') because it is not currently held.",
    ),
    (
        1404,
        16,
        "The command failed because the database mirror is busy. Reissue the command later.",
    ),
    (
        1405,
        16,
        "The database \"%.*ls\" is already enabled for database mirroring.",
    ),
    (
        1412,
        16,
        "The remote copy of database \"%.*ls\" has not been rolled forward to a point in time that is encompassed in the local copy of the database log.",
    ),
    (
        1416,
        16,
        "Database \"%.*ls\" is not configured for database mirroring.",
    ),
    (
        1418,
        16,
        "The server network address \"%.*ls\" can not be reached or does not exist. Check the network address name and that the ports for the local and remote endpoints are operational.",
    ),
    (
        1419,
        16,
        "The remote copy of database \"%.*ls\" cannot be opened. Check the database name and ensure that it is in the restoring state, and then reissue the command.",
    ),
    (
        1447,
        16,
        "ALTER DATABASE \"%.*ls\" command cannot be executed until both partner server instances are up, running, and connected. Start the partner and reissue the command.",
    ),
    (
        1449,
        16,
        "ALTER DATABASE command failed due to an invalid server connection string.",
    ),
    (
        1452,
        16,
        "The partner server instance name must be distinct from the server instance that manages the database. The ALTER DATABASE SET PARTNER command failed.",
    ),
    (
        1464,
        16,
        "Database mirroring cannot be enabled for the remote copy of database \"%.*ls\" because the database is not in a recovering state. The remote database must be restored using WITH NORECOVERY.",
    ),
    (
        1465,
        16,
        "Database mirroring cannot be enabled because the \"%.*ls\" database is not in full recovery mode on both partners.",
    ),
    (
        1468,
        16,
        "The operation cannot be performed on database \"%.*ls\" because it is involved in a database mirroring session.",
    ),
    // 1486's text is SQL Server's; that it is what a mirror-side SET PARTNER without a STARTED
    // local endpoint raises is UNVERIFIED (variant `partner_without_endpoint`).
    (
        1486,
        16,
        "Database Mirroring Transport is disabled in the endpoint configuration.",
    ),
    (
        1477,
        16,
        "The database mirroring safety level must be FULL to manually failover database \"%.*ls\". Set safety level to FULL and retry.",
    ),
    (
        1478,
        16,
        "The mirror database, \"%.*ls\", has insufficient transaction log data to preserve the log backup chain of the principal database. This may happen if a log backup from the principal database has not been taken or has not been restored on the mirror database.",
    ),
    (
        2715,
        16,
        "Column, parameter, or variable #%d: Cannot find data type %.*ls.",
    ),
    (2812, 16, "Could not find stored procedure '%.*ls'."),
    (
        3902,
        16,
        "The COMMIT TRANSACTION request has no corresponding BEGIN TRANSACTION.",
    ),
    (
        3903,
        16,
        "The ROLLBACK TRANSACTION request has no corresponding BEGIN TRANSACTION.",
    ),
    (3013, 16, "%hs is terminating abnormally."),
    // 3031's number is in the 3000-3999 catalog; the English wording is SQL Server 2016's (the
    // argument order for RESTORE ... NORECOVERY, STANDBY is UNVERIFIED).
    (
        3031,
        16,
        "Option '%ls' conflicts with option(s) '%ls'. Remove the conflicting option and reissue the statement.",
    ),
    (
        3014,
        10,
        "%hs successfully processed %I64d pages in %d.%03d seconds (%d.%03d MB/sec).",
    ),
    (
        3021,
        16,
        "Cannot perform a backup or restore operation within a transaction.",
    ),
    (
        3036,
        16,
        "The database \"%ls\" is in warm-standby state (set by executing RESTORE WITH STANDBY) and cannot be backed up until the entire restore sequence is completed.",
    ),
    (
        3101,
        16,
        "Exclusive access could not be obtained because the database is in use.",
    ),
    (
        3102,
        16,
        "%ls cannot process database '%ls' because it is in use by this session. It is recommended that the master database be used when performing this operation.",
    ),
    (
        3104,
        16,
        "RESTORE cannot operate on database '%ls' because it is configured for database mirroring. Use ALTER DATABASE to remove mirroring if you intend to restore the database.",
    ),
    (
        3117,
        16,
        "The log or differential backup cannot be restored because no files are ready to rollforward.",
    ),
    (
        3118,
        16,
        "The database \"%ls\" does not exist. RESTORE can only create a database when restoring either a full backup or a file backup of the primary file.",
    ),
    // 3135's wording is from memory (UNVERIFIED); the lab raises it when FILE = n names a set of the wrong kind.
    (
        3135,
        16,
        "The backup set in file '%ls' was created by %hs and cannot be used for this restore operation.",
    ),
    (3153, 16, "The database is already fully recovered."),
    (
        3154,
        16,
        "The backup set holds a backup of a database other than the existing '%ls' database.",
    ),
    (
        3159,
        16,
        "The tail of the log for the database \"%ls\" has not been backed up. Use BACKUP LOG WITH NORECOVERY to backup the log if it contains work you do not want to lose. Use the WITH REPLACE or WITH STOPAT clause of the RESTORE statement to just overwrite the contents of the log.",
    ),
    (3262, 10, "The backup set on file %d is valid."),
    // 3189 and 3183: the catalog texts (sql-docs errors 3000-3999 include); which of them VERIFYONLY
    // raises for a damaged set, and with which placeholders filled, is UNVERIFIED.
    (3189, 16, "Damage to the backup set was detected."),
    (
        3187,
        16,
        "RESTORE WITH CHECKSUM cannot be specified because the backup set does not contain checksum information.",
    ),
    (
        3183,
        16,
        "RESTORE detected an error on page (%d:%d) in database \"%ls\" as read from the backup set.",
    ),
    (
        3201,
        16,
        "Cannot open backup device '%ls'. Operating system error %ls.",
    ),
    (
        3234,
        16,
        "Logical file '%.*ls' is not part of database '%ls'. Use RESTORE FILELISTONLY to list the logical file names.",
    ),
    // 3241's wording is from memory of SQL Server 2016 output (UNVERIFIED): the lab raises it for a
    // file that is not in the lab's backup format.
    (
        3241,
        16,
        "The media family on device '%ls' is incorrectly formed. SQL Server cannot process this media family.",
    ),
    // 4038 for FILE = n beyond the last backup set (UNVERIFIED mapping; text as SQL Server 2016 prints it).
    (4038, 16, "Cannot find file ID %d on device '%ls'."),
    (
        4035,
        10,
        "Processed %I64d pages for database '%ls', file '%ls' on file %d.",
    ),
    (
        4060,
        11,
        "Cannot open database \"%.*ls\" requested by the login. The login failed.",
    ),
    (
        4208,
        16,
        "The statement %hs is not allowed while the recovery model is SIMPLE. Use BACKUP DATABASE or change the recovery model using ALTER DATABASE.",
    ),
    (
        4214,
        16,
        "BACKUP LOG cannot be performed because there is no current database backup.",
    ),
    (
        4305,
        16,
        "The log in this backup set begins at LSN %.*ls, which is too recent to apply to the database. An earlier log backup that includes LSN %.*ls can be restored.",
    ),
    (
        4326,
        16,
        "The log in this backup set terminates at LSN %.*ls, which is too early to apply to the database. A more recent log backup that includes LSN %.*ls can be restored.",
    ),
    (
        4330,
        16,
        "This backup set cannot be applied because it is on a recovery path that is inconsistent with the database. The recovery path is the sequence of data and log backups that have brought the database to a particular recovery point. Find a compatible backup to restore, or restore the rest of the database to match a recovery point within this backup set, which will restore the database to a different point in time. For more information about recovery paths, see SQL Server Books Online.",
    ),
    (
        5011,
        14,
        "User does not have permission to alter database '%.*ls', the database does not exist, or the database is not in a state that allows access checks.",
    ),
    (5069, 16, "ALTER DATABASE statement failed."),
    (5701, 10, "Changed database context to '%.*ls'."),
    (
        6101,
        16,
        "Process ID %d is not a valid process ID. Choose a number between 1 and %d.",
    ),
    (6104, 16, "Cannot use KILL to kill your own process."),
    (6106, 16, "Process ID %d is not an active process ID."),
    (6107, 14, "Only user processes can be killed."),
    (
        6115,
        16,
        "KILL command cannot be used inside user transactions.",
    ),
    // 7862's wording is UNVERIFIED (from memory); the rule "one mirroring endpoint per instance" is verified (E.1).
    (
        7862,
        16,
        "An endpoint of the requested type already exists.  Only one endpoint of this type is supported.  Use ALTER ENDPOINT or DROP the existing endpoint and execute the CREATE ENDPOINT command.",
    ),
    (8145, 16, "%.*ls is not a parameter for procedure %.*ls."),
    (14243, 0, "Job '%s' started successfully."),
    (14262, 16, "The specified %s ('%s') does not exist."),
    // Reference J.4: sp_add_schedule allows duplicate names; attaching by such a name is ambiguous.
    (
        14371,
        16,
        "There are two or more schedules named \"%s\". Specify %s instead of %s to uniquely identify the schedule.",
    ),
    (
        15010,
        16,
        "The database '%s' does not exist. Supply a valid database name. To see available databases, use sys.databases.",
    ),
    (
        5133,
        16,
        "Directory lookup for the file \"%.*ls\" failed with the operating system error %ls.",
    ),
    (
        3156,
        16,
        "File '%ls' cannot be restored to '%ls'. Use WITH MOVE to identify a valid location for the file.",
    ),
    (
        3119,
        16,
        "Problems were identified while planning for the RESTORE statement. Previous messages provide details.",
    ),
    (15025, 16, "The server principal '%.*ls' already exists."),
    // sys.messages: "Cannot %S_MSG the %S_MSG '%.*ls', ..."; callers pass the rendered %S_MSG words.
    (
        15151,
        16,
        "Cannot %ls the %ls '%.*ls', because it does not exist or you do not have permission.",
    ),
    (
        17187,
        16,
        "SQL Server is not ready to accept new client connections. Wait a few minutes before trying again. If you have access to the error log, look for the informational message that indicates that SQL Server is ready before trying again.",
    ),
    (18456, 14, "Login failed for user '%.*ls'."),
    (
        32009,
        16,
        "A log shipping primary entry already exists for database %s.",
    ),
    (
        32010,
        16,
        "Database %s does not exist as log shipping primary.",
    ),
    (
        32011,
        16,
        "Primary Database %s has active log shipping secondary database(s). Drop the secondary database(s) first.",
    ),
    (32012, 16, "Secondary %s.%s already exists for primary %s."),
    (
        32013,
        16,
        "A log shipping entry already exists for secondary database %s.",
    ),
    (
        32014,
        16,
        "Database %s does not exist as log shipping secondary.",
    ),
    (
        32015,
        16,
        "The primary database %s cannot have SIMPLE recovery for log shipping to work properly.",
    ),
    (
        32022,
        16,
        "Cannot add a log shipping job with name %s. A job with same name already exists in the system and this job does not belong to log shipping category.",
    ),
    (
        32023,
        16,
        "An entry for primary server %s, primary database %s does not exist on this secondary. Register the primary first.",
    ),
    (
        32024,
        16,
        "An entry for primary server %s, primary database %s already exists.",
    ),
    (
        32025,
        16,
        "Primary Server %s, Database %s has active log shipping secondary database(s) on the secondary. Drop the secondary database(s) first.",
    ),
    (
        32029,
        10,
        "Log shipping backup agent [%s] has verified log backup file '%s.wrk' and renamed it as '%s.trn'. This is an informational message only. No user action is required.",
    ),
];

impl SqlError {
    /// The catalog error `number` with its placeholders filled from `args`, in order. A number the
    /// catalog lacks (only reachable through faults.json) still goes out, as a class 16 error.
    pub(crate) fn new(number: u32, args: &[&str]) -> SqlError {
        let (class, text) = match CATALOG.iter().find(|(n, _, _)| *n == number) {
            Some(&(_, class, template)) => (class, render(template, args)),
            None => (
                16,
                format!("Error {number} injected by the lab (not in the lab's catalog)."),
            ),
        };
        SqlError {
            number,
            class,
            state: 1,
            text,
            procedure: String::new(),
        }
    }

    /// 3013, which follows every failed BACKUP/RESTORE, e.g. "RESTORE LOG is terminating abnormally.".
    pub(crate) fn terminating(operation: &str) -> SqlError {
        SqlError::new(3013, &[operation])
    }

    /// The lab's one error for what it does not model: never a SQL Server number, so nobody mistakes
    /// the lab's limit for SQL Server's behaviour (docs/lab.md).
    pub(crate) fn not_modelled(what: &str) -> SqlError {
        SqlError {
            number: NOT_MODELLED,
            class: 16,
            state: 1,
            text: format!("the lab does not model: {what}"),
            procedure: String::new(),
        }
    }

    pub(crate) fn syntax(near: &str) -> SqlError {
        SqlError::new(102, &[near])
    }

    pub(crate) fn in_proc(mut self, procedure: &str) -> SqlError {
        self.procedure = procedure.to_owned();
        self
    }

    pub(crate) fn is_info(&self) -> bool {
        self.class <= 10
    }

    /// Whether the error ends the whole batch rather than only its statement. SQL Server aborts the
    /// batch for a name it cannot resolve when the statement runs (208 "Invalid object name", a
    /// database `USE` cannot open, 911/927) and for conversion errors (245); columns it cannot bind
    /// (207, 209, 4104) are compile errors on SQL Server, which the lab only finds when the statement
    /// runs, so it ends the batch there. Everything else the lab raises (BACKUP/RESTORE's 3013
    /// family, KILL's, mirroring's, a missing procedure's 2812) ends only its statement.
    pub(crate) fn aborts_batch(&self) -> bool {
        matches!(self.number, 207 | 208 | 209 | 245 | 911 | 927 | 4104)
    }
}

/// Whether the catalog knows `number` (faults.json rules may name any number).
#[cfg(test)]
pub(crate) fn known(number: u32) -> bool {
    CATALOG.iter().any(|(n, _, _)| *n == number)
}

/// Substitutes sys.messages placeholders in order; a missing argument renders empty, as RAISERROR does.
fn render(template: &str, args: &[&str]) -> String {
    const PLACEHOLDERS: [&str; 7] = ["%.*ls", "%I64d", "%03d", "%ls", "%hs", "%d", "%s"];
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    let mut next_arg = args.iter();
    while let Some(pos) = rest.find('%') {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos..];
        match PLACEHOLDERS.iter().find(|p| tail.starts_with(**p)) {
            Some(p) => {
                out.push_str(next_arg.next().copied().unwrap_or(""));
                rest = &tail[p.len()..];
            }
            None => {
                out.push('%');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_render_their_catalog_text() {
        let cases: [(u32, &[&str], u8, &str); 6] = [
            (
                3013,
                &["RESTORE LOG"],
                16,
                "RESTORE LOG is terminating abnormally.",
            ),
            (102, &["FROMM"], 15, "Incorrect syntax near 'FROMM'."),
            (
                6106,
                &["57"],
                16,
                "Process ID 57 is not an active process ID.",
            ),
            (
                4305,
                &["34000000020000001", "34000000016800001"],
                16,
                "The log in this backup set begins at LSN 34000000020000001, which is too recent to apply to the database. An earlier log backup that includes LSN 34000000016800001 can be restored.",
            ),
            (
                3014,
                &["RESTORE LOG", "12", "0", "004", "23", "437"],
                10,
                "RESTORE LOG successfully processed 12 pages in 0.004 seconds (23.437 MB/sec).",
            ),
            (
                32014,
                &["mgc"],
                16,
                "Database mgc does not exist as log shipping secondary.",
            ),
        ];
        for (number, args, class, text) in cases {
            let e = SqlError::new(number, args);
            assert_eq!((e.number, e.class, e.text.as_str()), (number, class, text));
        }
    }

    #[test]
    fn unknown_numbers_still_produce_an_error() {
        assert!(!known(99999));
        let e = SqlError::new(99999, &[]);
        assert_eq!((e.number, e.class), (99999, 16));
        assert!(!e.is_info());
    }
}
