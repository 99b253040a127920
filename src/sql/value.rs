//! Rows as plain values: what the actions read from the server, independent of tiberius's types.
//!
//! Conversion is total (every tiberius column type maps to a [`Value`]) so that reading a catalog view
//! whose type differs from what we expected gives a clear mismatch in the action, not a panic inside
//! `Row::get`.

use tiberius::ColumnData;

/// One column value.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Value {
    Null,
    Int(i64),
    Bool(bool),
    Float(f64),
    Text(String),
    /// A scaled integer: `Numeric(v, s)` is v / 10^s. LSNs are numeric(25,0) and fit in i128.
    Numeric(i128, u8),
    /// `datetime`/`datetime2` rendered as `YYYY-MM-DD hh:mm:ss.fff` (server local time).
    DateTime(String),
    /// A uniqueidentifier in its usual text form.
    Guid(String),
    Bytes(Vec<u8>),
}

impl Value {
    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Value::Text(s) | Value::Guid(s) | Value::DateTime(s) => Some(s),
            _ => None,
        }
    }

    pub(crate) fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Bool(b) => Some(i64::from(*b)),
            Value::Numeric(v, 0) => i64::try_from(*v).ok(),
            _ => None,
        }
    }

    /// An integer-valued numeric (an LSN), or an integer.
    pub(crate) fn as_i128(&self) -> Option<i128> {
        match self {
            Value::Numeric(v, 0) => Some(*v),
            Value::Int(i) => Some(i128::from(*i)),
            _ => None,
        }
    }
}

/// One result set: column names and rows in order.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct ResultSet {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
}

impl ResultSet {
    pub(crate) fn from_rows(rows: Vec<tiberius::Row>) -> ResultSet {
        let columns = rows
            .first()
            .map(|r| r.columns().iter().map(|c| c.name().to_owned()).collect())
            .unwrap_or_default();
        let rows = rows
            .into_iter()
            .map(|row| row.into_iter().map(convert).collect())
            .collect();
        ResultSet { columns, rows }
    }

    /// The index of a column, compared case-insensitively as SQL Server compares names.
    pub(crate) fn column(&self, name: &str) -> Option<usize> {
        self.columns
            .iter()
            .position(|c| c.eq_ignore_ascii_case(name))
    }

    /// The value in `row` of column `name`, or Null when there is no such column.
    pub(crate) fn get<'a>(&'a self, row: &'a [Value], name: &str) -> &'a Value {
        const NULL: &Value = &Value::Null;
        self.column(name).and_then(|i| row.get(i)).unwrap_or(NULL)
    }
}

fn convert(data: ColumnData<'static>) -> Value {
    match data {
        ColumnData::U8(v) => v.map_or(Value::Null, |v| Value::Int(v.into())),
        ColumnData::I16(v) => v.map_or(Value::Null, |v| Value::Int(v.into())),
        ColumnData::I32(v) => v.map_or(Value::Null, |v| Value::Int(v.into())),
        ColumnData::I64(v) => v.map_or(Value::Null, Value::Int),
        ColumnData::F32(v) => v.map_or(Value::Null, |v| Value::Float(v.into())),
        ColumnData::F64(v) => v.map_or(Value::Null, Value::Float),
        ColumnData::Bit(v) => v.map_or(Value::Null, Value::Bool),
        ColumnData::String(v) => v.map_or(Value::Null, |s| Value::Text(s.into_owned())),
        ColumnData::Guid(v) => v.map_or(Value::Null, |g| Value::Guid(g.to_string().to_uppercase())),
        ColumnData::Binary(v) => v.map_or(Value::Null, |b| Value::Bytes(b.into_owned())),
        ColumnData::Numeric(v) => v.map_or(Value::Null, |n| Value::Numeric(n.value(), n.scale())),
        ColumnData::Xml(v) => v.map_or(Value::Null, |x| Value::Text(x.to_string())),
        ColumnData::DateTime(v) => v.map_or(Value::Null, |d| {
            // datetime: days since 1900-01-01 and 1/300 s ticks [MS-TDS 2.2.5.5.1.8].
            let millis = (u64::from(d.seconds_fragments()) * 10 + 1) / 3;
            Value::DateTime(render_datetime(i64::from(d.days()), millis))
        }),
        ColumnData::SmallDateTime(v) => v.map_or(Value::Null, |d| {
            Value::DateTime(render_datetime(
                i64::from(d.days()),
                u64::from(d.seconds_fragments()) * 60_000,
            ))
        }),
        // The remaining date/time types are not used by any catalog view pcfail reads; keep them
        // visible rather than silently dropping them.
        other => Value::Text(format!("{other:?}")),
    }
}

/// Renders days since 1900-01-01 plus milliseconds since midnight.
fn render_datetime(days_since_1900: i64, millis: u64) -> String {
    // 25_567 days separate 1900-01-01 from 1970-01-01, the origin `civil_from_days` counts from.
    let (y, m, d) = civil_from_days(days_since_1900 - 25_567);
    let secs = millis / 1000;
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{:03}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        millis % 1000
    )
}

/// Year, month, day of a day count relative to 1970-01-01 (proleptic Gregorian calendar), computed in
/// 400-year eras counted from a March 1st so that the leap day falls at the end of each year.
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_render_in_the_gregorian_calendar() {
        let cases = [
            (0, 0, "1900-01-01 00:00:00.000"),
            (25_567, 0, "1970-01-01 00:00:00.000"),
            (46_000, 3_723_004, "2025-12-11 01:02:03.004"),
            (36_523, 86_399_997, "1999-12-31 23:59:59.997"),
            (36_584, 0, "2000-03-01 00:00:00.000"),
        ];
        for (days, millis, expected) in cases {
            assert_eq!(render_datetime(days, millis), expected, "days {days}");
        }
    }

    #[test]
    fn lookups_by_column_name_ignore_case_and_missing_columns_read_null() {
        let set = ResultSet {
            columns: vec!["name".into(), "state_desc".into()],
            rows: vec![vec![
                Value::Text("mgc".into()),
                Value::Text("RESTORING".into()),
            ]],
        };
        assert_eq!(
            set.get(&set.rows[0], "STATE_DESC").as_str(),
            Some("RESTORING")
        );
        assert_eq!(set.get(&set.rows[0], "is_in_standby"), &Value::Null);
    }
}
