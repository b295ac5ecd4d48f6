//! memcached's `stats slabs`: the per-class figures and the slab allocator's detail.

use super::{Slab, SlabClassStats, SlabDetail};
use crate::page::PageSource;

impl<P: PageSource> Slab<P> {
    /// `stats slabs` for every class.
    pub fn class_stats(&self) -> Vec<SlabClassStats> {
        self.classes
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let total = u64::from(c.pages) * u64::from(c.chunks_per_page);
                SlabClassStats {
                    class: i as u32 + 1,
                    chunk_size: c.size,
                    chunks_per_page: c.chunks_per_page,
                    total_pages: c.pages,
                    total_chunks: total,
                    used_chunks: total - c.free_count,
                    free_chunks: c.free_count,
                    mem_requested: c.requested,
                }
            })
            .collect()
    }

    /// The detail [`Allocator::stats`](crate::Allocator::stats) reports: `stats slabs` plus
    /// the page-level figures.
    pub(super) fn detail(&self) -> SlabDetail {
        SlabDetail {
            total_malloced: self.mem_malloced,
            limit_maxbytes: self.mem_limit,
            pool_pages: self.pool.len() as u32,
            pages_past_limit: self.pages_past_limit,
            page_source: self.source.name().to_string(),
            classes: self.class_stats(),
            automove: self.config.automove.map_or(0, |a| a.mode),
            moves: self.moves,
        }
    }
}
