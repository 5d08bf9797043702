//! Guest stdout and stderr, kept in a bounded buffer and forwarded to the host's log after each call.
//!
//! A UDF may print for debugging, or print forever if it is hostile. Writes past the per-call cap are
//! accepted and counted but not kept, so printing never fails the guest and never grows host memory.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// The shared buffer behind a guest's stdout and stderr.
#[derive(Clone)]
pub(crate) struct GuestLog {
    inner: Arc<Mutex<LogBuffer>>,
}

struct LogBuffer {
    kept: Vec<u8>,
    cap: usize,
    dropped: u64,
}

/// What a guest printed during one call.
pub(crate) struct Printed {
    pub(crate) text: String,
    pub(crate) dropped: u64,
}

impl GuestLog {
    pub(crate) fn new(cap: u64) -> Self {
        let cap = usize::try_from(cap).unwrap_or(usize::MAX);
        GuestLog {
            inner: Arc::new(Mutex::new(LogBuffer {
                kept: Vec::new(),
                cap,
                dropped: 0,
            })),
        }
    }

    pub(crate) fn append(&self, bytes: &[u8]) {
        let mut buffer = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let room = buffer.cap.saturating_sub(buffer.kept.len());
        let kept = bytes.len().min(room);
        buffer.kept.extend_from_slice(&bytes[..kept]);
        buffer.dropped += (bytes.len() - kept) as u64;
    }

    /// Empties the buffer, returning what the last call printed.
    pub(crate) fn take(&self) -> Printed {
        let mut buffer = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let text = String::from_utf8_lossy(&buffer.kept).into_owned();
        buffer.kept.clear();
        let dropped = std::mem::take(&mut buffer.dropped);
        Printed { text, dropped }
    }

    /// Empties the buffer, returning the end of what the last call printed (its last 2,000 bytes) as a
    /// clause for an error (`; the guest printed: …`), or nothing when it printed nothing: a panic message
    /// or a Python traceback ends there.
    pub(crate) fn take_tail(&self) -> String {
        let printed = self.take();
        let text = printed.text.trim_end();
        let start = text.len().saturating_sub(2000);
        let start = (start..=text.len())
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(text.len());
        if text[start..].is_empty() {
            String::new()
        } else {
            format!("; the guest printed: {}", &text[start..])
        }
    }
}

impl IsTerminal for GuestLog {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestLog {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for GuestLog {
    async fn ready(&mut self) {}
}

impl OutputStream for GuestLog {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.append(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        // Always room: bytes past the cap are counted and dropped in `append`.
        Ok(64 * 1024)
    }
}

impl tokio::io::AsyncWrite for GuestLog {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.append(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
