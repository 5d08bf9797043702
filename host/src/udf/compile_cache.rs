//! The on-disk cache of compiled UDFs, core modules and components alike.
//!
//! Compiling a UDF takes seconds (measured: 1.2 s for each 2 MB Rust module here, and more for an 18 MB
//! Python component), so the machine code is kept on disk, named by the SHA-256 of the file's bytes and of
//! the engine's settings. Only files this cache wrote are ever loaded back; any failure to use the cache
//! falls back to compiling.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;

use super::UdfFailure;

/// What wasmtime compiles and can serialize: a core [`wasmtime::Module`] or a
/// [`wasmtime::component::Component`].
pub(crate) trait Compiled: Sized {
    /// The file name's ending, so a module and a component of the same bytes could never be mixed up.
    const EXTENSION: &'static str;
    fn compile(engine: &Engine, bytes: &[u8]) -> wasmtime::Result<Self>;
    /// # Safety
    /// `file` must have been written by [`Compiled::serialize`] of the same type.
    unsafe fn deserialize(engine: &Engine, file: &Path) -> wasmtime::Result<Self>;
    fn serialize(&self) -> wasmtime::Result<Vec<u8>>;
}

impl Compiled for wasmtime::Module {
    const EXTENSION: &'static str = "cwasm";
    fn compile(engine: &Engine, bytes: &[u8]) -> wasmtime::Result<Self> {
        wasmtime::Module::new(engine, bytes)
    }
    unsafe fn deserialize(engine: &Engine, file: &Path) -> wasmtime::Result<Self> {
        // SAFETY: the caller's contract.
        unsafe { wasmtime::Module::deserialize_file(engine, file) }
    }
    fn serialize(&self) -> wasmtime::Result<Vec<u8>> {
        wasmtime::Module::serialize(self)
    }
}

impl Compiled for wasmtime::component::Component {
    const EXTENSION: &'static str = "ccomponent";
    fn compile(engine: &Engine, bytes: &[u8]) -> wasmtime::Result<Self> {
        wasmtime::component::Component::new(engine, bytes)
    }
    unsafe fn deserialize(engine: &Engine, file: &Path) -> wasmtime::Result<Self> {
        // SAFETY: the caller's contract.
        unsafe { wasmtime::component::Component::deserialize_file(engine, file) }
    }
    fn serialize(&self) -> wasmtime::Result<Vec<u8>> {
        wasmtime::component::Component::serialize(self)
    }
}

/// Where compiled UDFs are kept: `$WEIR_CACHE_DIR`, else `$XDG_CACHE_HOME/weir/modules`, else
/// `~/.cache/weir/modules`.
fn cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("WEIR_CACHE_DIR") {
        return Some(PathBuf::from(dir));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
    Some(base.join("weir").join("modules"))
}

/// Compiles `bytes` as a `T`, or loads the machine code this cache stored for the same bytes and engine.
pub(crate) fn compile_cached<T: Compiled>(engine: &Engine, bytes: &[u8]) -> Result<T, UdfFailure> {
    let compile = || T::compile(engine, bytes).map_err(|e| UdfFailure::Load(format!("{e:#}")));
    let Some(dir) = cache_dir() else {
        return compile();
    };
    let mut hasher = Sha256::new();
    hasher.update(bytes);
    let mut settings = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut settings);
    hasher.update(settings.finish().to_le_bytes());
    hasher.update(env!("CARGO_PKG_VERSION").as_bytes());
    let name: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let file = dir.join(format!("{name}.{}", T::EXTENSION));
    if file.exists() {
        // SAFETY: the file was written by `T::serialize` below, under a name derived from the bytes, the
        // engine and the type; wasmtime checks the engine compatibility again while loading it.
        match unsafe { T::deserialize(engine, &file) } {
            Ok(compiled) => return Ok(compiled),
            Err(e) => {
                tracing::warn!(file = %file.display(), "ignoring an unusable compiled UDF: {e:#}")
            }
        }
    }
    let compiled = compile()?;
    let stored = compiled
        .serialize()
        .map_err(|e| e.to_string())
        .and_then(|serialized| {
            std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
            let partial = dir.join(format!("{name}.{}.part", std::process::id()));
            std::fs::write(&partial, serialized).map_err(|e| e.to_string())?;
            std::fs::rename(&partial, &file).map_err(|e| e.to_string())
        });
    if let Err(e) = stored {
        tracing::warn!(dir = %dir.display(), "cannot cache the compiled UDF: {e}");
    }
    Ok(compiled)
}
