//! The allocator's detail in a result: the engine's [`fraglab_allocators::Detail`] in the
//! results schema (for slab, memcached's `stats slabs` names).

use fraglab_allocators::Detail;

/// The detail of `detail` as the results schema holds it.
pub fn allocator_detail(detail: &Detail) -> serde_json::Value {
    match detail {
        Detail::Slab(s) => serde_json::json!({
            "allocator": "slab",
            "total_malloced": s.total_malloced,
            "limit_maxbytes": s.limit_maxbytes,
            "pool_pages": s.pool_pages,
            "pages_past_limit": s.pages_past_limit,
            "classes": s.classes.iter().filter(|c| c.total_pages > 0).map(|c| serde_json::json!({
                "class": c.class,
                "chunk_size": c.chunk_size,
                "perslab": c.chunks_per_page,
                "total_pages": c.total_pages,
                "used_chunks": c.used_chunks,
                "free_chunks": c.free_chunks,
                "mem_requested": c.mem_requested,
            })).collect::<Vec<_>>(),
        }),
        other => serde_json::to_value(other).unwrap_or_default(),
    }
}
