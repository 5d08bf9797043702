//! Everything the `weir` command prints goes through here, so that no secret of the pipeline file (a
//! password, a value from the environment) reaches the terminal, a log file or a log collector.
//!
//! The secrets are known once the file is read ([`hide`]); what is printed before that (argument errors)
//! holds none.

use std::borrow::Cow;
use std::io::Write;
use std::sync::OnceLock;

use weir::secrets::Secrets;

static SECRETS: OnceLock<Secrets> = OnceLock::new();

/// From now on, prints `***` in place of `secrets`.
pub(crate) fn hide(secrets: &Secrets) {
    let _ = SECRETS.set(secrets.clone());
}

/// `text` with the secrets masked.
pub(crate) fn redact(text: &str) -> Cow<'_, str> {
    match SECRETS.get() {
        Some(secrets) => secrets.redact(text),
        None => Cow::Borrowed(text),
    }
}

/// Standard error for log lines, masked. tracing-subscriber formats each event whole and hands it over in
/// one `write`, so a secret is never split between two calls.
pub(crate) struct Stderr;

impl Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        std::io::stderr().write_all(redact(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}
