//! A checking allocator for the aggregate encodings' tests: jemalloc on a dedicated arena,
//! with a record of every live block that `free` and `realloc` are checked against (the
//! pointer must be live and the size the one it was requested with), and one refusal on
//! demand: the `n`-th request from now (`alloc` or `realloc`, growing or shrinking) fails, the
//! others succeed, as when a memory limit is crossed for a moment.

use std::collections::BTreeMap;
use std::ptr::NonNull;

use fraglab_allocators::jemalloc::Jemalloc;
use fraglab_allocators::{AllocError, Allocator, Block, LimitKind, MemStats};

/// See the [module docs](self).
#[derive(Debug)]
pub(super) struct Tracked {
    inner: Jemalloc,
    /// Live blocks: start address to requested size.
    pub(super) live: BTreeMap<usize, usize>,
    /// The request to refuse, counted in `calls`.
    fail_at: Option<u64>,
    /// Requests so far.
    calls: u64,
}

impl Tracked {
    pub(super) fn new() -> Self {
        Tracked {
            inner: Jemalloc::new().expect("a jemalloc arena"),
            live: BTreeMap::new(),
            fail_at: None,
            calls: 0,
        }
    }

    /// Refuses the `n`-th request from now (0: the next one).
    pub(super) fn fail_in(&mut self, n: u64) {
        self.fail_at = Some(self.calls + n);
    }

    /// Whether the chosen refusal has happened (then `fail_in` may be called again).
    pub(super) fn failed(&self) -> bool {
        self.fail_at.is_some_and(|f| self.calls > f)
    }

    fn request(&mut self, size: usize) -> Result<(), AllocError> {
        let now = self.calls;
        self.calls += 1;
        if self.fail_at == Some(now) {
            return Err(AllocError::OutOfMemory { size });
        }
        Ok(())
    }

    /// The requested bytes of the live blocks.
    pub(super) fn requested(&self) -> u64 {
        let r = self.inner.stats().requested_bytes;
        assert_eq!(r, self.live.values().map(|&s| s as u64).sum::<u64>());
        r
    }

    /// Asserts that `blocks` reports exactly the live blocks (every one once, with its size).
    pub(super) fn assert_blocks(&self, blocks: impl Fn(&mut dyn FnMut(usize, usize))) {
        let mut seen = BTreeMap::new();
        blocks(&mut |p, s| {
            assert!(seen.insert(p, s).is_none(), "block {p:#x} reported twice");
        });
        assert_eq!(seen, self.live, "reported blocks differ from the live ones");
        assert_eq!(
            self.requested(),
            seen.values().map(|&s| s as u64).sum::<u64>()
        );
    }
}

impl Allocator for Tracked {
    fn name(&self) -> &'static str {
        "tracked"
    }

    fn alloc(&mut self, size: usize) -> Result<Block, AllocError> {
        self.request(size)?;
        let b = self.inner.alloc(size)?;
        assert!(self.live.insert(b.ptr.as_ptr() as usize, size).is_none());
        Ok(b)
    }

    unsafe fn free(&mut self, ptr: NonNull<u8>, size: usize) {
        assert_eq!(
            self.live.remove(&(ptr.as_ptr() as usize)),
            Some(size),
            "free of {ptr:p} with size {size}"
        );
        // SAFETY: checked above: a live block of the inner allocator with this size.
        unsafe { self.inner.free(ptr, size) }
    }

    unsafe fn realloc(
        &mut self,
        ptr: NonNull<u8>,
        old_size: usize,
        new_size: usize,
    ) -> Result<Block, AllocError> {
        assert_eq!(
            self.live.get(&(ptr.as_ptr() as usize)),
            Some(&old_size),
            "realloc of {ptr:p} from size {old_size}"
        );
        self.request(new_size)?;
        // SAFETY: checked above: a live block of the inner allocator with this size.
        let b = unsafe { self.inner.realloc(ptr, old_size, new_size) }?;
        self.live.remove(&(ptr.as_ptr() as usize));
        self.live.insert(b.ptr.as_ptr() as usize, new_size);
        Ok(b)
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
