//! Conversions of lab time to what SQL Server shows: `datetime` values and backup file-name stamps.
//!
//! The lab treats the server's local time zone as UTC (backupset.time_zone = 0), so file names (UTC by
//! log-shipping convention, reference A.4) and dates agree.

use pcfail_lab_tds::Value;

use super::LabTime;

const MS_PER_DAY: i64 = 86_400_000;
/// Days from 1900-01-01 (datetime's epoch) to 1970-01-01.
const DAYS_1900_TO_1970: i64 = 25_567;

pub(crate) fn datetime(t: LabTime) -> Value {
    let days = t.0.div_euclid(MS_PER_DAY);
    let ms = t.0.rem_euclid(MS_PER_DAY);
    Value::DateTime {
        days: (days + DAYS_1900_TO_1970) as i32,
        ticks: (ms * 300 / 1000) as u32,
    }
}

/// (year, month, day, hour, minute, second) in UTC.
pub(crate) fn civil(t: LabTime) -> (i64, u32, u32, u32, u32, u32) {
    let days = t.0.div_euclid(MS_PER_DAY);
    let secs = t.0.rem_euclid(MS_PER_DAY) / 1000;
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        m,
        d,
        (secs / 3600) as u32,
        (secs / 60 % 60) as u32,
        (secs % 60) as u32,
    )
}

/// `yyyymmddhhmmss`, as log-shipping backup files are named.
pub(crate) fn stamp(t: LabTime) -> String {
    let (y, mo, d, h, mi, s) = civil(t);
    format!("{y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}")
}

/// `yyyymmdd` as an int, the way msdb schedules store dates.
pub(crate) fn date_int(t: LabTime) -> i64 {
    let (y, mo, d, ..) = civil(t);
    y * 10_000 + i64::from(mo) * 100 + i64::from(d)
}

/// `yyyy-mm-dd hh:mm:ss.mmm`, how SSMS shows a datetime; used in text output (sp_who2, status).
pub(crate) fn display(t: LabTime) -> String {
    let (y, mo, d, h, mi, s) = civil(t);
    format!(
        "{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{:03}",
        t.0.rem_euclid(1000)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lab_time_converts_to_sql_server_dates() {
        // 2024-03-01 12:34:56.000 UTC
        let t = LabTime(1_709_296_496_000);
        assert_eq!(stamp(t), "20240301123456");
        assert_eq!(date_int(t), 20240301);
        assert_eq!(display(t), "2024-03-01 12:34:56.000");
        assert_eq!(
            datetime(LabTime(0)),
            Value::DateTime {
                days: 25_567,
                ticks: 0
            }
        );
        assert_eq!(
            datetime(LabTime(1000)),
            Value::DateTime {
                days: 25_567,
                ticks: 300
            }
        );
    }
}
