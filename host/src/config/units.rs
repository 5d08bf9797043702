//! Durations and byte sizes as people write them in pipeline files: `"5s"`, `"250ms"`, `"64MiB"`.

use std::time::Duration;

/// Parses a duration such as `"5s"`, `"250ms"`, `"1m"` or Spark's `"10 seconds"`.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(weir::config::parse_duration("250ms").unwrap(), Duration::from_millis(250));
/// assert_eq!(weir::config::parse_duration("10 seconds").unwrap(), Duration::from_secs(10));
/// assert!(weir::config::parse_duration("soon").is_err());
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(text).map_err(|e| {
        format!("{text:?} is not a duration ({e}); write e.g. \"500ms\", \"5s\" or \"1m\"")
    })
}

/// Parses a byte size: a plain number of bytes or a number with `KiB`, `MiB`, `GiB` (or `KB`, `MB`, `GB`,
/// also taken as powers of 1024).
///
/// ```
/// assert_eq!(weir::config::parse_size("64MiB").unwrap(), 64 << 20);
/// assert_eq!(weir::config::parse_size("4096").unwrap(), 4096);
/// assert!(weir::config::parse_size("lots").is_err());
/// ```
pub fn parse_size(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let number: u64 = number.parse().map_err(|_| {
        format!("{text:?} is not a size; write e.g. \"64MiB\" or a number of bytes")
    })?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        other => {
            return Err(format!(
                "{text:?} has an unknown unit {other:?}; use KiB, MiB or GiB"
            ))
        }
    };
    number
        .checked_mul(1 << shift)
        .ok_or_else(|| format!("{text:?} is too large"))
}
