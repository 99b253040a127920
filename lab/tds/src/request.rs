//! Decoding client requests: SQLBatch [2.2.6.7], RPC [2.2.6.6] and Transaction Manager
//! [2.2.6.9] messages, including every parameter type tiberius and FreeTDS send.
//!
//! The result is plain data (SQL text, [`RpcCall`]s, [`TmRequest`]); nothing here executes. A
//! parameter of a type we do not know is answered like SQL Server answers it (error 8009) rather
//! than by dropping the connection, so it is its own [`RequestError`] variant.

use crate::backend::{RpcCall, RpcParam, SqlType, Value};
use crate::error::ProtocolError;
use crate::token::from_cp1252;
use crate::wire::{WireReader, utf16le};

/// Why a request could not be decoded.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RequestError {
    /// Broken framing inside the request: the connection cannot continue.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// A well-framed parameter of a type we cannot decode; answered with error 8009.
    #[error("parameter {ordinal} (`{name}`): unknown data type 0x{type_byte:02X}")]
    UnknownType {
        ordinal: usize,
        name: String,
        type_byte: u8,
    },
}

/// A Transaction Manager request [2.2.6.9].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TmRequest {
    Begin,
    /// Commit; `begin_new` is fBeginXact (start a new transaction right away).
    Commit {
        begin_new: bool,
    },
    Rollback {
        begin_new: bool,
    },
    /// Save points and DTC requests; acknowledged with a plain DONE.
    Other(u16),
}

/// Skips ALL_HEADERS [2.2.5.3]: its first u32 is its own total length.
fn skip_all_headers(r: &mut WireReader<'_>) -> Result<(), ProtocolError> {
    let total = r.u32_le("ALL_HEADERS length")? as usize;
    if total < 4 {
        return Err(ProtocolError::malformed(
            "ALL_HEADERS",
            format!("length {total}"),
        ));
    }
    r.skip(total - 4, "ALL_HEADERS")
}

/// SQLBatch: ALL_HEADERS (TDS 7.2 and later: `headers`), then the SQL text in UTF-16LE.
pub(crate) fn decode_sql_batch(payload: &[u8], headers: bool) -> Result<String, ProtocolError> {
    let mut r = WireReader::new(payload);
    if headers {
        skip_all_headers(&mut r)?;
    }
    let text = r.bytes(r.remaining(), "SQL batch text")?;
    utf16le(text, "SQL batch text")
}

/// Transaction Manager request: ALL_HEADERS (7.2 and later), u16 request type, type-specific
/// payload.
pub(crate) fn decode_tm(payload: &[u8], headers: bool) -> Result<TmRequest, ProtocolError> {
    let mut r = WireReader::new(payload);
    if headers {
        skip_all_headers(&mut r)?;
    }
    let ty = r.u16_le("transaction manager request type")?;
    Ok(match ty {
        5 => TmRequest::Begin,
        7 | 8 => {
            // [2.2.6.9]: B_VARCHAR transaction name, then a flags byte (fBeginXact = 0x01).
            let _name = r.b_varchar("transaction name")?;
            let begin_new = !r.is_empty() && r.u8("transaction flags")? & 0x01 != 0;
            if ty == 7 {
                TmRequest::Commit { begin_new }
            } else {
                TmRequest::Rollback { begin_new }
            }
        }
        other => TmRequest::Other(other),
    })
}

/// RPC: ALL_HEADERS, then one or more calls separated by a batch flag (0xFF) or NoExec flag
/// (0xFE). A TDS 7.1 client (`headers` false) sends no ALL_HEADERS and separates calls with 0x80
/// [2.2.6.6].
pub(crate) fn decode_rpc(payload: &[u8], headers: bool) -> Result<Vec<RpcCall>, RequestError> {
    let mut r = WireReader::new(payload);
    if headers {
        skip_all_headers(&mut r)?;
    }
    let separators: &[u8] = if headers { &[0xFF, 0xFE] } else { &[0x80] };
    let mut calls = vec![decode_call(&mut r)?];
    while !r.is_empty() {
        let flag = r.u8("RPC batch flag")?;
        if !separators.contains(&flag) {
            return Err(ProtocolError::malformed("RPC batch flag", format!("0x{flag:02x}")).into());
        }
        if r.is_empty() {
            break;
        }
        calls.push(decode_call(&mut r)?);
    }
    Ok(calls)
}

