//! Encoding of response tokens [2.2.7]: COLMETADATA, ROW, DONE*, ERROR/INFO, ENVCHANGE, LOGINACK,
//! RETURNSTATUS, RETURNVALUE, and the TYPE_INFO / value layouts behind them [2.2.5.4-2.2.5.5].
//!
//! Types are written the way SQL Server writes them, because clients pick their decoders from the
//! type byte: a NOT NULL int is INT4 (0x38), a nullable one INTN (0x26) with its length; strings
//! carry the server collation; `(max)` types are PLP. This module does not decide *which* tokens a
//! response contains (that is [`crate::response`]); it only lays them out.
//!
//! A value that does not fit its column (a string in an int column, text longer than the declared
//! length) is a backend bug: it is reported as an [`EncodeError`] rather than silently coerced.

use crate::backend::{Column, Message, SqlType, Value};

/// Token type bytes [2.2.7].
pub(crate) mod token_type {
    pub(crate) const RETURNSTATUS: u8 = 0x79;
    pub(crate) const COLMETADATA: u8 = 0x81;
    pub(crate) const ERROR: u8 = 0xAA;
    pub(crate) const INFO: u8 = 0xAB;
    pub(crate) const RETURNVALUE: u8 = 0xAC;
    pub(crate) const LOGINACK: u8 = 0xAD;
    pub(crate) const ROW: u8 = 0xD1;
    pub(crate) const ENVCHANGE: u8 = 0xE3;
    pub(crate) const SSPI: u8 = 0xED;
    pub(crate) const DONE: u8 = 0xFD;
    pub(crate) const DONEPROC: u8 = 0xFE;
    pub(crate) const DONEINPROC: u8 = 0xFF;
}

/// DONE status bits [2.2.7.6].
pub(crate) mod done_status {
    pub(crate) const MORE: u16 = 0x0001;
    pub(crate) const ERROR: u16 = 0x0002;
    pub(crate) const COUNT: u16 = 0x0010;
    pub(crate) const ATTN: u16 = 0x0020;
}

/// ENVCHANGE types [2.2.7.9].
pub(crate) mod env_type {
    pub(crate) const DATABASE: u8 = 1;
    pub(crate) const LANGUAGE: u8 = 2;
    pub(crate) const PACKET_SIZE: u8 = 4;
    pub(crate) const COLLATION: u8 = 7;
    pub(crate) const BEGIN_TRAN: u8 = 8;
    pub(crate) const COMMIT_TRAN: u8 = 9;
    pub(crate) const ROLLBACK_TRAN: u8 = 10;
}

/// The server collation, SQL_Latin1_General_CP1_CI_AS, as its 5 wire bytes [2.2.5.1.2]: LCID
/// 0x0409 with the ignore-case/kana/width flags (info 0x00D0_0409 little-endian), sort id 52. Its
/// code page, 1252, is how `varchar` bytes are read.
pub(crate) const COLLATION: [u8; 5] = [0x09, 0x04, 0xD0, 0x00, 0x34];

/// The `sql_variant` max length SQL Server declares in COLMETADATA.
const VARIANT_MAX_LEN: u32 = 8016;

/// PLP total length meaning NULL [2.2.5.2.3].
const PLP_NULL: u64 = u64::MAX;

/// A value that cannot be encoded for its column.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EncodeError {
    #[error("column `{column}` of type {ty:?} cannot hold {value:?}")]
    Mismatch {
        column: String,
        ty: SqlType,
        value: Value,
    },
    #[error("row has {got} values but the result set has {expected} columns")]
    RowWidth { expected: usize, got: usize },
    #[error("column `{column}` of type {ty:?} is not valid here: {why}")]
    BadType {
        column: String,
        ty: SqlType,
        why: &'static str,
    },
}

/// Builds a token stream.
pub(crate) struct TokenWriter {
    pub(crate) buf: Vec<u8>,
    /// The TDS version the client speaks (as LOGINACK announces it): it decides the layout of DONE
    /// row counts and ERROR line numbers, and which types exist on the wire.
    version: u32,
}

/// TDS 7.2 (SQL Server 2005): u64 DONE row counts, u32 line numbers, `(max)` types as PLP, xml.
pub(crate) const TDS_7_2: u32 = 0x7209_0002;
/// TDS 7.3 (SQL Server 2008): date, time, datetime2, datetimeoffset.
pub(crate) const TDS_7_3: u32 = 0x730A_0003;
/// The newest version the lab speaks.
pub(crate) const TDS_7_4: u32 = 0x7400_0004;

impl TokenWriter {
    /// A writer for a TDS 7.4 client.
    #[cfg(test)]
    pub(crate) fn new() -> Self {
        Self::for_version(TDS_7_4)
    }

    pub(crate) fn for_version(version: u32) -> Self {
        TokenWriter {
            buf: Vec::with_capacity(256),
            version,
        }
    }

    fn tds72(&self) -> bool {
        self.version >= TDS_7_2
    }

    /// UserType 0: a ULONG from TDS 7.2 on, a USHORT before [2.2.7.4].
    fn user_type(&mut self) {
        if self.tds72() {
            self.u32(0);
        } else {
            self.u16(0);
        }
    }

    /// A scratch writer for the same client.
    fn scratch(&self) -> TokenWriter {
        TokenWriter::for_version(self.version)
    }

