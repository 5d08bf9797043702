//! Loading a UDF module: compile once, check it against ABI v1 before anything runs, pre-instantiate.
//!
//! All checks that can be made on the module's declared exports and imports are made here, so that a wrong
//! file, an old ABI or a missing export is refused with a precise message before any guest code runs.

use std::path::Path;

use wasmtime::{Engine, ExternType, FuncType, InstancePre, Linker, Module, ValType};
use weir_guest::abi;

use super::compile_cache::compile_cached;
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
    /// Not ABI v1 but its component twin: Arrow buffers by column through the WIT world `weir:udf@1`.
    Component,
}

impl Interface {
    /// How `weir udf inspect` names it.
    pub fn name(self) -> &'static str {
        match self {
            Interface::ArrowIpc => "Arrow IPC (weir_init, weir_process)",
            Interface::Rows => "rows (weir_init_rows, weir_process_rows, weir::* imports)",
            Interface::Component => "Arrow buffers by column (component, wit/weir-udf.wit)",
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
        // Chosen just above between the two core interfaces; a component is checked by its WIT world.
        Interface::Component => {}
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
    /// Which ABI v1 interface it implements, or why it does not follow ABI v1 (or, for a component, the
    /// WIT world).
    pub abi: Result<Interface, String>,
    /// For a component, the Weir interface it exports, e.g. `weir:udf/transform@1.0.0`.
    pub world: Option<String>,
}

/// Compiles the module or component at `path` and lists what it declares, without running it.
pub(crate) fn describe_file(engine: &Engine, path: &Path) -> Result<ModuleInfo, UdfFailure> {
    let bytes = super::binary::read(path)?;
    if super::component::is_component(&bytes) {
        let (component, exports, imports) = super::component::describe(engine, &bytes)?;
        let checked = super::component::check_exports(engine, &component);
        return Ok(ModuleInfo {
            size_bytes: bytes.len() as u64,
            exports,
            imports,
            world: checked.as_ref().ok().map(|export| export.name.clone()),
            abi: checked
                .map(|_| Interface::Component)
                .map_err(|e| e.to_string()),
        });
    }
    let module = compile_cached::<Module>(engine, &bytes)?;
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
        world: None,
    })
}

/// Compiles the core module in `bytes` (or takes it from the compile cache), checks it and
/// pre-instantiates it with the host's WASI imports.
pub(crate) fn load(
    linker: &Linker<GuestState>,
    bytes: &[u8],
) -> Result<InstancePre<GuestState>, UdfFailure> {
    let module = compile_cached::<Module>(linker.engine(), bytes)?;
    check_abi(&module)?;
    linker
        .instantiate_pre(&module)
        .map_err(|e| UdfFailure::Abi(format!("cannot link the module's imports: {e:#}")))
}
