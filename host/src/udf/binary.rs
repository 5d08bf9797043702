//! A UDF file is either a core module (ABI v1, docs/abi.md) or a component (the WIT world
//! `weir:udf@1`, docs/components.md), told apart by the binary header. This gives the stage, its pool and
//! `--reload` one type for either, so everything above it is the same for both.

use std::path::Path;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use wasmtime::{Engine, InstancePre, Linker};

use super::component::{self, ComponentInstance, ComponentState, Export};
use super::instance::{CoreInstance, GuestState};
use super::log::Printed;
use super::{module, Kind, UdfFailure, UdfLimits, UdfOutput};

/// The linkers of both kinds of file, sharing one engine.
#[derive(Clone)]
pub(crate) struct Linkers {
    pub(crate) core: Linker<GuestState>,
    pub(crate) component: wasmtime::component::Linker<ComponentState>,
}

/// A compiled, checked and linked UDF file, ready to instantiate.
pub(crate) enum Prepared {
    Core(InstancePre<GuestState>),
    /// With the Weir interface it exports.
    Component(wasmtime::component::InstancePre<ComponentState>, Export),
}

impl Linkers {
    pub(crate) fn engine(&self) -> &Engine {
        self.core.engine()
    }

    /// Reads, compiles (or takes from the cache), checks and links the file at `path`.
    pub(crate) fn prepare(&self, path: &Path) -> Result<Prepared, UdfFailure> {
        let bytes = read(path)?;
        if component::is_component(&bytes) {
            let (pre, export) = component::load(&self.component, path, &bytes)?;
            return Ok(Prepared::Component(pre, export));
        }
        module::load(&self.core, &bytes).map(Prepared::Core)
    }
}

/// The bytes of a UDF file, or an error naming it.
pub(crate) fn read(path: &Path) -> Result<Vec<u8>, UdfFailure> {
    std::fs::read(path).map_err(|e| UdfFailure::Load(format!("reading {}: {e}", path.display())))
}

/// One instance of either kind of file.
pub(crate) enum UdfInstance {
    /// Boxed: a core instance's calls and state are three times a component's, and instances live long.
    Core(Box<CoreInstance>),
    Component(ComponentInstance),
}

impl UdfInstance {
    /// Instantiates `pre` and checks its kind against `expected` (any kind when `None`); `init` is a separate
    /// step.
    pub(crate) fn new(
        pre: &Prepared,
        limits: UdfLimits,
        expected: Option<Kind>,
    ) -> Result<UdfInstance, UdfFailure> {
        match pre {
            Prepared::Core(pre) => CoreInstance::new(pre, limits, expected)
                .map(|instance| UdfInstance::Core(Box::new(instance))),
            Prepared::Component(pre, export) => {
                if let Some(expected) = expected.filter(|expected| *expected != export.kind) {
                    return Err(UdfFailure::Abi(format!(
                        "the component is a {}, but it is used as a {}",
                        export.kind.name(),
                        expected.name()
                    )));
                }
                ComponentInstance::new(pre, export, limits).map(UdfInstance::Component)
            }
        }
    }

    /// What the file says it is, and the minor version of its ABI or WIT world.
    pub(crate) fn version(&self) -> (Kind, i32) {
        match self {
            UdfInstance::Core(instance) => (instance.kind, instance.minor),
            UdfInstance::Component(instance) => (instance.kind, instance.minor),
        }
    }

    /// Configures the instance; returns the output schema it declares.
    pub(crate) fn init(
        &mut self,
        config: &str,
        input: &SchemaRef,
    ) -> Result<SchemaRef, UdfFailure> {
        match self {
            UdfInstance::Core(instance) => instance.init(config, input),
            UdfInstance::Component(instance) => instance.init(config, input),
        }
    }

    /// Runs the UDF on one batch (at most `limits.max_rows_per_call` rows).
    pub(crate) fn process(
        &mut self,
        batch: &RecordBatch,
        output: &SchemaRef,
    ) -> Result<UdfOutput, UdfFailure> {
        match self {
            UdfInstance::Core(instance) => instance.process(batch, output),
            UdfInstance::Component(instance) => instance.process(batch, output),
        }
    }

    /// Whether the instance should be replaced rather than pooled: its memory grew past half of
    /// `limits.memory`, and linear memory never shrinks.
    pub(crate) fn worn(&self) -> bool {
        match self {
            UdfInstance::Core(instance) => instance.worn(),
            UdfInstance::Component(instance) => instance.worn(),
        }
    }

    /// What the guest printed since the last call.
    pub(crate) fn take_printed(&self) -> Printed {
        match self {
            UdfInstance::Core(instance) => instance.take_printed(),
            UdfInstance::Component(instance) => instance.take_printed(),
        }
    }
}