    /// A column as this client can receive it. SQL Server sends down-level clients what they know
    /// [2.2.5.4]: before 7.2 there are no `(max)` types nor xml (the lab sends the largest sized
    /// type and cuts values to fit), before 7.3 no date/time types (sent as nvarchar text).
    fn wire_column(&self, c: &Column) -> Column {
        let ty = match &c.ty {
            SqlType::NVarCharMax | SqlType::Xml if !self.tds72() => SqlType::NVarChar(4000),
            SqlType::VarCharMax if !self.tds72() => SqlType::VarChar(8000),
            SqlType::VarBinaryMax if !self.tds72() => SqlType::VarBinary(8000),
            SqlType::Date if self.version < TDS_7_3 => SqlType::NVarChar(10),
            SqlType::Time(_) if self.version < TDS_7_3 => SqlType::NVarChar(16),
            SqlType::DateTime2(_) if self.version < TDS_7_3 => SqlType::NVarChar(27),
            SqlType::DateTimeOffset(_) if self.version < TDS_7_3 => SqlType::NVarChar(34),
            other => other.clone(),
        };
        Column { ty, ..c.clone() }
    }

    /// A value converted for [`TokenWriter::wire_column`]'s column.
    fn wire_value(&self, original: &SqlType, wire: &SqlType, v: &Value) -> Value {
        if original == wire {
            return v.clone();
        }
        match (wire, v) {
            (SqlType::NVarChar(n), Value::String(s)) => {
                let mut used = 0;
                Value::String(
                    s.chars()
                        .take_while(|c| {
                            used += c.len_utf16();
                            used <= usize::from(*n)
                        })
                        .collect(),
                )
            }
            (SqlType::VarChar(n), Value::String(s)) => {
                Value::String(s.chars().take(usize::from(*n)).collect())
            }
            (SqlType::VarBinary(n), Value::Binary(b)) => {
                Value::Binary(b.iter().take(usize::from(*n)).copied().collect())
            }
            (SqlType::NVarChar(_), other) => match date_text(other) {
                Some(text) => Value::String(text),
                None => other.clone(),
            },
            (_, other) => other.clone(),
        }
    }

    fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// B_VARCHAR: length in UTF-16 code units (at most 255; longer text is cut at a code unit
    /// boundary that does not split a surrogate pair).
    fn b_varchar(&mut self, s: &str) {
        let units = utf16_prefix(s, u8::MAX as usize);
        self.u8(units.len() as u8);
        self.utf16(&units);
    }

    /// US_VARCHAR: like B_VARCHAR with a u16 length.
    fn us_varchar(&mut self, s: &str) {
        let units = utf16_prefix(s, u16::MAX as usize);
        self.u16(units.len() as u16);
        self.utf16(&units);
    }

    fn utf16(&mut self, units: &[u16]) {
        self.buf.reserve(units.len() * 2);
        for u in units {
            self.buf.extend_from_slice(&u.to_le_bytes());
        }
    }

    /// Writes a token whose body starts with a u16 length [2.2.4.2.1.3]: the length is patched in
    /// after the body is written.
    fn with_u16_length(&mut self, token: u8, body: impl FnOnce(&mut Self)) {
        self.u8(token);
        let at = self.buf.len();
        self.u16(0);
        body(self);
        let len = (self.buf.len() - at - 2) as u16;
        self.buf[at..at + 2].copy_from_slice(&len.to_le_bytes());
    }

    /// DONE / DONEPROC / DONEINPROC [2.2.7.6-2.2.7.8].
    pub(crate) fn done(&mut self, token: u8, status: u16, cur_cmd: u16, row_count: u64) {
        self.u8(token);
        self.u16(status);
        self.u16(cur_cmd);
        if self.tds72() {
            self.u64(row_count);
        } else {
            self.u32(row_count as u32);
        }
    }

    /// ERROR [2.2.7.10] or INFO [2.2.7.13].
    pub(crate) fn message(&mut self, token: u8, msg: &Message, server: &str) {
        let tds72 = self.tds72();
        self.with_u16_length(token, |w| {
            w.u32(msg.number);
            w.u8(msg.state);
            w.u8(msg.class);
            w.us_varchar(&msg.message);
            w.b_varchar(server);
            w.b_varchar(&msg.procedure);
            if tds72 {
                w.u32(msg.line);
            } else {
                w.u16(msg.line as u16);
            }
        });
    }

    /// ENVCHANGE with B_VARCHAR values (database, language, packet size) [2.2.7.9].
    pub(crate) fn env_change_text(&mut self, ty: u8, new: &str, old: &str) {
        self.with_u16_length(token_type::ENVCHANGE, |w| {
            w.u8(ty);
            w.b_varchar(new);
            w.b_varchar(old);
        });
    }

    /// ENVCHANGE with B_VARBYTE values (collation, transaction descriptors) [2.2.7.9].
    pub(crate) fn env_change_bytes(&mut self, ty: u8, new: &[u8], old: &[u8]) {
        self.with_u16_length(token_type::ENVCHANGE, |w| {
            w.u8(ty);
            w.u8(new.len() as u8);
            w.buf.extend_from_slice(new);
            w.u8(old.len() as u8);
            w.buf.extend_from_slice(old);
        });
    }

    /// LOGINACK [2.2.7.14]: interface 1 (SQL), the TDS version **big-endian**, program name and
    /// the 4 version bytes.
    pub(crate) fn login_ack(&mut self, tds_version: u32, program: &str, version: [u8; 4]) {
        self.with_u16_length(token_type::LOGINACK, |w| {
            w.u8(1);
            w.buf.extend_from_slice(&tds_version.to_be_bytes());
            w.b_varchar(program);
            w.buf.extend_from_slice(&version);
        });
    }

