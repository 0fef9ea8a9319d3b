//! Sizes, CPU counts and file modes as Compose writes them.

use serde_json::Value;

/// Parses a byte size the way Docker's `units.RAMInBytes` does: a decimal number with an
/// optional unit `b`, `k`, `m`, `g`, `t`, `p` (case-insensitive, optionally followed by `b` or
/// `ib`), all binary multiples: `512m` is 512 MiB, `1.5G` is 1.5 GiB. A JSON number is bytes.
pub fn parse_bytes(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .filter(|n| *n >= 0),
        Value::String(s) => parse_bytes_str(s),
        _ => None,
    }
}

fn parse_bytes_str(s: &str) -> Option<i64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let num: f64 = num.parse().ok()?;
    let unit = unit.trim().to_ascii_lowercase();
    let unit = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('b').filter(|u| !u.is_empty()))
        .unwrap_or(&unit);
    let mult: f64 = match unit {
        "" | "b" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => return None,
    };
    let bytes = num * mult;
    (bytes.is_finite() && bytes >= 0.0 && bytes < i64::MAX as f64).then_some(bytes as i64)
}

/// Parses a CPU count (`0.5`, `"1.5"`, `2`) into Docker's NanoCPUs (billionths of a CPU).
pub fn parse_nano_cpus(v: &Value) -> Option<i64> {
    let f = match v {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    (f.is_finite() && f >= 0.0).then(|| (f * 1e9).round() as i64)
}

/// Parses a file mode. Strings are octal (`"1777"`, `"0o755"`); so are integers whose digits
/// are all octal, because Compose's documentation says "mode in octal" and people write
/// `mode: 1777` meaning the sticky, world-writable mode, which YAML reads as decimal 1777.
pub fn parse_mode(v: &Value) -> Option<u32> {
    let digits = match v {
        Value::Number(n) => n.as_u64()?.to_string(),
        Value::String(s) => s.trim().trim_start_matches("0o").to_string(),
        _ => return None,
    };
    u32::from_str_radix(&digits, 8).ok()
}

/// Parses an integer given as a number or a numeric string.
pub fn parse_int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn byte_sizes() {
        let cases: &[(Value, Option<i64>)] = &[
            (json!("512m"), Some(512 << 20)),
            (json!("1g"), Some(1 << 30)),
            (json!("1.5G"), Some(3 << 29)),
            (json!("64mb"), Some(64 << 20)),
            (json!("2GiB"), Some(2 << 30)),
            (json!("100k"), Some(100 << 10)),
            (json!("1024"), Some(1024)),
            (json!("10b"), Some(10)),
            (json!(4096), Some(4096)),
            (json!("lots"), None),
            (json!("5x"), None),
            (json!(-1), None),
            (json!(true), None),
        ];
        for (input, want) in cases {
            assert_eq!(parse_bytes(input), *want, "{input}");
        }
    }

    #[test]
    fn cpus() {
        assert_eq!(parse_nano_cpus(&json!(0.5)), Some(500_000_000));
        assert_eq!(parse_nano_cpus(&json!("1.5")), Some(1_500_000_000));
        assert_eq!(parse_nano_cpus(&json!(2)), Some(2_000_000_000));
        assert_eq!(parse_nano_cpus(&json!("two")), None);
        assert_eq!(parse_nano_cpus(&json!(-1)), None);
    }

    #[test]
    fn modes() {
        assert_eq!(parse_mode(&json!(1777)), Some(0o1777));
        assert_eq!(parse_mode(&json!("0755")), Some(0o755));
        assert_eq!(parse_mode(&json!("0o700")), Some(0o700));
        assert_eq!(parse_mode(&json!(789)), None);
    }
}
