//! Test allocators for the redis layout's aggregate encodings: glibc's malloc (exact
//! `requested_bytes`) and a wrapper that refuses one chosen request, to check that a failed
//! operation leaves its structure as it was.

use std::ptr::NonNull;

use fraglab_allocators::glibc::Glibc;
use fraglab_allocators::{AllocError, Allocator, Block, LimitKind, MemStats};

/// glibc's malloc under fraglab's accounting, refusing the `fail_at`-th request from now
/// (`alloc` and `realloc` calls count; 0 is the next one), if set.
#[derive(Debug)]
pub(super) struct Faulty {
    pub(super) inner: Glibc,
    fail_at: Option<u64>,
    calls: u64,
}

impl Faulty {
    pub(super) fn new() -> Self {
        Faulty {
            inner: Glibc::new(),
            fail_at: None,
            calls: 0,
        }
    }

    /// Refuses the `n`-th request from now (0: the next).
    pub(super) fn fail_in(&mut self, n: u64) {
        self.fail_at = Some(self.calls + n);
    }

    /// Refuses nothing.
    pub(super) fn heal(&mut self) {
        self.fail_at = None;
    }

    pub(super) fn requested(&self) -> u64 {
        self.inner.stats().requested_bytes
    }

    pub(super) fn live_blocks(&self) -> u64 {
        self.inner.stats().live_blocks
    }

    fn refuse(&mut self, size: usize) -> Result<(), AllocError> {
        let n = self.calls;
        self.calls += 1;
        if self.fail_at == Some(n) {
            return Err(AllocError::OutOfMemory { size });
        }
        Ok(())
    }
}

impl Allocator for Faulty {
    fn name(&self) -> &'static str {
        "faulty"
    }

    fn alloc(&mut self, size: usize) -> Result<Block, AllocError> {
        self.refuse(size)?;
        self.inner.alloc(size)
    }

    unsafe fn free(&mut self, ptr: NonNull<u8>, size: usize) {
        // SAFETY: the caller's contract, passed on.
        unsafe { self.inner.free(ptr, size) }
    }

    unsafe fn realloc(
        &mut self,
        ptr: NonNull<u8>,
        old_size: usize,
        new_size: usize,
    ) -> Result<Block, AllocError> {
        self.refuse(new_size)?;
        // SAFETY: the caller's contract, passed on.
        unsafe { self.inner.realloc(ptr, old_size, new_size) }
    }

    fn usable_size(&self, size: usize) -> Result<usize, AllocError> {
        self.inner.usable_size(size)
    }

    fn stats(&self) -> MemStats {
        self.inner.stats()
    }

    fn set_limit(&mut self, limit: Option<u64>) {
        self.inner.set_limit(limit);
    }

    fn limit(&self) -> Option<u64> {
        self.inner.limit()
    }

    fn limit_kind(&self) -> LimitKind {
        self.inner.limit_kind()
    }
}