    /// SSPI [2.2.7.22]: a u16 length, then the security package's bytes (NTLM's CHALLENGE).
    pub(crate) fn sspi(&mut self, data: &[u8]) {
        self.u8(token_type::SSPI);
        self.buf
            .extend_from_slice(&(data.len() as u16).to_le_bytes());
        self.buf.extend_from_slice(data);
    }

    /// RETURNSTATUS [2.2.7.17].
    pub(crate) fn return_status(&mut self, status: i32) {
        self.u8(token_type::RETURNSTATUS);
        self.buf.extend_from_slice(&status.to_le_bytes());
    }

    /// RETURNVALUE [2.2.7.18]: ordinal, name, status 0x01 (output parameter), user type, flags,
    /// TYPE_INFO, value. An output parameter is always nullable.
    pub(crate) fn return_value(
        &mut self,
        ordinal: u16,
        name: &str,
        ty: &SqlType,
        value: &Value,
    ) -> Result<(), EncodeError> {
        let column = self.wire_column(&Column {
            name: name.to_owned(),
            ty: ty.clone(),
            nullable: true,
        });
        let value = self.wire_value(ty, &column.ty, value);
        let mut w = self.scratch();
        w.u8(token_type::RETURNVALUE);
        w.u16(ordinal);
        w.b_varchar(name);
        w.u8(0x01);
        w.user_type();
        w.u16(0x0001);
        w.type_info(&column)?;
        w.value(&column, &value)?;
        self.buf.extend_from_slice(&w.buf);
        Ok(())
    }

    /// COLMETADATA [2.2.7.4]. Encoded into a scratch buffer first so a bad column leaves `self`
    /// untouched.
    pub(crate) fn col_metadata(&mut self, columns: &[Column]) -> Result<(), EncodeError> {
        let mut w = self.scratch();
        w.u8(token_type::COLMETADATA);
        w.u16(columns.len() as u16);
        for c in columns {
            let c = &self.wire_column(c);
            w.user_type();
            // Flags: fNullable, and usUpdateable = 2 ("unknown"), as SQL Server reports for
            // columns of a query result [2.2.7.4].
            w.u16(u16::from(c.nullable) | 0x0008);
            w.type_info(c)?;
            w.b_varchar(&c.name);
        }
        self.buf.extend_from_slice(&w.buf);
        Ok(())
    }

    /// ROW [2.2.7.19].
    pub(crate) fn row(&mut self, columns: &[Column], values: &[Value]) -> Result<(), EncodeError> {
        if columns.len() != values.len() {
            return Err(EncodeError::RowWidth {
                expected: columns.len(),
                got: values.len(),
            });
        }
        let start = self.buf.len();
        self.u8(token_type::ROW);
        for (c, v) in columns.iter().zip(values) {
            let wire = self.wire_column(c);
            let v = self.wire_value(&c.ty, &wire.ty, v);
            if let Err(e) = self.value(&wire, &v) {
                self.buf.truncate(start);
                return Err(e);
            }
        }
        Ok(())
    }

    /// TYPE_INFO [2.2.5.4] for a column.
    fn type_info(&mut self, c: &Column) -> Result<(), EncodeError> {
        let n = c.nullable;
        match &c.ty {
            // Fixed-length types for NOT NULL columns, the nullable "N" types otherwise
            // [2.2.5.4.1, 2.2.5.4.2], exactly as SQL Server chooses them.
            SqlType::TinyInt => self.fixed_or_n(n, 0x30, 0x26, 1),
            SqlType::SmallInt => self.fixed_or_n(n, 0x34, 0x26, 2),
            SqlType::Int => self.fixed_or_n(n, 0x38, 0x26, 4),
            SqlType::BigInt => self.fixed_or_n(n, 0x7F, 0x26, 8),
            SqlType::Bit => self.fixed_or_n(n, 0x32, 0x68, 1),
            SqlType::Float => self.fixed_or_n(n, 0x3E, 0x6D, 8),
            SqlType::Real => self.fixed_or_n(n, 0x3B, 0x6D, 4),
            SqlType::DateTime => self.fixed_or_n(n, 0x3D, 0x6F, 8),
            SqlType::SmallDateTime => self.fixed_or_n(n, 0x3A, 0x6F, 4),
            SqlType::NVarChar(chars) => {
                if *chars == 0 || *chars > 4000 {
                    return Err(bad_type(c, "nvarchar(n) needs 1 <= n <= 4000"));
                }
                self.u8(0xE7);
                self.u16(chars * 2); // max length in bytes
                self.buf.extend_from_slice(&COLLATION);
            }
            SqlType::NVarCharMax => {
                self.u8(0xE7);
                self.u16(0xFFFF);
                self.buf.extend_from_slice(&COLLATION);
            }
            SqlType::VarChar(len) | SqlType::Char(len) => {
                if *len == 0 || *len > 8000 {
                    return Err(bad_type(c, "varchar(n)/char(n) needs 1 <= n <= 8000"));
                }
                self.u8(if matches!(c.ty, SqlType::Char(_)) {
                    0xAF
                } else {
                    0xA7
                });
                self.u16(*len);
                self.buf.extend_from_slice(&COLLATION);
            }
            SqlType::VarCharMax => {
                self.u8(0xA7);
                self.u16(0xFFFF);
                self.buf.extend_from_slice(&COLLATION);
            }
            SqlType::Numeric { precision, scale } => {
                if *precision == 0 || *precision > 38 || scale > precision {
                    return Err(bad_type(c, "numeric(p, s) needs 1 <= p <= 38 and s <= p"));
                }
                self.u8(0x6C);
                self.u8(numeric_len(*precision));
                self.u8(*precision);
                self.u8(*scale);
            }
            SqlType::UniqueIdentifier => {
                self.u8(0x24);
                self.u8(16);
            }
            SqlType::VarBinary(len) => {
                if *len == 0 || *len > 8000 {
                    return Err(bad_type(c, "varbinary(n) needs 1 <= n <= 8000"));
                }
                self.u8(0xA5);
                self.u16(*len);
            }
            SqlType::VarBinaryMax => {
                self.u8(0xA5);
                self.u16(0xFFFF);
            }
            SqlType::Variant => {
                self.u8(0x62);
                self.u32(VARIANT_MAX_LEN);
            }
            SqlType::Date => self.u8(0x28),
            SqlType::Time(s) | SqlType::DateTime2(s) | SqlType::DateTimeOffset(s) => {
                if *s > 7 {
                    return Err(bad_type(c, "time scale must be 0..=7"));
                }
                self.u8(match c.ty {
                    SqlType::Time(_) => 0x29,
                    SqlType::DateTime2(_) => 0x2A,
                    _ => 0x2B,
                });
                self.u8(*s);
            }
            SqlType::Xml => {
                self.u8(0xF1);
                self.u8(0); // no schema collection
            }
        }
        Ok(())
    }

