//! Loading a UDF module: compile once, check it against ABI v1 before anything runs, pre-instantiate.
//!
//! All checks that can be made on the module's declared exports and imports are made here, so that a wrong
//! file, an old ABI or a missing export is refused with a precise message before any guest code runs.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use wasmtime::{Engine, ExternType, FuncType, InstancePre, Linker, Module, ValType};
use weir_guest::abi;

use super::instance::GuestState;
use super::rows;
use super::UdfFailure;

/// How a module exchanges data with the host; both are ABI v1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interface {
    /// Arrow IPC batches in guest memory: `weir_init` and `weir_process` (v1.0).
    ArrowIpc,
    /// Values one at a time through the `weir::*` host imports: `weir_init_rows` and `weir_process_rows` (v1.1).
    Rows,
}

impl Interface {
    /// How `weir udf inspect` names it.
    pub fn name(self) -> &'static str {
        match self {
            Interface::ArrowIpc => "Arrow IPC (weir_init, weir_process)",
            Interface::Rows => "rows (weir_init_rows, weir_process_rows, weir::* imports)",
        }
    }
}

/// Checks the module's exports and imports against ABI v1; says which interface it implements.
pub(crate) fn check_abi(module: &Module) -> Result<Interface, UdfFailure> {
    check_version(module)?;
    let interface = check_exports(module)?;
    check_imports(module)?;
    Ok(interface)
}

/// Checks that the module declares exactly one ABI version, and that it is this host's.
fn check_version(module: &Module) -> Result<(), UdfFailure> {
    let versions: Vec<&str> = module
        .exports()
        .map(|e| e.name())
        .filter(|name| name.starts_with(abi::VERSION_EXPORT_PREFIX))
        .collect();
    match versions.as_slice() {
        [] => {
            let names: Vec<&str> = module.exports().map(|e| e.name()).collect();
            Err(UdfFailure::Abi(format!(
                "not a Weir UDF: it has no `{}` version export (its exports: {})",
                abi::VERSION_EXPORT,
                if names.is_empty() { "none".to_string() } else { names.join(", ") }
            )))
        }
        [one] if *one == abi::VERSION_EXPORT => Ok(()),
        [one] => {
            Err(UdfFailure::Abi(format!(
                "the module is built for Weir UDF ABI {} (export `{one}`), but this host supports v{}; \
                 rebuild it with a matching guest SDK",
                &one[abi::VERSION_EXPORT_PREFIX.len() - 1..],
                abi::MAJOR
            )))
        }
        many => {
            Err(UdfFailure::Abi(format!("the module declares several ABI versions: {}", many.join(", "))))
        }
    }
}

/// Checks the exports the module's interface needs, with their types; returns the interface.
fn check_exports(module: &Module) -> Result<Interface, UdfFailure> {
    let i32s = |n: usize| vec![ValType::I32; n];
    let interface = if module.get_export(abi::rows::PROCESS_EXPORT).is_some()
        || module.get_export(abi::rows::INIT_EXPORT).is_some()
    {
        Interface::Rows
    } else {
        Interface::ArrowIpc
    };
    let mut functions: Vec<(&str, Vec<ValType>, Vec<ValType>)> = vec![
        (abi::VERSION_EXPORT, vec![], i32s(1)),
        (abi::KIND_EXPORT, vec![], i32s(1)),
    ];
    match interface {
        Interface::ArrowIpc => functions.extend([
            (abi::ALLOC_EXPORT, i32s(1), i32s(1)),
            (abi::FREE_EXPORT, i32s(2), vec![]),
            (abi::INIT_EXPORT, i32s(5), i32s(1)),
            (abi::PROCESS_EXPORT, i32s(3), i32s(1)),
        ]),
        Interface::Rows => functions.extend([
            (abi::rows::INIT_EXPORT, vec![], i32s(1)),
            (abi::rows::PROCESS_EXPORT, i32s(1), i32s(1)),
        ]),
    }
    for (name, params, results) in functions {
        let expected = FuncType::new(module.engine(), params, results);
        match module.get_export(name) {
            None => {
                return Err(UdfFailure::Abi(format!(
                    "missing export `{name}`: ABI v1 requires a function {}",
                    describe(&expected)
                )))
            }
            Some(ExternType::Func(found)) if FuncType::eq(&found, &expected) => {}
            Some(ExternType::Func(found)) => {
                return Err(UdfFailure::Abi(format!(
                    "export `{name}` is a function {}, but ABI v1 requires {}",
                    describe(&found),
                    describe(&expected)
                )))
            }
            Some(other) => {
                return Err(UdfFailure::Abi(format!(
                    "export `{name}` is a {other:?}, but ABI v1 requires a function"
                )))
            }
        }
    }
    if !matches!(
        module.get_export(abi::MEMORY_EXPORT),
        Some(ExternType::Memory(_))
    ) {
        return Err(UdfFailure::Abi(format!(
            "missing export `{}`: ABI v1 requires the linear memory",
            abi::MEMORY_EXPORT
        )));
    }
    Ok(interface)
}

