//! The nearest known key to a misspelt one, for "unknown key" errors (`startingOfsets` → `startingOffsets`).

/// Similarity (Jaro-Winkler, 0 to 1) above which a known key is offered; clap offers subcommands at 0.7,
/// keys are longer and share prefixes more often, so a little more is asked.
const THRESHOLD: f64 = 0.8;

/// The known key most like `key`, when one is like it enough (patterns such as `kafka.*` are skipped).
pub(crate) fn nearest_key<'a>(key: &str, known: &[&'a str]) -> Option<&'a str> {
    let key = key.to_ascii_lowercase();
    known
        .iter()
        .filter(|k| !k.contains('*'))
        .map(|k| (strsim::jaro_winkler(&key, &k.to_ascii_lowercase()), *k))
        .filter(|(score, _)| *score >= THRESHOLD)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}

/// "unknown {what}; expected one of: …", with the nearest known key offered first when there is one.
pub(crate) fn unknown_key_message(what: &str, key: &str, known: &[&str]) -> String {
    let hint = nearest_key(key, known)
        .map(|k| format!("did you mean `{k}`? "))
        .unwrap_or_default();
    format!(
        "unknown {what}; {hint}expected one of: {}",
        known.join(", ")
    )
}

#[cfg(test)]
mod tests {
    /// `nearest_key` by example (a unit test: doc tests cannot reach crate-private items).
    #[test]
    fn nearest_key_example() {
        use crate::spelling::nearest_key;
        let known = ["subscribe", "startingOffsets", "endingOffsets"];
        assert_eq!(
            nearest_key("startingOfsets", &known),
            Some("startingOffsets")
        );
        assert_eq!(nearest_key("banana", &known), None);
    }
}