    fn fixed_or_n(&mut self, nullable: bool, fixed: u8, n_type: u8, len: u8) {
        if nullable {
            self.u8(n_type);
            self.u8(len);
        } else {
            self.u8(fixed);
        }
    }

    /// One value in ROW / RETURNVALUE layout for its column's TYPE_INFO [2.2.5.5].
    fn value(&mut self, c: &Column, v: &Value) -> Result<(), EncodeError> {
        let mismatch = || EncodeError::Mismatch {
            column: c.name.clone(),
            ty: c.ty.clone(),
            value: v.clone(),
        };
        let is_null = matches!(v, Value::Null);
        if is_null && !c.nullable {
            return Err(mismatch());
        }
        match &c.ty {
            SqlType::TinyInt
            | SqlType::SmallInt
            | SqlType::Int
            | SqlType::BigInt
            | SqlType::Bit => {
                let (len, raw) = match (&c.ty, v) {
                    (_, Value::Null) => (0, 0),
                    (SqlType::Bit, Value::Bit(b)) => (1, i64::from(*b)),
                    (SqlType::Bit, Value::Int(i @ 0..=1)) => (1, *i),
                    (SqlType::TinyInt, Value::Int(i @ 0..=255)) => (1, *i),
                    (SqlType::SmallInt, Value::Int(i)) if i16::try_from(*i).is_ok() => (2, *i),
                    (SqlType::Int, Value::Int(i)) if i32::try_from(*i).is_ok() => (4, *i),
                    (SqlType::BigInt, Value::Int(i)) => (8, *i),
                    _ => return Err(mismatch()),
                };
                if c.nullable {
                    self.u8(len);
                }
                self.buf
                    .extend_from_slice(&raw.to_le_bytes()[..len as usize]);
            }
            SqlType::Float | SqlType::Real => {
                let f = match v {
                    Value::Null => None,
                    Value::Float(f) => Some(*f),
                    _ => return Err(mismatch()),
                };
                let real = c.ty == SqlType::Real;
                match (f, c.nullable) {
                    (None, _) => self.u8(0),
                    (Some(f), nullable) => {
                        if nullable {
                            self.u8(if real { 4 } else { 8 });
                        }
                        if real {
                            self.buf.extend_from_slice(&(f as f32).to_le_bytes());
                        } else {
                            self.buf.extend_from_slice(&f.to_le_bytes());
                        }
                    }
                }
            }
            SqlType::DateTime | SqlType::SmallDateTime => match v {
                Value::Null => self.u8(0),
                Value::DateTime { days, ticks } => {
                    if c.ty == SqlType::DateTime {
                        if c.nullable {
                            self.u8(8);
                        }
                        // [2.2.5.5.1.8]: days since 1900-01-01, then 1/300 s since midnight.
                        self.buf.extend_from_slice(&days.to_le_bytes());
                        self.u32(*ticks);
                    } else {
                        let days = u16::try_from(*days).map_err(|_| mismatch())?;
                        if c.nullable {
                            self.u8(4);
                        }
                        self.u16(days);
                        self.u16((*ticks / (300 * 60)) as u16);
                    }
                }
                _ => return Err(mismatch()),
            },
            SqlType::NVarChar(chars) => match v {
                Value::Null => self.u16(0xFFFF),
                Value::String(s) => {
                    let units: Vec<u16> = s.encode_utf16().collect();
                    if units.len() > *chars as usize {
                        return Err(mismatch());
                    }
                    self.u16((units.len() * 2) as u16);
                    self.utf16(&units);
                }
                _ => return Err(mismatch()),
            },
            SqlType::NVarCharMax | SqlType::Xml => match v {
                Value::Null => self.u64(PLP_NULL),
                Value::String(s) => {
                    let mut bytes = Vec::with_capacity(s.len() * 2);
                    for u in s.encode_utf16() {
                        bytes.extend_from_slice(&u.to_le_bytes());
                    }
                    self.plp(&bytes);
                }
                _ => return Err(mismatch()),
            },
            SqlType::VarChar(len) | SqlType::Char(len) => match v {
                Value::Null => self.u16(0xFFFF),
                Value::String(s) => {
                    let mut bytes = to_cp1252(s);
                    if bytes.len() > *len as usize {
                        return Err(mismatch());
                    }
                    // char(n) is blank-padded to its full length.
                    if matches!(c.ty, SqlType::Char(_)) {
                        bytes.resize(*len as usize, b' ');
                    }
                    self.u16(bytes.len() as u16);
                    self.buf.extend_from_slice(&bytes);
                }
                _ => return Err(mismatch()),
            },
            SqlType::VarCharMax => match v {
                Value::Null => self.u64(PLP_NULL),
                Value::String(s) => self.plp(&to_cp1252(s)),
                _ => return Err(mismatch()),
            },
            SqlType::Numeric { precision, scale } => match v {
                Value::Null => self.u8(0),
                Value::Numeric(value, s) => {
                    let value = rescale(*value, *s, *scale).ok_or_else(mismatch)?;
                    let magnitude = value.unsigned_abs();
                    if magnitude >= 10u128.pow(u32::from(*precision)) {
                        return Err(mismatch());
                    }
                    // [2.2.5.5.1.6]: length, sign (1 = positive), magnitude little-endian.
                    let len = numeric_len(*precision);
                    self.u8(len);
                    self.u8(u8::from(value >= 0));
                    self.buf
                        .extend_from_slice(&magnitude.to_le_bytes()[..len as usize - 1]);
                }
                _ => return Err(mismatch()),
            },
            SqlType::UniqueIdentifier => match v {
                Value::Null => self.u8(0),
                Value::Guid(g) => {
                    self.u8(16);
                    self.buf.extend_from_slice(g);
                }
                _ => return Err(mismatch()),
            },
            SqlType::VarBinary(len) => match v {
                Value::Null => self.u16(0xFFFF),
                Value::Binary(b) if b.len() <= *len as usize => {
                    self.u16(b.len() as u16);
                    self.buf.extend_from_slice(b);
                }
                _ => return Err(mismatch()),
            },
            SqlType::VarBinaryMax => match v {
                Value::Null => self.u64(PLP_NULL),
                Value::Binary(b) => self.plp(b),
                _ => return Err(mismatch()),
            },
            SqlType::Variant => match v {
                Value::Null => self.u32(0),
                Value::Variant(inner) => {
                    let (ty, value) = &**inner;
                    self.variant(c, ty, value).ok_or_else(mismatch)?;
                }
                _ => return Err(mismatch()),
            },
            SqlType::Date
            | SqlType::Time(_)
            | SqlType::DateTime2(_)
            | SqlType::DateTimeOffset(_) => {
                if is_null {
                    self.u8(0);
                } else {
                    let bytes = date_time_bytes(&c.ty, v).ok_or_else(mismatch)?;
                    self.u8(bytes.len() as u8);
                    self.buf.extend_from_slice(&bytes);
                }
            }
        }
        Ok(())
    }

