//! The byte-level contract between the Weir host and a UDF module: ABI v1.
//!
//! This module exists so that the host and the Rust SDK share one definition of every export name, status code
//! and envelope layout; `docs/abi.md` describes the same contract for guests written in other languages.
//! Nothing here depends on running inside WebAssembly, which is why the host links it too.
//!
//! # Changelog
//! - **v1.0**: first version: `weir_abi_v1`, `weir_kind`, `weir_alloc`, `weir_free`, `weir_init`,
//!   `weir_process`; results as a pointer/length pair written to a host-provided slot; row errors in the
//!   process envelope.
//! - **v1.1**: the row interface ([`rows`]): `weir_init_rows` and `weir_process_rows` instead of `weir_init`
//!   and `weir_process`, with values passed one by one through `weir::*` host imports, for languages
//!   without an Arrow library. Modules built for v1.0 keep working unchanged.

/// Major version of the ABI. A module declares it by exporting a function named [`VERSION_EXPORT`].
pub const MAJOR: u32 = 1;
/// Minor version of the ABI: returned by the version export. Minor versions only add optional features.
pub const MINOR: u32 = 1;

/// Prefix of the version marker export: a module built for ABI vN exports `weir_abi_vN: () -> i32`,
/// returning its minor version. The host reads the major version from the export's *name*, so it can refuse
/// an incompatible module before instantiating it.
pub const VERSION_EXPORT_PREFIX: &str = "weir_abi_v";
/// The version marker export of this ABI version.
pub const VERSION_EXPORT: &str = "weir_abi_v1";
/// `weir_kind: () -> i32`: what the module is, one of [`Kind`].
pub const KIND_EXPORT: &str = "weir_kind";
/// `weir_alloc: (len: i32) -> i32`: returns a pointer to `len` writable bytes, or 0 when out of memory.
pub const ALLOC_EXPORT: &str = "weir_alloc";
/// `weir_free: (ptr: i32, len: i32)`: releases a buffer from `weir_alloc` or a result buffer.
pub const FREE_EXPORT: &str = "weir_free";
/// `weir_init: (config_ptr, config_len, schema_ptr, schema_len, ret_ptr: i32) -> i32`.
pub const INIT_EXPORT: &str = "weir_init";
/// `weir_process: (batch_ptr, batch_len, ret_ptr: i32) -> i32`.
pub const PROCESS_EXPORT: &str = "weir_process";
/// The linear memory every module exports.
pub const MEMORY_EXPORT: &str = "memory";

/// The row interface: a module that cannot build Arrow batches itself reads input values and appends output
/// values through host imports, and the host builds the Arrow arrays. `docs/abi.md` section 6 describes
/// every import; the host checks each by name and signature.
pub mod rows {
    /// `weir_init_rows: () -> i32`: configure (reading `weir::config_get`), then declare the output schema
    /// with `weir::output_schema`; returns a status.
    pub const INIT_EXPORT: &str = "weir_init_rows";
    /// `weir_process_rows: (rows: i32) -> i32`: read the input batch's `rows` rows, append output rows;
    /// returns a status.
    pub const PROCESS_EXPORT: &str = "weir_process_rows";
    /// The import module that holds the row interface's host functions.
    pub const IMPORT_MODULE: &str = "weir";

    /// A WebAssembly value type in a row-interface signature.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum ValueType {
        /// `i32`: a pointer, a length, a column or row index, a status.
        I32,
        /// `i64`: an integer value.
        I64,
        /// `f64`: a floating-point value.
        F64,
    }

    /// One host function of the row interface, as a guest imports it from [`IMPORT_MODULE`].
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Import {
        /// The function's name.
        pub name: &'static str,
        /// Its parameters.
        pub params: &'static [ValueType],
        /// Its results.
        pub results: &'static [ValueType],
    }

    const fn import(
        name: &'static str,
        params: &'static [ValueType],
        results: &'static [ValueType],
    ) -> Import {
        Import {
            name,
            params,
            results,
        }
    }

    /// Every function of the row interface with its signature: the one list the host registers and checks
    /// modules against, and `docs/abi.md` section 6 describes.
    ///
    /// ```
    /// use weir_guest::abi::rows::{ValueType, IMPORTS};
    /// let out_i64 = IMPORTS.iter().find(|i| i.name == "out_i64").unwrap();
    /// assert_eq!(out_i64.params, &[ValueType::I32, ValueType::I64]);
    /// ```
    pub const IMPORTS: &[Import] = {
        use ValueType::{F64, I32, I64};
        &[
            import("config_get", &[I32, I32, I32, I32], &[I32]),
            import("in_schema", &[I32, I32], &[I32]),
            import("output_schema", &[I32, I32], &[]),
            import("error", &[I32, I32], &[]),
            import("log", &[I32, I32], &[]),
            import("in_column", &[I32, I32], &[I32]),
            import("in_is_null", &[I32, I32], &[I32]),
            import("in_i64", &[I32, I32], &[I64]),
            import("in_f64", &[I32, I32], &[F64]),
            import("in_bytes", &[I32, I32, I32, I32], &[I32]),
            import("out_null", &[I32], &[]),
            import("out_i64", &[I32, I64], &[]),
            import("out_f64", &[I32, F64], &[]),
            import("out_bytes", &[I32, I32, I32], &[]),
            import("out_copy", &[I32, I32, I32], &[]),
            import("out_row", &[], &[]),
            import("row_error", &[I32, I32, I32], &[]),
        ]
    };
}

/// Status returned by `weir_init` and `weir_process`: the call succeeded and the result is the payload.
pub const STATUS_OK: i32 = 0;
/// Status returned by `weir_init` and `weir_process`: the call failed and the result is a UTF-8 message.
pub const STATUS_ERROR: i32 = 1;

