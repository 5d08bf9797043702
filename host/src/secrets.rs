//! Secrets kept out of everything Weir prints: passwords, tokens and keys in the pipeline file, and every
//! value taken from the environment with `${VAR}`.
//!
//! Weir passes `kafka.*` options to librdkafka untouched, and errors, logs, plans and progress can echo
//! what the user wrote (a broker address in an error, a topic in a plan). So rather than guard each place
//! that formats a value, the values themselves are collected while the file is read ([`Secrets`]) and
//! masked in the finished text ([`Secrets::redact`]), which catches librdkafka's messages too. The
//! `weir` binary redacts its log lines, errors, plans and progress lines this way; a program that embeds
//! Weir redacts what it prints with [`Pipeline::secrets`](crate::Pipeline::secrets).
//!
//! A value is kept secret when its key names a password, secret, token, credential or key material
//! ([`is_secret_key`]), or when it came from the environment. Values from the environment that are numbers,
//! `true`/`false` or shorter than [`MIN_LEN`] characters are not masked: masking `4` would mask every 4 in
//! the output. No secret is that short.

use std::borrow::Cow;
use std::fmt;

/// What is printed in place of a secret.
pub const REDACTED: &str = "***";

/// Values shorter than this are never masked (see the module's documentation).
pub const MIN_LEN: usize = 4;

/// Words in a key that mark its value as secret (compared in lower case).
const SECRET_WORDS: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "token",
    "credential",
    "jaas",
    "private",
    "ssl.key",
    "api.key",
    "apikey",
    "api_key",
    "oauthbearer.config",
    "user.info",
];

/// Whether the value of `key` is secret: it names a password, secret, token, credential or key material.
///
/// ```
/// use weir::secrets::is_secret_key;
/// assert!(is_secret_key("kafka.sasl.password"));
/// assert!(is_secret_key("kafka.ssl.key.pem"));
/// assert!(is_secret_key("kafka.sasl.oauthbearer.client.secret"));
/// assert!(!is_secret_key("kafka.sasl.username"));
/// ```
pub fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    SECRET_WORDS.iter().any(|word| key.contains(word))
}

/// The values to mask, longest first (so a secret that contains another is masked whole).
///
/// ```
/// use weir::secrets::Secrets;
/// let mut secrets = Secrets::default();
/// secrets.add_secret("s3cret-pa\"ss");
/// secrets.add_from_environment("broker.internal:9093");
/// secrets.add_from_environment("9093"); // a number: left alone
/// assert_eq!(
///     secrets.redact("login to broker.internal:9093 with s3cret-pa\"ss on port 9093"),
///     "login to *** with *** on port 9093"
/// );
/// // The JSON-escaped form is masked too, for JSON log and progress lines.
/// assert_eq!(secrets.redact(r#"{"password":"s3cret-pa\"ss"}"#), r#"{"password":"***"}"#);
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secrets {
    values: Vec<String>,
}

impl Secrets {
    /// Masks `value` wherever it appears (if it has at least [`MIN_LEN`] characters).
    pub fn add_secret(&mut self, value: &str) {
        if value.chars().count() < MIN_LEN {
            return;
        }
        let escaped = serde_json::to_string(value).unwrap_or_default();
        let escaped = escaped.trim_matches('"');
        for form in [value, escaped] {
            if !self.values.iter().any(|v| v == form) {
                self.values.push(form.to_string());
            }
        }
        self.values
            .sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    }

    /// Masks `value`, taken from the environment, unless it is a number or `true`/`false`.
    pub fn add_from_environment(&mut self, value: &str) {
        let plain = value.parse::<f64>().is_ok() || value == "true" || value == "false";
        if !plain {
            self.add_secret(value);
        }
    }

    /// Adds every value of `other`.
    pub fn extend(&mut self, other: &Secrets) {
        for value in &other.values {
            self.add_secret(value);
        }
    }

    /// Whether there is nothing to mask.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// `text` with every secret replaced by [`REDACTED`].
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut text = Cow::Borrowed(text);
        for value in &self.values {
            if text.contains(value.as_str()) {
                text = Cow::Owned(text.replace(value.as_str(), REDACTED));
            }
        }
        text
    }
}

/// Shows how many values are held, never the values.
impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secrets({} values)", self.values.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_values_and_environment_numbers_are_left_alone() {
        let mut secrets = Secrets::default();
        secrets.add_secret("abc");
        secrets.add_from_environment("1000");
        secrets.add_from_environment("true");
        assert!(secrets.is_empty());
        assert_eq!(secrets.redact("abc 1000 true"), "abc 1000 true");
    }

    #[test]
    fn the_longest_secret_is_masked_whole() {
        let mut secrets = Secrets::default();
        secrets.add_secret("pass");
        secrets.add_secret("password-long");
        assert_eq!(secrets.redact("x password-long y pass"), "x *** y ***");
    }

    #[test]
    fn debug_never_shows_a_value() {
        let mut secrets = Secrets::default();
        secrets.add_secret("hunter22");
        assert!(!format!("{secrets:?}").contains("hunter22"));
    }
}