fn decode_call(r: &mut WireReader<'_>) -> Result<RpcCall, RequestError> {
    let name_len = r.u16_le("RPC name length")?;
    let (proc_id, proc_name) = if name_len == 0xFFFF {
        (Some(r.u16_le("RPC procedure id")?), None)
    } else {
        let raw = r.bytes(name_len as usize * 2, "RPC procedure name")?;
        (None, Some(utf16le(raw, "RPC procedure name")?))
    };
    let _option_flags = r.u16_le("RPC option flags")?;
    let mut params = Vec::new();
    while !r.is_empty() && !matches!(r.peek_u8(), Some(0xFF | 0xFE)) {
        params.push(decode_param(r, params.len() + 1)?);
    }
    Ok(RpcCall {
        proc_id,
        proc_name,
        params,
    })
}

/// One parameter [2.2.6.6]: B_VARCHAR name, status flags, TYPE_INFO, value.
fn decode_param(r: &mut WireReader<'_>, ordinal: usize) -> Result<RpcParam, RequestError> {
    let name = r.b_varchar("RPC parameter name")?;
    let status = r.u8("RPC parameter status")?;
    let type_byte = r.u8("RPC parameter type")?;
    let (ty, value) = match decode_typed_value(r, type_byte)? {
        Some(tv) => tv,
        None => {
            return Err(RequestError::UnknownType {
                ordinal,
                name,
                type_byte,
            });
        }
    };
    Ok(RpcParam {
        name,
        // fByRefValue [2.2.6.6]: an OUTPUT parameter.
        output: status & 0x01 != 0,
        ty,
        value,
    })
}