    /// A PLP value [2.2.5.2.3]: known total length, one chunk, terminator.
    fn plp(&mut self, bytes: &[u8]) {
        self.u64(bytes.len() as u64);
        if !bytes.is_empty() {
            self.u32(bytes.len() as u32);
            self.buf.extend_from_slice(bytes);
        }
        self.u32(0);
    }

    /// A `sql_variant` value [2.2.5.5.4]: total length, base type, property bytes, data. Returns
    /// `None` when the inner value does not fit its declared base type (or the base type cannot be
    /// held in a variant, like the `(max)` types).
    fn variant(&mut self, outer: &Column, ty: &SqlType, value: &Value) -> Option<()> {
        if matches!(value, Value::Null) {
            self.u32(0);
            return Some(());
        }
        // Encode the inner value as a NOT NULL column of its base type, then strip what the
        // variant layout does not repeat (length prefixes), and add the type's property bytes.
        let inner = Column {
            name: outer.name.clone(),
            ty: ty.clone(),
            nullable: false,
        };
        let mut scratch = self.scratch();
        scratch.value(&inner, value).ok()?;
        let data = scratch.buf;
        let (base, props, data): (u8, Vec<u8>, &[u8]) = match ty {
            SqlType::TinyInt => (0x30, vec![], &data),
            SqlType::SmallInt => (0x34, vec![], &data),
            SqlType::Int => (0x38, vec![], &data),
            SqlType::BigInt => (0x7F, vec![], &data),
            SqlType::Bit => (0x32, vec![], &data),
            SqlType::Float => (0x3E, vec![], &data),
            SqlType::Real => (0x3B, vec![], &data),
            SqlType::DateTime => (0x3D, vec![], &data),
            SqlType::SmallDateTime => (0x3A, vec![], &data),
            SqlType::NVarChar(n) => (0xE7, string_props(n * 2), &data[2..]),
            SqlType::VarChar(n) => (0xA7, string_props(*n), &data[2..]),
            SqlType::Char(n) => (0xAF, string_props(*n), &data[2..]),
            SqlType::Numeric { precision, scale } => (0x6C, vec![*precision, *scale], &data[1..]),
            SqlType::UniqueIdentifier => (0x24, vec![], &data[1..]),
            SqlType::VarBinary(n) => (0xA5, n.to_le_bytes().to_vec(), &data[2..]),
            SqlType::Date => (0x28, vec![], &data[1..]),
            SqlType::Time(s) => (0x29, vec![*s], &data[1..]),
            SqlType::DateTime2(s) => (0x2A, vec![*s], &data[1..]),
            SqlType::DateTimeOffset(s) => (0x2B, vec![*s], &data[1..]),
            SqlType::NVarCharMax
            | SqlType::VarCharMax
            | SqlType::VarBinaryMax
            | SqlType::Xml
            | SqlType::Variant => return None,
        };
        self.u32((2 + props.len() + data.len()) as u32);
        self.u8(base);
        self.u8(props.len() as u8);
        self.buf.extend_from_slice(&props);
        self.buf.extend_from_slice(data);
        Some(())
    }
}

