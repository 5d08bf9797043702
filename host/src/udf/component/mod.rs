//! UDFs as WebAssembly components: the WIT world `weir:udf@1` (`wit/weir-udf.wit`), beside ABI v1's core
//! modules.
//!
//! Python (componentize-py) and JavaScript (jco) compile to components, not to core modules, and a
//! component's interface is typed: batches cross as Arrow's buffers, column by column (`columns/`), which
//! a guest reads with its language's typed views, no Arrow library needed. Everything else is the core modules' own: the same engine, epoch time limits, memory cap,
//! log and sandbox (WASI preview 2 with no files, sockets, environment or arguments), the same pool and
//! reload (`stage.rs` holds either kind of file through [`super::binary`]).
//!
//! A component tells which kind it is by its export, `weir:udf/transform@1.x` or
//! `weir:udf/deserializer@1.x`; its major version is checked before anything runs.

mod columns;
mod instance;
mod sandbox;

use std::path::Path;

use wasmtime::component::{Component, InstancePre, Linker};
use wasmtime::Engine;

pub(crate) use instance::ComponentInstance;
pub(crate) use sandbox::{linker, ComponentState};

use super::compile_cache::compile_cached;
use super::{Kind, UdfFailure};

/// The typed bindings of the two worlds, generated from the WIT file at build time.
mod bindings {
    pub(super) mod transform {
        wasmtime::component::bindgen!({ path: "../wit/weir-udf.wit", world: "transform-udf" });
    }
    pub(super) mod deserializer {
        wasmtime::component::bindgen!({
            path: "../wit/weir-udf.wit",
            world: "deserializer-udf",
            with: { "weir:udf/types": super::transform::weir::udf::types },
        });
    }
    pub(super) use transform::weir::udf::types;
}

/// The WIT package a component's export must come from, and the major version this host implements.
const PACKAGE: &str = "weir:udf";
const MAJOR: u64 = 1;

/// Whether `bytes` are a component rather than a core module: the binary header's version field says so
/// (`0d 00 01 00` for a component, `01 00 00 00` for a core module).
pub(crate) fn is_component(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\0asm") && bytes.get(4..8) == Some(&[0x0d, 0x00, 0x01, 0x00])
}

/// The Weir interface a component exports: its kind, the world's minor version and the export's name
/// (`weir:udf/transform@1.0.0`).
pub(crate) struct Export {
    pub(crate) kind: Kind,
    pub(crate) minor: i32,
    pub(crate) name: String,
}

/// Which Weir interface a component exports, read from its export names before it runs.
pub(crate) fn check_exports(engine: &Engine, component: &Component) -> Result<Export, UdfFailure> {
    let names: Vec<String> = component
        .component_type()
        .exports(engine)
        .map(|(name, _)| name.to_string())
        .collect();
    let ours: Vec<&String> = names.iter().filter(|n| n.starts_with(PACKAGE)).collect();
    let [export] = ours.as_slice() else {
        return Err(UdfFailure::Abi(if ours.is_empty() {
            format!(
                "not a Weir UDF component: it exports no `{PACKAGE}/transform` or `{PACKAGE}/deserializer` \
                 interface (its exports: {}); build it for a world of wit/weir-udf.wit",
                if names.is_empty() { "none".to_string() } else { names.join(", ") }
            )
        } else {
            format!(
                "the component exports several Weir interfaces: {}",
                names.join(", ")
            )
        }));
    };
    let (interface, version) = export
        .strip_prefix(PACKAGE)
        .and_then(|rest| rest.strip_prefix('/'))
        .and_then(|rest| rest.split_once('@'))
        .ok_or_else(|| {
            UdfFailure::Abi(format!(
                "the export `{export}` has no version; build it from wit/weir-udf.wit"
            ))
        })?;
    let (major, minor) = parse_version(version).ok_or_else(|| {
        UdfFailure::Abi(format!("the export `{export}` has an unreadable version"))
    })?;
    if major != MAJOR {
        return Err(UdfFailure::Abi(format!(
            "the component is built for the Weir UDF world {PACKAGE}@{version} (export `{export}`), but this \
             host supports {PACKAGE}@{MAJOR}.x; rebuild it against a matching wit/weir-udf.wit"
        )));
    }
    let kind = match interface {
        "transform" => Kind::Transform,
        "deserializer" => Kind::Deserializer,
        other => {
            return Err(UdfFailure::Abi(format!(
                "the component exports `{export}`, but {PACKAGE} has no interface `{other}` (it has transform, deserializer)"
            )))
        }
    };
    Ok(Export {
        kind,
        minor: i32::try_from(minor).unwrap_or(i32::MAX),
        name: export.to_string(),
    })
}

fn parse_version(version: &str) -> Option<(u64, u64)> {
    let mut parts = version.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// Compiles the component in `bytes` (or takes it from the compile cache), checks its Weir export and
/// pre-instantiates it with the sandbox's WASI.
pub(crate) fn load(
    linker: &Linker<ComponentState>,
    path: &Path,
    bytes: &[u8],
) -> Result<(InstancePre<ComponentState>, Export), UdfFailure> {
    let component = compile_cached::<Component>(linker.engine(), bytes)?;
    let export = check_exports(linker.engine(), &component)?;
    let pre = linker.instantiate_pre(&component).map_err(|e| {
        UdfFailure::Abi(format!(
            "cannot link the component's imports ({}): {e:#}; a Weir component may import only WASI 0.2",
            path.display()
        ))
    })?;
    Ok((pre, export))
}

/// What a component declares, for `weir udf inspect`: its exports and imports by name.
pub(crate) fn describe(
    engine: &Engine,
    bytes: &[u8],
) -> Result<(Component, Vec<String>, Vec<String>), UdfFailure> {
    let component = compile_cached::<Component>(engine, bytes)?;
    let ty = component.component_type();
    let exports = ty
        .exports(engine)
        .map(|(name, _)| name.to_string())
        .collect();
    let imports = ty
        .imports(engine)
        .map(|(name, _)| name.to_string())
        .collect();
    Ok((component, exports, imports))
}