/// TYPE_INFO (after its type byte) and the value that follows. `None` for an unknown type.
fn decode_typed_value(
    r: &mut WireReader<'_>,
    type_byte: u8,
) -> Result<Option<(SqlType, Value)>, ProtocolError> {
    let tv = match type_byte {
        // NULLTYPE [2.2.5.4.1]: tiberius sends every `None` this way, whatever its Rust type. A
        // typeless NULL is `int` in SQL Server (`SELECT NULL` yields an int column), so say int;
        // sp_executesql's declaration in `params` carries the real type.
        0x1F => (SqlType::Int, Value::Null),
        // Fixed-length types [2.2.5.4.1] (FreeTDS sends some of these): no length byte.
        0x30 => (SqlType::TinyInt, Value::Int(i64::from(r.u8("tinyint")?))),
        0x32 => (SqlType::Bit, Value::Bit(r.u8("bit")? != 0)),
        0x34 => (
            SqlType::SmallInt,
            Value::Int(i64::from(r.u16_le("smallint")? as i16)),
        ),
        0x38 => (SqlType::Int, Value::Int(i64::from(r.u32_le("int")? as i32))),
        0x7F => (SqlType::BigInt, Value::Int(r.u64_le("bigint")? as i64)),
        0x3B => (
            SqlType::Real,
            Value::Float(f64::from(f32::from_bits(r.u32_le("real")?))),
        ),
        0x3E => (
            SqlType::Float,
            Value::Float(f64::from_bits(r.u64_le("float")?)),
        ),
        0x3D => (SqlType::DateTime, datetime(r.bytes(8, "datetime")?)),
        0x3A => (
            SqlType::SmallDateTime,
            datetime(r.bytes(4, "smalldatetime")?),
        ),
        // INTN [2.2.5.4.2]: declared length picks the type; value length 0 is NULL.
        0x26 => {
            let ty = match r.u8("INTN length")? {
                1 => SqlType::TinyInt,
                2 => SqlType::SmallInt,
                4 => SqlType::Int,
                8 => SqlType::BigInt,
                n => return Err(ProtocolError::malformed("INTN", format!("length {n}"))),
            };
            let value = match byte_len_value(r, "INTN value")? {
                None => Value::Null,
                Some(b) => Value::Int(match b.len() {
                    1 => i64::from(b[0]),
                    2 => i64::from(i16::from_le_bytes([b[0], b[1]])),
                    4 => i64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                    8 => i64::from_le_bytes(b.try_into().expect("length checked")),
                    n => {
                        return Err(ProtocolError::malformed(
                            "INTN value",
                            format!("length {n}"),
                        ));
                    }
                }),
            };
            (ty, value)
        }
        0x68 => {
            r.u8("BITN length")?;
            let value = match byte_len_value(r, "BITN value")? {
                None => Value::Null,
                Some(b) => Value::Bit(b.first().is_some_and(|&v| v != 0)),
            };
            (SqlType::Bit, value)
        }
        0x6D => {
            let declared = r.u8("FLTN length")?;
            let ty = if declared == 4 {
                SqlType::Real
            } else {
                SqlType::Float
            };
            let value = match byte_len_value(r, "FLTN value")? {
                None => Value::Null,
                Some(b) if b.len() == 4 => Value::Float(f64::from(f32::from_le_bytes(
                    b.try_into().expect("length checked"),
                ))),
                Some(b) if b.len() == 8 => {
                    Value::Float(f64::from_le_bytes(b.try_into().expect("length checked")))
                }
                Some(b) => {
                    return Err(ProtocolError::malformed(
                        "FLTN value",
                        format!("length {}", b.len()),
                    ));
                }
            };
            (ty, value)
        }
        // GUID [2.2.5.4.2]: bytes kept in wire order, as `Value::Guid` documents.
        0x24 => {
            r.u8("GUID length")?;
            let value = match byte_len_value(r, "GUID value")? {
                None => Value::Null,
                Some(b) => Value::Guid(b.try_into().map_err(|_| {
                    ProtocolError::malformed("GUID value", format!("length {}", b.len()))
                })?),
            };
            (SqlType::UniqueIdentifier, value)
        }
        // DECIMALN / NUMERICN [2.2.5.5.1.6]: length, precision, scale; value sign + magnitude.
        0x6A | 0x6C => {
            r.u8("NUMERIC length")?;
            let precision = r.u8("NUMERIC precision")?;
            let scale = r.u8("NUMERIC scale")?;
            if precision == 0 || precision > 38 || scale > precision {
                return Err(ProtocolError::malformed(
                    "NUMERIC",
                    format!("precision {precision} scale {scale}"),
                ));
            }
            let value = match byte_len_value(r, "NUMERIC value")? {
                None => Value::Null,
                Some(b) => {
                    let (sign, magnitude) = b.split_first().ok_or(ProtocolError::Truncated {
                        what: "NUMERIC value",
                    })?;
                    if magnitude.len() > 16 {
                        return Err(ProtocolError::malformed(
                            "NUMERIC value",
                            "magnitude over 16 bytes",
                        ));
                    }
                    let mut m = [0u8; 16];
                    m[..magnitude.len()].copy_from_slice(magnitude);
                    let v = i128::try_from(u128::from_le_bytes(m)).map_err(|_| {
                        ProtocolError::malformed("NUMERIC value", "magnitude out of range")
                    })?;
                    Value::Numeric(if *sign == 0 { -v } else { v }, scale)
                }
            };
            (SqlType::Numeric { precision, scale }, value)
        }
        // DATETIMEN [2.2.5.4.2]: 4 = smalldatetime, 8 = datetime.
        0x6F => {
            let ty = if r.u8("DATETIMEN length")? == 4 {
                SqlType::SmallDateTime
            } else {
                SqlType::DateTime
            };
            let value = match byte_len_value(r, "DATETIMEN value")? {
                None => Value::Null,
                Some(b) if b.len() == 4 || b.len() == 8 => datetime(b),
                Some(b) => {
                    return Err(ProtocolError::malformed(
                        "DATETIMEN value",
                        format!("length {}", b.len()),
                    ));
                }
            };
            (ty, value)
        }
        // DATEN / TIMEN / DATETIME2N / DATETIMEOFFSETN [2.2.5.4.2], [2.2.5.5.1.7].
        0x28 => {
            let value = match byte_len_value(r, "DATEN value")? {
                None => Value::Null,
                Some(b) if b.len() == 3 => Value::Date(u24(b)),
                Some(b) => {
                    return Err(ProtocolError::malformed(
                        "DATEN value",
                        format!("length {}", b.len()),
                    ));
                }
            };
            (SqlType::Date, value)
        }
        0x29..=0x2B => {
            let scale = r.u8("time scale")?;
            if scale > 7 {
                return Err(ProtocolError::malformed("time scale", scale.to_string()));
            }
            let tlen = crate::token::time_len(scale);
            let value = match byte_len_value(r, "time value")? {
                None => Value::Null,
                Some(b) => time_value(type_byte, b, tlen, scale)?,
            };
            let ty = match type_byte {
                0x29 => SqlType::Time(scale),
                0x2A => SqlType::DateTime2(scale),
                _ => SqlType::DateTimeOffset(scale),
            };
            (ty, value)
        }
        // Character and binary types with a u16 max length; 0xFFFF means (max), sent as PLP.
        0xE7 | 0xEF | 0xA7 | 0xAF | 0xA5 | 0xAD => {
            let max = r.u16_le("max length")?;
            let unicode = matches!(type_byte, 0xE7 | 0xEF);
            let binary = matches!(type_byte, 0xA5 | 0xAD);
            if !binary {
                // Collation [2.2.5.1.2]. The lab has one code page (1252), so varchar bytes are
                // read as 1252 whatever collation the client claims.
                r.skip(5, "collation")?;
            }
            let bytes = if max == 0xFFFF {
                plp(r)?
            } else {
                u16_len_value(r, "value")?.map(<[u8]>::to_vec)
            };
            let ty = match (unicode, binary, max) {
                (true, _, 0xFFFF) => SqlType::NVarCharMax,
                (true, _, m) => SqlType::NVarChar((m / 2).max(1)),
                (_, true, 0xFFFF) => SqlType::VarBinaryMax,
                (_, true, m) => SqlType::VarBinary(m.max(1)),
                (_, _, 0xFFFF) => SqlType::VarCharMax,
                (_, _, m) if type_byte == 0xAF => SqlType::Char(m.max(1)),
                (_, _, m) => SqlType::VarChar(m.max(1)),
            };
            let value = match bytes {
                None => Value::Null,
                Some(b) if unicode => Value::String(utf16le(&b, "nvarchar value")?),
                Some(b) if binary => Value::Binary(b),
                Some(b) => Value::String(from_cp1252(&b)),
            };
            (ty, value)
        }
        // XML [2.2.5.4.3]: schema-present flag (and the schema names), then a PLP UTF-16 value.
        0xF1 => {
            if r.u8("XML schema flag")? == 1 {
                r.b_varchar("XML schema database")?;
                r.b_varchar("XML schema owner")?;
                r.us_varchar("XML schema collection")?;
            }
            let value = match plp(r)? {
                None => Value::Null,
                Some(b) => Value::String(utf16le(&b, "xml value")?),
            };
            (SqlType::Xml, value)
        }
        _ => return Ok(None),
    };
    Ok(Some(tv))
}