/// Property bytes of a character base type in a variant: collation, then max length.
fn string_props(max_len: u16) -> Vec<u8> {
    let mut p = COLLATION.to_vec();
    p.extend_from_slice(&max_len.to_le_bytes());
    p
}

fn bad_type(c: &Column, why: &'static str) -> EncodeError {
    EncodeError::BadType {
        column: c.name.clone(),
        ty: c.ty.clone(),
        why,
    }
}

/// Bytes of a NUMERICN value including its sign byte, by precision [2.2.5.5.1.6].
pub(crate) fn numeric_len(precision: u8) -> u8 {
    match precision {
        0..=9 => 5,
        10..=19 => 9,
        20..=28 => 13,
        _ => 17,
    }
}

/// Brings a scaled integer to `to` decimal places; `None` if digits would be lost or it overflows.
/// Losing digits silently would hide an engine bug, so scaling down only drops zeros.
fn rescale(value: i128, from: u8, to: u8) -> Option<i128> {
    if from <= to {
        value.checked_mul(10i128.checked_pow(u32::from(to - from))?)
    } else {
        let f = 10i128.checked_pow(u32::from(from - to))?;
        (value % f == 0).then_some(value / f)
    }
}

/// Bytes a `time(scale)` value occupies [2.2.5.5.1.7].
pub(crate) fn time_len(scale: u8) -> usize {
    match scale {
        0..=2 => 3,
        3..=4 => 4,
        _ => 5,
    }
}

/// The value bytes (without length prefix) of date, time, datetime2 and datetimeoffset. The
/// value's own scale is converted to the column's.
fn date_time_bytes(ty: &SqlType, v: &Value) -> Option<Vec<u8>> {
    let time = |increments: u64, from: u8, to: u8| -> Option<Vec<u8>> {
        let inc = i128::from(increments);
        let inc = if from <= to {
            rescale(inc, from, to)?
        } else {
            inc / 10i128.pow(u32::from(from - to))
        };
        let bytes = u64::try_from(inc).ok()?.to_le_bytes();
        Some(bytes[..time_len(to)].to_vec())
    };
    let date = |days: u32| -> Option<Vec<u8>> {
        (days < 1 << 24).then(|| days.to_le_bytes()[..3].to_vec())
    };
    match (ty, v) {
        (SqlType::Date, Value::Date(days)) => date(*days),
        (SqlType::Time(to), Value::Time { increments, scale }) => time(*increments, *scale, *to),
        (
            SqlType::DateTime2(to),
            Value::DateTime2 {
                days,
                increments,
                scale,
            },
        ) => {
            let mut b = time(*increments, *scale, *to)?;
            b.extend(date(*days)?);
            Some(b)
        }
        (
            SqlType::DateTimeOffset(to),
            Value::DateTimeOffset {
                days,
                increments,
                scale,
                offset_minutes,
            },
        ) => {
            let mut b = time(*increments, *scale, *to)?;
            b.extend(date(*days)?);
            b.extend_from_slice(&offset_minutes.to_le_bytes());
            Some(b)
        }
        _ => None,
    }
}

/// The first at most `max` UTF-16 code units of `s`, never splitting a surrogate pair.
fn utf16_prefix(s: &str, max: usize) -> Vec<u16> {
    let mut units = Vec::with_capacity(s.len().min(max));
    for ch in s.chars() {
        let mut buf = [0u16; 2];
        let enc = ch.encode_utf16(&mut buf);
        if units.len() + enc.len() > max {
            break;
        }
        units.extend_from_slice(enc);
    }
    units
}

/// Windows-1252 (the collation's code page) for `varchar`. Characters it lacks become `?`, as SQL
/// Server's conversion from nvarchar does.
pub(crate) fn to_cp1252(s: &str) -> Vec<u8> {
    s.chars()
        .map(|ch| match ch as u32 {
            c @ (0..=0x7F | 0xA0..=0xFF) => c as u8,
            _ => CP1252_HIGH
                .iter()
                .position(|&u| u == ch as u16 && u != 0)
                .map_or(b'?', |i| 0x80 + i as u8),
        })
        .collect()
}

/// Windows-1252 to text, for `varchar` parameters.
pub(crate) fn from_cp1252(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| match b {
            0x80..=0x9F => {
                char::from_u32(u32::from(CP1252_HIGH[b as usize - 0x80])).unwrap_or('\u{FFFD}')
            }
            _ => char::from(b),
        })
        .collect()
}

/// Unicode for bytes 0x80..=0x9F of Windows-1252 (0 = unassigned); the rest of the code page is
/// Latin-1.
const CP1252_HIGH: [u16; 32] = [
    0x20AC, 0, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039,
    0x0152, 0, 0x017D, 0, 0, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, 0x02DC,
    0x2122, 0x0161, 0x203A, 0x0153, 0, 0x017E, 0x0178,
];

