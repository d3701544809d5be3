//! Row cells → [`Value`], dispatched on each driver's type name. Decoding is strictly typed
//! in sqlx (NUMERIC is neither `f64` nor `String`), so every numeric kind is named here;
//! anything else becomes `Value::Unsupported`, which a check only minds if it reads it.

use crate::model::Value;
use bigdecimal::ToPrimitive;
use sqlx::mysql::MySqlRow;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::types::BigDecimal;
use sqlx::{Row, TypeInfo, ValueRef};

fn numeric(d: Result<BigDecimal, sqlx::Error>, ty: &str) -> Value {
    match d.ok().and_then(|d| d.to_f64()) {
        Some(f) => Value::Float(f),
        None => Value::Unsupported(format!("{ty} (not a finite number)")),
    }
}

fn or_unsupported<T>(r: Result<T, sqlx::Error>, ty: &str, f: impl FnOnce(T) -> Value) -> Value {
    r.map_or_else(|_| Value::Unsupported(ty.to_string()), f)
}

/// Decodes one PostgreSQL row.
pub(super) fn pg(row: &PgRow) -> Vec<Value> {
    (0..row.len())
        .map(|i| {
            let raw = match row.try_get_raw(i) {
                Ok(r) if r.is_null() => return Value::Null,
                Ok(r) => r,
                Err(_) => return Value::Unsupported("?".into()),
            };
            let ty = raw.type_info().name().to_string();
            match ty.as_str() {
                "BOOL" => or_unsupported(row.try_get::<bool, _>(i), &ty, Value::Bool),
                "INT2" => or_unsupported(row.try_get::<i16, _>(i), &ty, |v| Value::Int(v.into())),
                "INT4" => or_unsupported(row.try_get::<i32, _>(i), &ty, |v| Value::Int(v.into())),
                "INT8" => or_unsupported(row.try_get::<i64, _>(i), &ty, Value::Int),
                "FLOAT4" => {
                    or_unsupported(row.try_get::<f32, _>(i), &ty, |v| Value::Float(v.into()))
                }
                "FLOAT8" => or_unsupported(row.try_get::<f64, _>(i), &ty, Value::Float),
                "NUMERIC" => numeric(row.try_get::<BigDecimal, _>(i), &ty),
                "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" | "CHAR" | "\"CHAR\"" | "UNKNOWN" => {
                    or_unsupported(row.try_get::<String, _>(i), &ty, Value::Text)
                }
                "DATE" => or_unsupported(row.try_get::<chrono::NaiveDate, _>(i), &ty, |d| {
                    Value::Text(d.to_string())
                }),
                "TIMESTAMP" => {
                    or_unsupported(row.try_get::<chrono::NaiveDateTime, _>(i), &ty, |d| {
                        Value::Text(d.format("%Y-%m-%dT%H:%M:%S%.f").to_string())
                    })
                }
                "TIMESTAMPTZ" => or_unsupported(
                    row.try_get::<chrono::DateTime<chrono::Utc>, _>(i),
                    &ty,
                    |d| Value::Text(d.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
                ),
                "TIME" => or_unsupported(row.try_get::<chrono::NaiveTime, _>(i), &ty, |d| {
                    Value::Text(d.to_string())
                }),
                "UUID" => or_unsupported(row.try_get::<sqlx::types::Uuid, _>(i), &ty, |u| {
                    Value::Text(u.to_string())
                }),
                "JSON" | "JSONB" => {
                    or_unsupported(row.try_get::<serde_json::Value, _>(i), &ty, |v| {
                        Value::Text(v.to_string())
                    })
                }
                _ => Value::Unsupported(ty),
            }
        })
        .collect()
}

/// Decodes one MySQL / MariaDB row.
pub(super) fn mysql(row: &MySqlRow) -> Vec<Value> {
    (0..row.len())
        .map(|i| {
            let raw = match row.try_get_raw(i) {
                Ok(r) if r.is_null() => return Value::Null,
                Ok(r) => r,
                Err(_) => return Value::Unsupported("?".into()),
            };
            let ty = raw.type_info().name().to_string();
            match ty.as_str() {
                // MySQL has no boolean: `x > 0` is an integer, and a metric may be one.
                "BOOLEAN" | "TINYINT" | "SMALLINT" | "MEDIUMINT" | "INT" | "BIGINT" | "YEAR" => {
                    or_unsupported(row.try_get::<i64, _>(i), &ty, Value::Int)
                }
                "TINYINT UNSIGNED" | "SMALLINT UNSIGNED" | "MEDIUMINT UNSIGNED"
                | "INT UNSIGNED" | "BIGINT UNSIGNED" => {
                    or_unsupported(row.try_get::<u64, _>(i), &ty, |v| {
                        i64::try_from(v).map_or(Value::Float(v as f64), Value::Int)
                    })
                }
                "FLOAT" => {
                    or_unsupported(row.try_get::<f32, _>(i), &ty, |v| Value::Float(v.into()))
                }
                "DOUBLE" => or_unsupported(row.try_get::<f64, _>(i), &ty, Value::Float),
                "DECIMAL" => numeric(row.try_get::<BigDecimal, _>(i), &ty),
                "DATE" => or_unsupported(row.try_get::<chrono::NaiveDate, _>(i), &ty, |d| {
                    Value::Text(d.to_string())
                }),
                "DATETIME" | "TIMESTAMP" => {
                    or_unsupported(row.try_get::<chrono::NaiveDateTime, _>(i), &ty, |d| {
                        Value::Text(d.format("%Y-%m-%dT%H:%M:%S%.f").to_string())
                    })
                }
                "TIME" => or_unsupported(row.try_get::<chrono::NaiveTime, _>(i), &ty, |d| {
                    Value::Text(d.to_string())
                }),
                _ => match row.try_get::<String, _>(i) {
                    Ok(s) => Value::Text(s),
                    // Binary collations report text as VARBINARY/BLOB.
                    Err(_) => match row.try_get::<Vec<u8>, _>(i).map(String::from_utf8) {
                        Ok(Ok(s)) => Value::Text(s),
                        _ => Value::Unsupported(ty),
                    },
                },
            }
        })
        .collect()
}

/// Decodes one SQLite row, by each value's storage class (expression columns have no
/// declared type).
pub(super) fn sqlite(row: &SqliteRow) -> Vec<Value> {
    (0..row.len())
        .map(|i| {
            let raw = match row.try_get_raw(i) {
                Ok(r) if r.is_null() => return Value::Null,
                Ok(r) => r,
                Err(_) => return Value::Unsupported("?".into()),
            };
            let ty = raw.type_info().name().to_string();
            match ty.as_str() {
                "INTEGER" => or_unsupported(row.try_get::<i64, _>(i), &ty, Value::Int),
                "REAL" => or_unsupported(row.try_get::<f64, _>(i), &ty, Value::Float),
                "TEXT" => or_unsupported(row.try_get::<String, _>(i), &ty, Value::Text),
                _ => Value::Unsupported(ty),
            }
        })
        .collect()
}