/// A value with a u8 length prefix; 0 is NULL.
fn byte_len_value<'a>(
    r: &mut WireReader<'a>,
    what: &'static str,
) -> Result<Option<&'a [u8]>, ProtocolError> {
    let len = r.u8(what)? as usize;
    if len == 0 {
        return Ok(None);
    }
    r.bytes(len, what).map(Some)
}

/// A value with a u16 length prefix; 0xFFFF is NULL.
fn u16_len_value<'a>(
    r: &mut WireReader<'a>,
    what: &'static str,
) -> Result<Option<&'a [u8]>, ProtocolError> {
    let len = r.u16_le(what)?;
    if len == 0xFFFF {
        return Ok(None);
    }
    r.bytes(len as usize, what).map(Some)
}

/// A PLP value [2.2.5.2.3]: u64 total length (all ones = NULL, all ones but the last bit =
/// unknown), then u32-length chunks until a zero-length one.
fn plp(r: &mut WireReader<'_>) -> Result<Option<Vec<u8>>, ProtocolError> {
    let total = r.u64_le("PLP length")?;
    if total == u64::MAX {
        return Ok(None);
    }
    let mut out = Vec::new();
    loop {
        let chunk = r.u32_le("PLP chunk length")? as usize;
        if chunk == 0 {
            break;
        }
        out.extend_from_slice(r.bytes(chunk, "PLP chunk")?);
    }
    if total != 0xFFFF_FFFF_FFFF_FFFE && total != out.len() as u64 {
        return Err(ProtocolError::malformed(
            "PLP value",
            format!("announced {total} bytes, got {}", out.len()),
        ));
    }
    Ok(Some(out))
}

