//! One running instance of a UDF component: its store, its limits and the two calls of its world.

use std::time::Instant;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use wasmtime::component::InstancePre;
use wasmtime::Store;
use weir_guest::abi::RowError;

use super::bindings::{deserializer::DeserializerUdf, transform::TransformUdf, types};
use super::columns::{batch_from_wit, batch_to_wit, output_size, schema_from_wit, schema_to_wit};
use super::{ComponentState, Export};
use crate::udf::error::Recorded;
use crate::udf::instance::ticks;
use crate::udf::log::GuestLog;
use crate::udf::{Kind, UdfFailure, UdfLimits, UdfOutput};

/// The world an instance implements.
enum World {
    Transform(TransformUdf),
    Deserializer(DeserializerUdf),
}

/// An instantiated component.
pub(crate) struct ComponentInstance {
    store: Store<ComponentState>,
    world: World,
    log: GuestLog,
    limits: UdfLimits,
    /// What its export says it is.
    pub(crate) kind: Kind,
    /// The minor version of the world it was built for.
    pub(crate) minor: i32,
}

impl ComponentInstance {
    /// Instantiates the component, which was checked to have `export` when it was loaded.
    pub(crate) fn new(
        pre: &InstancePre<ComponentState>,
        export: &Export,
        limits: UdfLimits,
    ) -> Result<ComponentInstance, UdfFailure> {
        let log = GuestLog::new(limits.max_log_bytes);
        let mut store = Store::new(pre.engine(), ComponentState::new(limits, &log));
        store.limiter(|state| &mut state.limiter);
        store.epoch_deadline_trap();
        store.set_epoch_deadline(ticks(limits.timeout));
        let abi = |e: wasmtime::Error| UdfFailure::Abi(format!("{e:#}"));
        let instance = pre
            .instantiate(&mut store)
            .map_err(|e| classify(&mut store, &log, limits, e))?;
        let world = match export.kind {
            Kind::Transform => {
                World::Transform(TransformUdf::new(&mut store, &instance).map_err(abi)?)
            }
            Kind::Deserializer => {
                World::Deserializer(DeserializerUdf::new(&mut store, &instance).map_err(abi)?)
            }
        };
        Ok(ComponentInstance {
            store,
            world,
            log,
            limits,
            kind: export.kind,
            minor: export.minor,
        })
    }

    /// Calls `init` with the configuration JSON and the input schema; returns the output schema.
    pub(crate) fn init(
        &mut self,
        config: &str,
        input: &SchemaRef,
    ) -> Result<SchemaRef, UdfFailure> {
        let input = schema_to_wit(input).map_err(UdfFailure::Abi)?;
        let declared = self.call(|store, world| match world {
            World::Transform(w) => w.weir_udf_transform().call_init(store, config, &input),
            World::Deserializer(w) => w.weir_udf_deserializer().call_init(store, config, &input),
        })?;
        let declared = declared.map_err(UdfFailure::Guest)?;
        schema_from_wit(&declared).map_err(UdfFailure::MalformedOutput)
    }

    /// Calls `process` on one batch; checks the result against the declared output schema.
    pub(crate) fn process(
        &mut self,
        batch: &RecordBatch,
        output: &SchemaRef,
    ) -> Result<UdfOutput, UdfFailure> {
        let input = batch_to_wit(batch).map_err(UdfFailure::Abi)?;
        let result = self.call(|store, world| match world {
            World::Transform(w) => w.weir_udf_transform().call_process(store, &input),
            World::Deserializer(w) => w.weir_udf_deserializer().call_process(store, &input),
        })?;
        let types::Output {
            batch: returned,
            errors,
        } = result.map_err(UdfFailure::Guest)?;
        let len = output_size(&returned);
        if len > self.limits.max_output_bytes {
            return Err(UdfFailure::OutputTooLarge {
                len,
                cap: self.limits.max_output_bytes,
            });
        }
        let rows = batch.num_rows();
        if let Some(bad) = errors.iter().find(|e| e.row as usize >= rows) {
            return Err(UdfFailure::MalformedOutput(format!(
                "a row error names row {}, but the input batch has {rows} rows",
                bad.row
            )));
        }
        let batch = batch_from_wit(returned, output).map_err(UdfFailure::MalformedOutput)?;
        let row_errors = errors
            .into_iter()
            .map(|e| RowError {
                row: e.row,
                message: if e.message.is_empty() {
                    "(no message)".into()
                } else {
                    e.message
                },
            })
            .collect();
        Ok(UdfOutput { batch, row_errors })
    }

    /// What the guest printed since the last call, for the host's log.
    pub(crate) fn take_printed(&self) -> crate::udf::log::Printed {
        self.log.take()
    }

    /// Whether a memory has grown past half of `limits.memory` (`MemoryCap::past_half`).
    pub(crate) fn worn(&self) -> bool {
        self.store.data().limiter.past_half()
    }

    /// Runs one guest call under the time limit, turning traps into [`UdfFailure`]s.
    fn call<R>(
        &mut self,
        f: impl FnOnce(&mut Store<ComponentState>, &World) -> wasmtime::Result<R>,
    ) -> Result<R, UdfFailure> {
        self.store.set_epoch_deadline(ticks(self.limits.timeout));
        self.store.data_mut().deadline = Instant::now() + self.limits.timeout;
        let result = f(&mut self.store, &self.world);
        result.map_err(|e| classify(&mut self.store, &self.log, self.limits, e))
    }
}

/// The failure of a call that returned `error`, from what the store recorded.
fn classify(
    store: &mut Store<ComponentState>,
    log: &GuestLog,
    limits: UdfLimits,
    error: wasmtime::Error,
) -> UdfFailure {
    let state = store.data_mut();
    let recorded = Recorded {
        memory: state.limiter.refused.take(),
        // The output is measured after the call returns (`process`), so no call fails of it.
        output: None,
        sleep: state.refused_sleep.take(),
    };
    recorded.explain(error, log, limits)
}
