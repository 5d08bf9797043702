//! Bytes in and out of guest memory for the Arrow IPC interface: buffers from `weir_alloc`, handed back
//! with `weir_free`, and results read through the result slot. Every pointer and length the guest gives is
//! checked against its memory before use.

use wasmtime::TypedFunc;
use weir_guest::abi;

use super::CoreInstance;
use crate::udf::UdfFailure;

/// The IPC interface's functions, looked up once.
#[derive(Clone)]
pub(super) struct IpcCalls {
    pub(super) alloc: TypedFunc<i32, i32>,
    pub(super) free: TypedFunc<(i32, i32), ()>,
    pub(super) init: TypedFunc<(i32, i32, i32, i32, i32), i32>,
    pub(super) process: TypedFunc<(i32, i32, i32), i32>,
    /// Where the guest writes each result's pointer and length.
    pub(super) result_slot: i32,
}

impl CoreInstance {
    /// Asks the guest for `len` bytes with `weir_alloc`.
    pub(super) fn alloc_bytes(&mut self, ipc: &IpcCalls, len: usize) -> Result<i32, UdfFailure> {
        let alloc = ipc.alloc.clone();
        let len32 = i32::try_from(len)
            .map_err(|_| UdfFailure::Abi(format!("{len} bytes do not fit a 32-bit guest")))?;
        let ptr = self.call(|store| alloc.call(store, len32))?;
        if ptr == 0 && len > 0 {
            return Err(UdfFailure::Abi(format!(
                "`weir_alloc` could not allocate {len} bytes"
            )));
        }
        Ok(ptr)
    }

    /// Copies `bytes` into a buffer from `weir_alloc`; empty input is passed as pointer 0 without a buffer,
    /// so a guest is never asked for 0 bytes.
    pub(super) fn write_bytes(&mut self, ipc: &IpcCalls, bytes: &[u8]) -> Result<i32, UdfFailure> {
        if bytes.is_empty() {
            return Ok(0);
        }
        let ptr = self.alloc_bytes(ipc, bytes.len())?;
        self.memory
            .write(&mut self.store, ptr as u32 as usize, bytes)
            .map_err(|_| {
                UdfFailure::Abi(format!(
                    "`weir_alloc` returned {} for {} bytes, which lie outside the guest's {} bytes of memory",
                    ptr as u32,
                    bytes.len(),
                    self.memory.data_size(&self.store)
                ))
            })?;
        Ok(ptr)
    }

    /// Hands a buffer back with `weir_free`; pointer 0 with length 0 is no buffer (see
    /// [`Self::write_bytes`]) and is not handed back.
    pub(super) fn free_bytes(
        &mut self,
        ipc: &IpcCalls,
        ptr: i32,
        len: usize,
    ) -> Result<(), UdfFailure> {
        if ptr == 0 && len == 0 {
            return Ok(());
        }
        let free = ipc.free.clone();
        self.call(|store| free.call(store, (ptr, len as i32)))
    }

    /// Reads the result slot, copies the result out of guest memory and frees it in the guest.
    pub(super) fn take_result(&mut self, ipc: &IpcCalls) -> Result<Vec<u8>, UdfFailure> {
        let mut slot = [0u8; abi::RESULT_SLOT_LEN];
        self.memory
            .read(&self.store, ipc.result_slot as u32 as usize, &mut slot)
            .map_err(|_| {
                UdfFailure::MalformedOutput("the result slot is outside the guest's memory".into())
            })?;
        let ptr = u32::from_le_bytes([slot[0], slot[1], slot[2], slot[3]]);
        let len = u32::from_le_bytes([slot[4], slot[5], slot[6], slot[7]]);
        if u64::from(len) > self.limits.max_output_bytes {
            return Err(UdfFailure::OutputTooLarge {
                len: len.into(),
                cap: self.limits.max_output_bytes,
            });
        }
        let data = self.memory.data(&self.store);
        let bytes = data
            .get(ptr as usize..ptr as usize + len as usize)
            .ok_or_else(|| {
                UdfFailure::MalformedOutput(format!(
                    "the result ({len} bytes at {ptr}) lies outside the guest's {} bytes of memory",
                    data.len()
                ))
            })?
            .to_vec();
        self.free_bytes(ipc, ptr as i32, len as usize)?;
        Ok(bytes)
    }
}