/// `datetime` (8 bytes: i32 days since 1900-01-01, u32 1/300 s ticks) or `smalldatetime` (4 bytes:
/// u16 days, u16 minutes) as a [`Value::DateTime`] [2.2.5.5.1.8].
fn datetime(b: &[u8]) -> Value {
    if b.len() == 4 {
        let days = u16::from_le_bytes([b[0], b[1]]);
        let minutes = u16::from_le_bytes([b[2], b[3]]);
        Value::DateTime {
            days: i32::from(days),
            ticks: u32::from(minutes) * 60 * 300,
        }
    } else {
        Value::DateTime {
            days: i32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            ticks: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        }
    }
}

fn u24(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], 0])
}

fn le_uint(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a[..b.len()].copy_from_slice(b);
    u64::from_le_bytes(a)
}

fn time_value(type_byte: u8, b: &[u8], tlen: usize, scale: u8) -> Result<Value, ProtocolError> {
    let extra = match type_byte {
        0x29 => 0,
        0x2A => 3,
        _ => 5,
    };
    if b.len() != tlen + extra {
        return Err(ProtocolError::malformed(
            "time value",
            format!("{} bytes for scale {scale}", b.len()),
        ));
    }
    let increments = le_uint(&b[..tlen]);
    Ok(match type_byte {
        0x29 => Value::Time { increments, scale },
        0x2A => Value::DateTime2 {
            days: u24(&b[tlen..]),
            increments,
            scale,
        },
        _ => Value::DateTimeOffset {
            days: u24(&b[tlen..tlen + 3]),
            increments,
            scale,
            offset_minutes: i16::from_le_bytes([b[tlen + 3], b[tlen + 4]]),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL_HEADERS: [u8; 22] = [
        22, 0, 0, 0, 18, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
    ];

    fn utf16(s: &str) -> Vec<u8> {
        s.encode_utf16().flat_map(u16::to_le_bytes).collect()
    }

    fn param(name: &str, type_and_value: &[u8]) -> Vec<u8> {
        let mut p = vec![name.encode_utf16().count() as u8];
        p.extend(utf16(name));
        p.push(0);
        p.extend_from_slice(type_and_value);
        p
    }

    fn rpc(params: &[Vec<u8>]) -> Vec<u8> {
        let mut m = ALL_HEADERS.to_vec();
        m.extend_from_slice(&[0xFF, 0xFF, 10, 0, 0, 0]);
        for p in params {
            m.extend_from_slice(p);
        }
        m
    }

    #[test]
    fn sql_batch_skips_all_headers() {
        let mut m = ALL_HEADERS.to_vec();
        m.extend(utf16("SELECT 1"));
        assert_eq!(decode_sql_batch(&m, true).unwrap(), "SELECT 1");
        // A TDS 7.1 client sends the text alone, without ALL_HEADERS.
        assert_eq!(
            decode_sql_batch(&utf16("SELECT 1"), false).unwrap(),
            "SELECT 1"
        );
        assert!(decode_sql_batch(&[2, 0, 0, 0], true).is_err());
        assert!(decode_sql_batch(&[200, 0, 0, 0, 1], true).is_err());
    }

    #[test]
    fn rpc_parameters_of_every_type_are_decoded() {
        let coll = [9, 4, 0xD0, 0, 0x34];
        let nv = |s: &str| -> Vec<u8> {
            let b = utf16(s);
            [
                vec![0xE7, 0x40, 0x1F],
                coll.to_vec(),
                (b.len() as u16).to_le_bytes().to_vec(),
                b,
            ]
            .concat()
        };
        let cases: Vec<(Vec<u8>, SqlType, Value)> = vec![
            (vec![0x1F], SqlType::Int, Value::Null),
            (
                vec![0x26, 4, 4, 0xFE, 0xFF, 0xFF, 0xFF],
                SqlType::Int,
                Value::Int(-2),
            ),
            (vec![0x26, 8, 0], SqlType::BigInt, Value::Null),
            (vec![0x26, 1, 1, 200], SqlType::TinyInt, Value::Int(200)),
            (vec![0x68, 1, 1, 1], SqlType::Bit, Value::Bit(true)),
            (
                [vec![0x6D, 8, 8], 1.5f64.to_le_bytes().to_vec()].concat(),
                SqlType::Float,
                Value::Float(1.5),
            ),
            (
                nv("hé"),
                SqlType::NVarChar(4000),
                Value::String("hé".into()),
            ),
            (
                [vec![0xE7, 0x40, 0x1F], coll.to_vec(), vec![0xFF, 0xFF]].concat(),
                SqlType::NVarChar(4000),
                Value::Null,
            ),
            (
                [
                    vec![0xE7, 0xFF, 0xFF],
                    coll.to_vec(),
                    vec![0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF],
                    vec![2, 0, 0, 0, b'a', 0],
                    vec![2, 0, 0, 0, b'b', 0],
                    vec![0; 4],
                ]
                .concat(),
                SqlType::NVarCharMax,
                Value::String("ab".into()),
            ),
            (
                [vec![0xA7, 10, 0], coll.to_vec(), vec![2, 0, 0x80, b'x']].concat(),
                SqlType::VarChar(10),
                Value::String("€x".into()),
            ),
            (
                vec![0xA5, 0x40, 0x1F, 2, 0, 1, 2],
                SqlType::VarBinary(8000),
                Value::Binary(vec![1, 2]),
            ),
            (
                [vec![0x24, 16, 16], (0u8..16).collect()].concat(),
                SqlType::UniqueIdentifier,
                Value::Guid(std::array::from_fn(|i| i as u8)),
            ),
            (
                vec![0x6C, 17, 25, 2, 5, 0, 0x39, 0x30, 0, 0],
                SqlType::Numeric {
                    precision: 25,
                    scale: 2,
                },
                Value::Numeric(-12345, 2),
            ),
            (
                vec![0x6F, 8, 8, 1, 0, 0, 0, 2, 0, 0, 0],
                SqlType::DateTime,
                Value::DateTime { days: 1, ticks: 2 },
            ),
            (vec![0x28, 3, 1, 2, 0], SqlType::Date, Value::Date(0x201)),
            (
                vec![0x29, 7, 5, 1, 0, 0, 0, 0],
                SqlType::Time(7),
                Value::Time {
                    increments: 1,
                    scale: 7,
                },
            ),
            (
                vec![0x2A, 0, 6, 1, 0, 0, 2, 0, 0],
                SqlType::DateTime2(0),
                Value::DateTime2 {
                    days: 2,
                    increments: 1,
                    scale: 0,
                },
            ),
            (
                vec![0x2B, 0, 8, 1, 0, 0, 2, 0, 0, 0x3C, 0],
                SqlType::DateTimeOffset(0),
                Value::DateTimeOffset {
                    days: 2,
                    increments: 1,
                    scale: 0,
                    offset_minutes: 60,
                },
            ),
            (
                [
                    vec![
                        0xF1, 0, 0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 4, 0, 0, 0,
                    ],
                    utf16("<a"),
                    vec![0; 4],
                ]
                .concat(),
                SqlType::Xml,
                Value::String("<a".into()),
            ),
        ];
        for (bytes, ty, value) in cases {
            let calls = decode_rpc(
                &rpc(&[
                    param("@P1", &bytes),
                    param("@P2", &[0x26, 4, 4, 1, 0, 0, 0]),
                ]),
                true,
            )
            .unwrap_or_else(|e| panic!("{bytes:02x?}: {e}"));
            assert_eq!(calls.len(), 1);
            assert_eq!(calls[0].proc_id, Some(10));
            let p = &calls[0].params;
            assert_eq!((&p[0].ty, &p[0].value), (&ty, &value), "{bytes:02x?}");
            assert_eq!(
                p[1].value,
                Value::Int(1),
                "the next parameter is still in step"
            );
        }
    }

    #[test]
    fn rpc_by_name_with_output_flag_and_batched_calls() {
        let mut m = ALL_HEADERS.to_vec();
        for _ in 0..2 {
            m.extend_from_slice(&[6, 0]);
            m.extend(utf16("sp_who"));
            m.extend_from_slice(&[0, 0]);
            let mut p = param("@x", &[0x26, 4, 0]);
            p[1 + 4] = 0x01; // status byte after the 2-unit name
            m.extend(p);
            m.push(0xFF);
        }
        let calls = decode_rpc(&m, true).unwrap();
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[1].proc_name.as_deref(), Some("sp_who"));
        assert!(calls[0].params[0].output);
        assert_eq!(calls[0].params[0].value, Value::Null);
    }

    #[test]
    fn unknown_parameter_types_and_garbage_are_errors() {
        let unknown = decode_rpc(&rpc(&[param("@P1", &[0x99, 1, 2])]), true);
        assert!(matches!(
            unknown,
            Err(RequestError::UnknownType {
                ordinal: 1,
                type_byte: 0x99,
                ..
            })
        ));
        for bytes in [
            vec![0x26, 4, 4, 1],
            vec![0x26, 3, 0],
            vec![0x6C, 17, 40, 0, 0],
            vec![0xE7, 0xFF, 0xFF, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0],
        ] {
            assert!(
                matches!(
                    decode_rpc(&rpc(&[param("@P1", &bytes)]), true),
                    Err(RequestError::Protocol(_))
                ),
                "{bytes:02x?}"
            );
        }
    }

    #[test]
    fn transaction_manager_requests_are_decoded() {
        let tm = |body: &[u8]| decode_tm(&[ALL_HEADERS.as_slice(), body].concat(), true).unwrap();
        assert_eq!(tm(&[5, 0, 0, 0]), TmRequest::Begin);
        assert_eq!(tm(&[7, 0, 0, 0]), TmRequest::Commit { begin_new: false });
        assert_eq!(tm(&[8, 0, 0, 1]), TmRequest::Rollback { begin_new: true });
        assert_eq!(tm(&[9, 0]), TmRequest::Other(9));
    }
}