/// Size in bytes of the result slot: two little-endian `u32` values, the result pointer then its length.
pub const RESULT_SLOT_LEN: usize = 8;

/// The kinds of UDF that ABI v1 knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Takes Kafka records (the source schema) and returns rows of the user's schema.
    Deserializer = 1,
    /// Takes a batch and returns a batch with any number of rows.
    Transform = 2,
}

impl Kind {
    /// The kind for a value returned by `weir_kind`, if it is one ABI v1 knows.
    pub fn from_code(code: i32) -> Option<Kind> {
        match code {
            1 => Some(Kind::Deserializer),
            2 => Some(Kind::Transform),
            _ => None,
        }
    }

    /// The lower-case name used in pipeline files and messages.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Deserializer => "deserializer",
            Kind::Transform => "transform",
        }
    }
}

/// One input row that a UDF could not handle, reported alongside a successful batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// Index of the row in the input batch of the call.
    pub row: u32,
    /// Why the row failed, for the dead-letter headers and the log.
    pub message: String,
}

/// Why a process envelope could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeError(pub String);

impl std::fmt::Display for EnvelopeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for EnvelopeError {}

/// Writes the result of a successful `weir_process` call:
/// `u32 ipc_len | ipc bytes | u32 error_count | error_count × (u32 row | u32 msg_len | msg bytes)`,
/// all integers little-endian.
pub fn encode_process_result(ipc: &[u8], errors: &[RowError]) -> Vec<u8> {
    let errors_len: usize = errors.iter().map(|e| 8 + e.message.len()).sum();
    let mut out = Vec::with_capacity(8 + ipc.len() + errors_len);
    out.extend_from_slice(&(ipc.len() as u32).to_le_bytes());
    out.extend_from_slice(ipc);
    out.extend_from_slice(&(errors.len() as u32).to_le_bytes());
    for error in errors {
        out.extend_from_slice(&error.row.to_le_bytes());
        out.extend_from_slice(&(error.message.len() as u32).to_le_bytes());
        out.extend_from_slice(error.message.as_bytes());
    }
    out
}

/// Reads a process envelope written by [`encode_process_result`] (or by a guest in any language).
///
/// Returns the Arrow IPC stream bytes and the row errors. Every length is checked against the buffer, so a
/// malformed envelope is an error, never a panic.
///
/// ```
/// use weir_guest::abi::{decode_process_result, encode_process_result, RowError};
/// let errors = vec![RowError { row: 3, message: "bad json".into() }];
/// let bytes = encode_process_result(b"IPC", &errors);
/// let (ipc, decoded) = decode_process_result(&bytes).unwrap();
/// assert_eq!(ipc, b"IPC");
/// assert_eq!(decoded, errors);
/// assert!(decode_process_result(&bytes[..5]).is_err());
/// ```
pub fn decode_process_result(bytes: &[u8]) -> Result<(&[u8], Vec<RowError>), EnvelopeError> {
    let mut cursor = Cursor { bytes, at: 0 };
    let ipc_len = cursor.u32("ipc_len")? as usize;
    let ipc = cursor.take(ipc_len, "the Arrow IPC stream")?;
    let count = cursor.u32("error_count")? as usize;
    // A count larger than the bytes could hold is malformed; checking first keeps allocation bounded.
    if count > cursor.remaining() / 8 {
        return Err(EnvelopeError(format!(
            "error_count {count} does not fit in the {} bytes left",
            cursor.remaining()
        )));
    }
    let mut errors = Vec::with_capacity(count);
    for i in 0..count {
        let row = cursor.u32("row error index")?;
        let len = cursor.u32("row error message length")? as usize;
        let message = cursor.take(len, "row error message")?;
        let message = String::from_utf8_lossy(message).into_owned();
        if message.is_empty() {
            return Err(EnvelopeError(format!("row error {i} has an empty message")));
        }
        errors.push(RowError { row, message });
    }
    if cursor.remaining() != 0 {
        return Err(EnvelopeError(format!(
            "{} trailing bytes after the row errors",
            cursor.remaining()
        )));
    }
    Ok((ipc, errors))
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }

    fn take(&mut self, len: usize, what: &str) -> Result<&'a [u8], EnvelopeError> {
        if len > self.remaining() {
            return Err(EnvelopeError(format!(
                "{what} needs {len} bytes at offset {} but only {} are left",
                self.at,
                self.remaining()
            )));
        }
        let slice = &self.bytes[self.at..self.at + len];
        self.at += len;
        Ok(slice)
    }

    fn u32(&mut self, what: &str) -> Result<u32, EnvelopeError> {
        let bytes = self.take(4, what)?;
        Ok(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_round_trips_with_and_without_errors() {
        let bytes = encode_process_result(b"abc", &[]);
        assert_eq!(bytes, [3, 0, 0, 0, b'a', b'b', b'c', 0, 0, 0, 0]);
        assert_eq!(
            decode_process_result(&bytes).unwrap(),
            (&b"abc"[..], vec![])
        );
    }

    #[test]
    fn malformed_envelopes_are_errors() {
        assert!(decode_process_result(&[]).is_err());
        // ipc_len larger than the buffer
        assert!(decode_process_result(&[9, 0, 0, 0, 1]).is_err());
        // huge error count
        let mut bytes = encode_process_result(b"", &[]);
        bytes[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode_process_result(&bytes).is_err());
        // trailing bytes
        let mut bytes = encode_process_result(b"", &[]);
        bytes.push(0);
        assert!(decode_process_result(&bytes).is_err());
    }
}