/// The text SQL Server sends a pre-7.3 client for a date/time value [2.2.5.4.2]: ISO 8601 as
/// `CONVERT(nvarchar, v, 121)` writes it. `None` for any other value.
fn date_text(v: &Value) -> Option<String> {
    // Days since 0001-01-01 to a civil date (the proleptic Gregorian calendar, as `date` uses).
    let civil = |days: u32| {
        let z = i64::from(days) - 719_162 + 719_468; // shift to days since 0000-03-01
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = yoe + era * 400 + i64::from(m <= 2);
        format!("{y:04}-{m:02}-{d:02}")
    };
    let clock = |increments: u64, scale: u8| {
        let per_sec = 10u64.pow(u32::from(scale));
        let secs = increments / per_sec;
        let frac = increments % per_sec;
        let hms = format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60);
        if scale == 0 {
            hms
        } else {
            format!("{hms}.{frac:0width$}", width = usize::from(scale))
        }
    };
    Some(match v {
        Value::Date(d) => civil(*d),
        Value::Time { increments, scale } => clock(*increments, *scale),
        Value::DateTime2 {
            days,
            increments,
            scale,
        } => format!("{} {}", civil(*days), clock(*increments, *scale)),
        Value::DateTimeOffset {
            days,
            increments,
            scale,
            offset_minutes,
        } => {
            // The wire holds UTC; the text shows the local time and its offset.
            let per_day = 86_400 * 10u64.pow(u32::from(*scale));
            let shift = i64::from(*offset_minutes) * 60 * 10i64.pow(u32::from(*scale));
            let total = i64::from(*days) * per_day as i64 + *increments as i64 + shift;
            let (d, i) = (
                total.div_euclid(per_day as i64),
                total.rem_euclid(per_day as i64),
            );
            let sign = if *offset_minutes < 0 { '-' } else { '+' };
            let off = offset_minutes.unsigned_abs();
            format!(
                "{} {} {sign}{:02}:{:02}",
                civil(d as u32),
                clock(i as u64, *scale),
                off / 60,
                off % 60
            )
        }
        _ => return None,
    })
}

#[cfg(test)]
mod downlevel_tests {
    use super::*;

    #[test]
    fn date_and_time_values_read_as_sql_server_writes_them() {
        // 2024-03-01 is day 738 945 since 0001-01-01.
        let cases = [
            (Value::Date(738_945), "2024-03-01"),
            (
                Value::Time {
                    increments: 37_235,
                    scale: 1,
                },
                "01:02:03.5",
            ),
            (
                Value::DateTime2 {
                    days: 738_945,
                    increments: 0,
                    scale: 0,
                },
                "2024-03-01 00:00:00",
            ),
            (
                Value::DateTimeOffset {
                    days: 738_945,
                    increments: 3600,
                    scale: 0,
                    offset_minutes: -90,
                },
                "2024-02-29 23:30:00 -01:30",
            ),
        ];
        for (v, text) in cases {
            assert_eq!(date_text(&v).as_deref(), Some(text), "{v:?}");
        }
    }