/// Checks that the module imports nothing but WASI preview 1 and the row interface, with the host's types.
fn check_imports(module: &Module) -> Result<(), UdfFailure> {
    for import in module.imports() {
        if import.module() == "wasi_snapshot_preview1" {
            continue;
        }
        if import.module() == abi::rows::IMPORT_MODULE {
            let Some(expected) = rows::import_type(module.engine(), import.name()) else {
                return Err(UdfFailure::Abi(format!(
                    "the module imports `weir::{}`, which the row interface does not have (it has: {})",
                    import.name(),
                    abi::rows::IMPORTS.iter().map(|i| i.name).collect::<Vec<_>>().join(", ")
                )));
            };
            match import.ty() {
                ExternType::Func(found) if FuncType::eq(&found, &expected) => continue,
                ExternType::Func(found) => {
                    return Err(UdfFailure::Abi(format!(
                        "the module imports `weir::{}` as a function {}, but the host's is {}",
                        import.name(),
                        describe(&found),
                        describe(&expected)
                    )))
                }
                other => {
                    return Err(UdfFailure::Abi(format!(
                        "the module imports `weir::{}` as a {other:?}, but it is a function",
                        import.name()
                    )))
                }
            }
        }
        return Err(UdfFailure::Abi(format!(
            "the module imports `{}::{}`, which the host does not provide (only WASI preview 1 and the `weir` row interface are available)",
            import.module(),
            import.name()
        )));
    }
    Ok(())
}

fn describe(ty: &FuncType) -> String {
    let list = |types: &mut dyn Iterator<Item = ValType>| {
        types.map(|t| t.to_string()).collect::<Vec<_>>().join(", ")
    };
    format!(
        "({}) -> ({})",
        list(&mut ty.params()),
        list(&mut ty.results())
    )
}

/// What a module file declares, for `weir udf inspect`.
pub struct ModuleInfo {
    /// Size of the file in bytes.
    pub size_bytes: u64,
    /// Every export, as `name: type`.
    pub exports: Vec<String>,
    /// Every import, as `module::name: type`.
    pub imports: Vec<String>,
    /// Which ABI v1 interface it implements, or why it does not follow ABI v1.
    pub abi: Result<Interface, String>,
}

/// Compiles the module at `path` and lists what it declares, without running it.
pub(crate) fn describe_file(engine: &Engine, path: &Path) -> Result<ModuleInfo, UdfFailure> {
    let bytes = std::fs::read(path)
        .map_err(|e| UdfFailure::Load(format!("reading {}: {e}", path.display())))?;
    let module = compile_cached(engine, &bytes)?;
    let describe_extern = |ty: ExternType| match ty {
        ExternType::Func(f) => format!("func {}", describe(&f)),
        ExternType::Memory(m) => format!("memory ({} pages minimum)", m.minimum()),
        ExternType::Global(g) => format!("global {}", g.content()),
        ExternType::Table(_) => "table".to_string(),
        ExternType::Tag(_) => "tag".to_string(),
    };
    Ok(ModuleInfo {
        size_bytes: bytes.len() as u64,
        exports: module
            .exports()
            .map(|e| format!("{}: {}", e.name(), describe_extern(e.ty())))
            .collect(),
        imports: module
            .imports()
            .map(|i| format!("{}::{}: {}", i.module(), i.name(), describe_extern(i.ty())))
            .collect(),
        abi: check_abi(&module).map_err(|e| e.to_string()),
    })
}

/// Compiles the module at `path` (or takes it from the compile cache), checks it and pre-instantiates it
/// with the host's WASI imports.
pub(crate) fn load(
    linker: &Linker<GuestState>,
    path: &Path,
) -> Result<InstancePre<GuestState>, UdfFailure> {
    let bytes = std::fs::read(path)
        .map_err(|e| UdfFailure::Load(format!("reading {}: {e}", path.display())))?;
    let module = compile_cached(linker.engine(), &bytes)?;
    check_abi(&module)?;
    linker
        .instantiate_pre(&module)
        .map_err(|e| UdfFailure::Abi(format!("cannot link the module's imports: {e:#}")))
}

/// Where compiled modules are kept: `$WEIR_CACHE_DIR`, else `$XDG_CACHE_HOME/weir/modules`, else
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

/// Compiling a UDF takes seconds (measured: 1.2 s for each 2 MB Rust module here), so the machine code is
/// kept on disk, named by the SHA-256 of the module's bytes and of the engine's settings. Only files this
/// cache wrote are ever loaded back; any failure to use the cache falls back to compiling.
fn compile_cached(engine: &Engine, bytes: &[u8]) -> Result<Module, UdfFailure> {
    let compile = || Module::new(engine, bytes).map_err(|e| UdfFailure::Load(format!("{e:#}")));
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
    let file = dir.join(format!("{name}.cwasm"));
    if file.exists() {
        // SAFETY: the file was written by `Module::serialize` below, under a name derived from the module
        // and the engine; wasmtime checks the engine compatibility again while loading it.
        match unsafe { Module::deserialize_file(engine, &file) } {
            Ok(module) => return Ok(module),
            Err(e) => {
                tracing::warn!(file = %file.display(), "ignoring an unusable compiled module: {e:#}")
            }
        }
    }
    let module = compile()?;
    let stored = module
        .serialize()
        .map_err(|e| e.to_string())
        .and_then(|serialized| {
            std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
            let partial = dir.join(format!("{name}.{}.part", std::process::id()));
            std::fs::write(&partial, serialized).map_err(|e| e.to_string())?;
            std::fs::rename(&partial, &file).map_err(|e| e.to_string())
        });
    if let Err(e) = stored {
        tracing::warn!(dir = %dir.display(), "cannot cache the compiled module: {e}");
    }
    Ok(module)
}
