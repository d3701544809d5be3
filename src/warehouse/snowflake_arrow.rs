//! Snowflake result sets sent as an Arrow IPC stream (feature `snowflake-arrow`), decoded
//! into [`Value`]s the way Snowflake's connectors read them: `NUMBER` as integers (scaled by
//! the column's `scale`) or decimals, timestamps as `epoch`/`fraction` structs or scaled
//! integers, dates as days.

use super::snowflake::{Column, date_text, timestamp_text};
use crate::model::Value;
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal128Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type,
};
use arrow_array::{Array, ArrayRef};
use arrow_schema::DataType;

/// Appends the rows of an IPC stream to `rows`, stopping at `max`; true when rows were left.
pub(super) fn read(
    bytes: &[u8],
    columns: &[Column],
    rows: &mut Vec<Vec<Value>>,
    max: u64,
) -> Result<bool, String> {
    let reader = arrow_ipc::reader::StreamReader::try_new(bytes, None)
        .map_err(|e| format!("the Arrow result cannot be read: {e}"))?;
    for batch in reader {
        let batch = batch.map_err(|e| format!("the Arrow result cannot be read: {e}"))?;
        for r in 0..batch.num_rows() {
            if rows.len() as u64 >= max {
                return Ok(true);
            }
            rows.push(
                batch
                    .columns()
                    .iter()
                    .enumerate()
                    .map(|(i, a)| cell(a, r, columns.get(i)))
                    .collect(),
            );
        }
    }
    Ok(false)
}

fn scaled(v: i64, scale: i64) -> Value {
    if scale <= 0 {
        Value::Int(v)
    } else {
        Value::Float(v as f64 / 10f64.powi(scale as i32))
    }
}

fn cell(a: &ArrayRef, r: usize, col: Option<&Column>) -> Value {
    if a.is_null(r) {
        return Value::Null;
    }
    let kind = col.map_or("", |c| c.kind.as_str());
    let scale = col.map_or(0, |c| c.scale);
    let ts = kind.starts_with("timestamp");
    let int = |v: i64| {
        if ts {
            // Real Snowflake: an integer in units of 10^-scale seconds.
            let unit = 10i64.pow(scale.clamp(0, 9) as u32);
            let nanos =
                (v.rem_euclid(unit) as u64 * 10u64.pow(9 - scale.clamp(0, 9) as u32)) as u32;
            timestamp_text(v.div_euclid(unit), nanos, kind != "timestamp_ntz")
                .map_or_else(|| Value::Unsupported(kind.to_string()), Value::Text)
        } else {
            scaled(v, scale)
        }
    };
    match a.data_type() {
        DataType::Boolean => Value::Bool(a.as_boolean().value(r)),
        DataType::Int8 => int(a.as_primitive::<Int8Type>().value(r).into()),
        DataType::Int16 => int(a.as_primitive::<Int16Type>().value(r).into()),
        DataType::Int32 => int(a.as_primitive::<Int32Type>().value(r).into()),
        DataType::Int64 => int(a.as_primitive::<Int64Type>().value(r)),
        DataType::Float32 => Value::Float(a.as_primitive::<Float32Type>().value(r).into()),
        DataType::Float64 => Value::Float(a.as_primitive::<Float64Type>().value(r)),
        DataType::Decimal128(_, s) => {
            let v = a.as_primitive::<Decimal128Type>().value(r);
            if *s == 0
                && let Ok(i) = i64::try_from(v)
            {
                Value::Int(i)
            } else {
                Value::Float(v as f64 / 10f64.powi(i32::from(*s)))
            }
        }
        DataType::Utf8 => Value::Text(a.as_string::<i32>().value(r).to_string()),
        DataType::LargeUtf8 => Value::Text(a.as_string::<i64>().value(r).to_string()),
        DataType::Date32 => date_text(a.as_primitive::<Date32Type>().value(r).into())
            .map_or_else(|| Value::Unsupported("DATE".into()), Value::Text),
        DataType::Struct(_) => {
            let s = a.as_struct();
            let epoch = s
                .column_by_name("epoch")
                .and_then(|c| c.as_primitive_opt::<Int64Type>())
                .map(|c| c.value(r));
            let fraction = s
                .column_by_name("fraction")
                .and_then(|c| c.as_primitive_opt::<Int32Type>())
                .map(|c| c.value(r));
            match (epoch, fraction) {
                (Some(e), Some(f)) => timestamp_text(
                    e,
                    u32::try_from(f).unwrap_or(0),
                    s.column_by_name("timezone").is_some() || kind != "timestamp_ntz",
                )
                .map_or_else(|| Value::Unsupported("TIMESTAMP".into()), Value::Text),
                _ => Value::Unsupported(format!("{kind} (struct)")),
            }
        }
        other => Value::Unsupported(format!("{} ({other})", kind.to_ascii_uppercase())),
    }
}