    #[test]
    fn a_tds_7_1_client_gets_sized_types_for_max_ones_and_4_byte_counts() {
        let w = TokenWriter::for_version(0x7100_0001);
        let c = Column {
            name: "t".into(),
            ty: SqlType::NVarCharMax,
            nullable: true,
        };
        assert_eq!(w.wire_column(&c).ty, SqlType::NVarChar(4000));
        let long = "x".repeat(5000);
        assert_eq!(
            w.wire_value(&c.ty, &SqlType::NVarChar(4000), &Value::String(long)),
            Value::String("x".repeat(4000))
        );
        let mut w = TokenWriter::for_version(0x7100_0001);
        w.done(token_type::DONE, 0, 0, 1);
        assert_eq!(w.buf.len(), 9, "DONE with a u32 row count");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(ty: SqlType, nullable: bool) -> Column {
        Column {
            name: "c".into(),
            ty,
            nullable,
        }
    }

    #[test]
    fn type_info_matches_what_sql_server_sends() {
        let cases: Vec<(SqlType, bool, Vec<u8>)> = vec![
            (SqlType::Int, false, vec![0x38]),
            (SqlType::Int, true, vec![0x26, 4]),
            (SqlType::TinyInt, true, vec![0x26, 1]),
            (SqlType::SmallInt, false, vec![0x34]),
            (SqlType::BigInt, true, vec![0x26, 8]),
            (SqlType::BigInt, false, vec![0x7F]),
            (SqlType::Bit, true, vec![0x68, 1]),
            (SqlType::Float, true, vec![0x6D, 8]),
            (SqlType::DateTime, true, vec![0x6F, 8]),
            (
                SqlType::NVarChar(128),
                true,
                [vec![0xE7, 0, 1], COLLATION.to_vec()].concat(),
            ),
            (
                SqlType::NVarCharMax,
                true,
                [vec![0xE7, 0xFF, 0xFF], COLLATION.to_vec()].concat(),
            ),
            (
                SqlType::VarChar(10),
                true,
                [vec![0xA7, 10, 0], COLLATION.to_vec()].concat(),
            ),
            (
                SqlType::Char(3),
                false,
                [vec![0xAF, 3, 0], COLLATION.to_vec()].concat(),
            ),
            (
                SqlType::Numeric {
                    precision: 25,
                    scale: 0,
                },
                true,
                vec![0x6C, 13, 25, 0],
            ),
            (SqlType::UniqueIdentifier, true, vec![0x24, 16]),
            (SqlType::VarBinary(85), true, vec![0xA5, 85, 0]),
            (SqlType::Variant, true, vec![0x62, 0x50, 0x1F, 0, 0]),
            (SqlType::DateTime2(7), true, vec![0x2A, 7]),
            (SqlType::Xml, true, vec![0xF1, 0]),
        ];
        for (ty, nullable, expected) in cases {
            let mut w = TokenWriter::new();
            w.type_info(&col(ty.clone(), nullable)).unwrap();
            assert_eq!(w.buf, expected, "{ty:?} nullable={nullable}");
        }
    }

    #[test]
    fn values_are_laid_out_per_type() {
        let cases: Vec<(SqlType, bool, Value, Vec<u8>)> = vec![
            (SqlType::Int, false, Value::Int(1), vec![1, 0, 0, 0]),
            (
                SqlType::Int,
                true,
                Value::Int(-1),
                vec![4, 0xFF, 0xFF, 0xFF, 0xFF],
            ),
            (SqlType::Int, true, Value::Null, vec![0]),
            (SqlType::Bit, true, Value::Bit(true), vec![1, 1]),
            (
                SqlType::NVarChar(4),
                true,
                Value::String("ab".into()),
                vec![4, 0, b'a', 0, b'b', 0],
            ),
            (SqlType::NVarChar(4), true, Value::Null, vec![0xFF, 0xFF]),
            (
                SqlType::NVarCharMax,
                true,
                Value::String("a".into()),
                vec![2, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, b'a', 0, 0, 0, 0, 0],
            ),
            (SqlType::NVarCharMax, true, Value::Null, vec![0xFF; 8]),
            (
                SqlType::Char(3),
                true,
                Value::String("é".into()),
                vec![3, 0, 0xE9, b' ', b' '],
            ),
            (
                SqlType::Numeric {
                    precision: 25,
                    scale: 0,
                },
                true,
                Value::Numeric(-5, 0),
                vec![13, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            ),
            (
                SqlType::Numeric {
                    precision: 5,
                    scale: 2,
                },
                true,
                Value::Numeric(15, 1),
                vec![5, 1, 150, 0, 0, 0],
            ),
            (
                SqlType::DateTime,
                false,
                Value::DateTime { days: 1, ticks: 2 },
                vec![1, 0, 0, 0, 2, 0, 0, 0],
            ),
            (
                SqlType::Variant,
                true,
                Value::Variant(Box::new((SqlType::Int, Value::Int(7)))),
                vec![6, 0, 0, 0, 0x38, 0, 7, 0, 0, 0],
            ),
            (
                SqlType::Variant,
                true,
                Value::Variant(Box::new((SqlType::NVarChar(10), Value::String("x".into())))),
                [
                    vec![11, 0, 0, 0, 0xE7, 7],
                    COLLATION.to_vec(),
                    vec![20, 0, b'x', 0],
                ]
                .concat(),
            ),
            (SqlType::Date, true, Value::Date(0x010203), vec![3, 3, 2, 1]),
            (
                SqlType::Time(7),
                true,
                Value::Time {
                    increments: 1,
                    scale: 0,
                },
                vec![5, 0x80, 0x96, 0x98, 0, 0],
            ),
        ];
        for (ty, nullable, value, expected) in cases {
            let mut w = TokenWriter::new();
            w.value(&col(ty.clone(), nullable), &value).unwrap();
            assert_eq!(w.buf, expected, "{ty:?} {value:?}");
        }
    }

    #[test]
    fn values_that_do_not_fit_their_column_are_refused() {
        let cases: Vec<(SqlType, bool, Value)> = vec![
            (SqlType::Int, false, Value::Null),
            (SqlType::Int, true, Value::String("1".into())),
            (SqlType::TinyInt, true, Value::Int(256)),
            (SqlType::Int, true, Value::Int(i64::from(i32::MAX) + 1)),
            (SqlType::NVarChar(2), true, Value::String("abc".into())),
            (
                SqlType::Numeric {
                    precision: 3,
                    scale: 0,
                },
                true,
                Value::Numeric(1000, 0),
            ),
            (
                SqlType::Numeric {
                    precision: 5,
                    scale: 0,
                },
                true,
                Value::Numeric(15, 1),
            ),
            (SqlType::VarBinary(1), true, Value::Binary(vec![1, 2])),
            (
                SqlType::Variant,
                true,
                Value::Variant(Box::new((SqlType::NVarCharMax, Value::String("x".into())))),
            ),
            (SqlType::Date, true, Value::Int(1)),
        ];
        for (ty, nullable, value) in cases {
            let mut w = TokenWriter::new();
            assert!(
                w.value(&col(ty.clone(), nullable), &value).is_err(),
                "{ty:?} {value:?}"
            );
        }
    }

    #[test]
    fn a_bad_row_leaves_the_buffer_untouched() {
        let mut w = TokenWriter::new();
        let cols = [col(SqlType::Int, true), col(SqlType::Int, false)];
        assert!(w.row(&cols, &[Value::Int(1), Value::Null]).is_err());
        assert!(w.row(&cols, &[Value::Int(1)]).is_err());
        assert!(w.buf.is_empty());
    }

    #[test]
    fn cp1252_round_trips_its_high_range_and_replaces_the_rest() {
        assert_eq!(to_cp1252("€é‚x"), vec![0x80, 0xE9, 0x82, b'x']);
        assert_eq!(to_cp1252("日"), vec![b'?']);
        assert_eq!(from_cp1252(&[0x80, 0xE9, 0x41]), "€éA");
    }

    #[test]
    fn long_names_are_cut_without_splitting_surrogates() {
        let s = format!("{}😀", "a".repeat(254));
        assert_eq!(utf16_prefix(&s, 255).len(), 254);
        assert_eq!(utf16_prefix("ab", 255).len(), 2);
    }
}
