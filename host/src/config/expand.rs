//! `${VAR}` and `${VAR:-default}` in pipeline-file strings, so one file runs against any broker.
//!
//! Expansion happens on parsed string values, never on the raw text, so a value holding quotes cannot break
//! the TOML around it. `$$` stands for a literal `$`. What the environment supplied, and every value of a
//! secret key, is noted as a secret on the way.

use std::cell::RefCell;

use super::ConfigError;
use crate::secrets::{is_secret_key, Secrets};

/// Expands every string in `table` (nested tables and arrays too) with `env`, and adds to `secrets` the
/// values `env` supplied and the values of secret keys.
pub(super) fn expand_table(
    file: &str,
    table: &mut toml::Table,
    env: &impl Fn(&str) -> Option<String>,
    secrets: &mut Secrets,
) -> Result<(), ConfigError> {
    let collecting = RefCell::new(std::mem::take(secrets));
    let lookup = |name: &str| {
        let value = env(name);
        if let Some(value) = &value {
            collecting.borrow_mut().add_from_environment(value);
        }
        value
    };
    let mut expanded = Ok(());
    for (key, value) in table.iter_mut() {
        expanded = expanded.and_then(|()| expand_value(file, key, value, &lookup, &collecting));
    }
    let collected = collecting.into_inner();
    if let Err(error) = &mut expanded {
        error.message = collected.redact(&error.message).into_owned();
    }
    *secrets = collected;
    expanded
}

fn expand_value(
    file: &str,
    key: &str,
    value: &mut toml::Value,
    env: &impl Fn(&str) -> Option<String>,
    secrets: &RefCell<Secrets>,
) -> Result<(), ConfigError> {
    match value {
        toml::Value::String(s) => {
            *s = expand(s, env).map_err(|e| ConfigError::new(file, key, e))?;
            if is_secret_key(key) {
                secrets.borrow_mut().add_secret(s);
            }
        }
        toml::Value::Table(table) => {
            for (name, item) in table.iter_mut() {
                expand_value(file, &format!("{key}.{name}"), item, env, secrets)?;
            }
        }
        toml::Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                expand_value(file, &format!("{key}[{i}]"), item, env, secrets)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Expands the variables in `text` with `lookup`; returns the name of the first unset variable without a
/// default as the error, or a description of a malformed reference.
///
/// ```
/// use weir::config::expand;
/// let env = |name: &str| (name == "BROKER").then(|| "10.0.0.1:9092".to_string());
/// assert_eq!(expand("${BROKER}", env).unwrap(), "10.0.0.1:9092");
/// assert_eq!(expand("${PORT:-9092}", env).unwrap(), "9092");
/// assert_eq!(expand("cost: $$5", env).unwrap(), "cost: $5");
/// assert!(expand("${MISSING}", env).unwrap_err().contains("MISSING"));
/// ```
pub fn expand(text: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body
                .find('}')
                .ok_or_else(|| format!("`${{` without a closing `}}` in {text:?}"))?;
            let reference = &body[..end];
            let (name, default) = match reference.split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (reference, None),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("`${{{reference}}}` is not a variable reference (expected ${{NAME}} or ${{NAME:-default}})"));
            }
            match (lookup(name), default) {
                (Some(value), _) => out.push_str(&value),
                (None, Some(default)) => out.push_str(default),
                (None, None) => {
                    return Err(format!("environment variable {name} is not set and `${{{name}}}` has no default (write `${{{name}:-default}}`)"))
                }
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn leaves_plain_dollars_and_text_alone() {
        assert_eq!(expand("a $b c$", none).unwrap(), "a $b c$");
        assert_eq!(expand("", none).unwrap(), "");
    }

    #[test]
    fn set_value_beats_default_and_empty_default_is_allowed() {
        let env = |_: &str| Some("set".to_string());
        assert_eq!(expand("${X:-unset}", env).unwrap(), "set");
        assert_eq!(expand("<${X:-}>", none).unwrap(), "<>");
    }

    #[test]
    fn malformed_references_are_errors() {
        assert!(expand("${X", none).unwrap_err().contains("closing"));
        assert!(expand("${}", none).unwrap_err().contains("not a variable"));
        assert!(expand("${A B}", none)
            .unwrap_err()
            .contains("not a variable"));
    }
}
