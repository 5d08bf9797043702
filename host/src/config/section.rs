//! Reading one table of a pipeline file, with the file and the full key in every error.
//!
//! Each getter removes the key it reads; [`Section::finish`] then reports whatever is left as an unknown
//! key, so a typo never passes silently.

use std::collections::BTreeMap;

use super::ConfigError;

/// A table of the pipeline file being read.
pub(crate) struct Section<'a> {
    file: &'a str,
    path: String,
    table: toml::Table,
}

impl<'a> Section<'a> {
    pub(crate) fn new(file: &'a str, path: impl Into<String>, table: toml::Table) -> Self {
        Section {
            file,
            path: path.into(),
            table,
        }
    }

    /// The dotted key of `key` in this section, as errors show it.
    pub(crate) fn key(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    pub(crate) fn error(&self, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::new(self.file, self.key(key), message)
    }

    pub(crate) fn file(&self) -> &'a str {
        self.file
    }

    /// Whether any of `keys` is still unread.
    pub(crate) fn has_any(&self, keys: &[&str]) -> bool {
        keys.iter().any(|k| self.table.contains_key(*k))
    }

    /// An optional string; numbers and booleans are refused so that `timeout = 5` cannot mean five what.
    pub(crate) fn string(&mut self, key: &str) -> Result<Option<String>, ConfigError> {
        match self.table.remove(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(self.error(
                key,
                format!("expected a string, found {}", other.type_str()),
            )),
        }
    }

    /// A string parsed by `parse`, whose error message is put behind the key.
    pub(crate) fn parsed<T>(
        &mut self,
        key: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        match self.string(key)? {
            None => Ok(None),
            Some(text) => parse(&text).map(Some).map_err(|e| self.error(key, e)),
        }
    }

    /// A list of strings; a single string is taken as a list of one.
    pub(crate) fn strings(&mut self, key: &str) -> Result<Option<Vec<String>>, ConfigError> {
        match self.table.remove(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(vec![s])),
            Some(toml::Value::Array(items)) => items
                .into_iter()
                .map(|item| match item {
                    toml::Value::String(s) => Ok(s),
                    other => Err(self.error(
                        key,
                        format!(
                            "expected a list of strings, found {} in it",
                            other.type_str()
                        ),
                    )),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(other) => Err(self.error(
                key,
                format!("expected a list of strings, found {}", other.type_str()),
            )),
        }
    }

    /// An optional positive integer.
    pub(crate) fn integer(&mut self, key: &str) -> Result<Option<i64>, ConfigError> {
        match self.table.remove(key) {
            None => Ok(None),
            Some(toml::Value::Integer(i)) if i > 0 => Ok(Some(i)),
            Some(other) => {
                Err(self.error(key, format!("expected a positive integer, found {other}")))
            }
        }
    }

    /// An optional `true` or `false`.
    pub(crate) fn boolean(&mut self, key: &str) -> Result<Option<bool>, ConfigError> {
        match self.table.remove(key) {
            None => Ok(None),
            Some(toml::Value::Boolean(b)) => Ok(Some(b)),
            Some(other) => Err(self.error(key, format!("expected true or false, found {other}"))),
        }
    }

    pub(crate) fn table(&mut self, key: &str) -> Result<Option<Section<'a>>, ConfigError> {
        match self.table.remove(key) {
            None => Ok(None),
            Some(toml::Value::Table(table)) => {
                Ok(Some(Section::new(self.file, self.key(key), table)))
            }
            Some(other) => {
                Err(self.error(key, format!("expected a table, found {}", other.type_str())))
            }
        }
    }

    pub(crate) fn array_of_tables(&mut self, key: &str) -> Result<Vec<Section<'a>>, ConfigError> {
        match self.table.remove(key) {
            None => Ok(Vec::new()),
            Some(toml::Value::Array(items)) => items
                .into_iter()
                .enumerate()
                .map(|(i, item)| match item {
                    toml::Value::Table(table) => Ok(Section::new(
                        self.file,
                        format!("{}[{i}]", self.key(key)),
                        table,
                    )),
                    other => Err(self.error(
                        key,
                        format!("expected tables ([[{key}]]), found {}", other.type_str()),
                    )),
                })
                .collect(),
            Some(other) => Err(self.error(
                key,
                format!("expected [[{key}]] tables, found {}", other.type_str()),
            )),
        }
    }

    /// Takes the whole rest of the table as JSON, for a UDF's free-form `config`.
    pub(crate) fn into_json(self) -> serde_json::Value {
        serde_json::to_value(self.table).unwrap_or(serde_json::Value::Null)
    }

    /// Takes the rest of the table as Spark-style string options: nested tables become dotted keys (so
    /// `kafka.bootstrap.servers = "..."` works unquoted) and scalars become their text.
    pub(crate) fn into_options(self) -> Result<BTreeMap<String, String>, ConfigError> {
        let mut options = BTreeMap::new();
        flatten(self.file, &self.path, "", self.table, &mut options)?;
        Ok(options)
    }

    /// Fails on the first key no getter read.
    pub(crate) fn finish(self, expected: &[&str]) -> Result<(), ConfigError> {
        match self.table.keys().next() {
            None => Ok(()),
            Some(key) => Err(self.error(
                key,
                crate::spelling::unknown_key_message("key", key, expected),
            )),
        }
    }
}

fn flatten(
    file: &str,
    section: &str,
    prefix: &str,
    table: toml::Table,
    out: &mut BTreeMap<String, String>,
) -> Result<(), ConfigError> {
    for (key, value) in table {
        let key = if prefix.is_empty() {
            key
        } else {
            format!("{prefix}.{key}")
        };
        let text = match value {
            toml::Value::Table(inner) => {
                flatten(file, section, &key, inner, out)?;
                continue;
            }
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            other => {
                return Err(ConfigError::new(
                    file,
                    format!("{section}.{key}"),
                    format!(
                        "expected a string, number or boolean option, found {}",
                        other.type_str()
                    ),
                ))
            }
        };
        out.insert(key, text);
    }
    Ok(())
}
