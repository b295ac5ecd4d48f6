//! The allocator's detail in a result: the engine's [`fraglab_allocators::Detail`] in the
//! results schema ([`AllocatorDetail`]; for slab, memcached's `stats slabs` names).

use fraglab_allocators::Detail;
use fraglab_reports::{AllocatorDetail, SlabClassDetail, SlabDetail};

/// The detail of `detail` as the results schema holds it: slab typed, with the classes that
/// hold pages; the others as their own JSON.
pub fn allocator_detail(detail: &Detail) -> AllocatorDetail {
    match detail {
        Detail::Slab(s) => SlabDetail {
            total_malloced: s.total_malloced,
            limit_maxbytes: s.limit_maxbytes,
            pool_pages: u64::from(s.pool_pages),
            pages_past_limit: Some(u64::from(s.pages_past_limit)),
            classes: s
                .classes
                .iter()
                .filter(|c| c.total_pages > 0)
                .map(|c| SlabClassDetail {
                    class: c.class,
                    chunk_size: u64::from(c.chunk_size),
                    chunks_per_page: u64::from(c.chunks_per_page),
                    total_pages: u64::from(c.total_pages),
                    used_chunks: c.used_chunks,
                    free_chunks: c.free_chunks,
                    mem_requested: c.mem_requested,
                    evicted: None,
                })
                .collect(),
        }
        .into(),
        other => AllocatorDetail::from_value(serde_json::to_value(other).unwrap_or_default()),
    }
}
