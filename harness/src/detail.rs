//! The allocator's detail in a result: the engine's [`fraglab_allocators::Detail`] in the
//! results schema ([`AllocatorDetail`]; for slab, memcached's `stats slabs` names; for the log,
//! its own).

use fraglab_allocators::Detail;
use fraglab_reports::{AllocatorDetail, LogDetail, SlabClassDetail, SlabDetail, SlabMoves};

/// The detail of `detail` as the results schema holds it: slab typed, with the classes that
/// hold pages; the log typed; the others as their own JSON.
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
            moves: (s.automove != 0 || s.moves.slabs_moved > 0).then_some(SlabMoves {
                slab_automove: s.automove,
                slabs_moved: s.moves.slabs_moved,
                slab_reassign_rescues: s.moves.rescues,
                slab_reassign_chunk_rescues: s.moves.chunk_rescues,
                slab_reassign_evictions_nomem: s.moves.evictions_nomem,
            }),
        }
        .into(),
        Detail::Log(l) => LogDetail {
            segment_size: l.segment_size,
            cleaner: l.cleaner.clone(),
            utilization_target: l.utilization_target,
            segments: l.segments,
            segments_max: l.segments_max,
            segments_free: l.segments_free,
            bytes_written: l.bytes_written,
            bytes_copied: l.bytes_copied,
            write_amplification: l.write_amplification,
            cleaner_runs: l.cleaner_runs,
            segments_cleaned: l.segments_cleaned,
            segments_released: l.segments_released,
            cleaner_pinned_skips: l.cleaner_pinned_skips,
            utilization: l.utilization,
        }
        .into(),
        other => AllocatorDetail::from_value(serde_json::to_value(other).unwrap_or_default()),
    }
}

/// Pages per slab class of a detail (classes that hold pages; empty for other allocators):
/// what memcached's `stats slabs` says as `total_pages`.
pub fn class_pages(d: &AllocatorDetail) -> std::collections::BTreeMap<u32, u64> {
    d.slab()
        .map(|s| s.classes.as_slice())
        .unwrap_or_default()
        .iter()
        .filter(|c| c.total_pages > 0)
        .map(|c| (c.class, c.total_pages))
        .collect()
}

/// The classes in which two per-class maps differ (a class absent from one counts).
pub fn classes_differing<K: Ord, V: PartialEq>(
    a: &std::collections::BTreeMap<K, V>,
    b: &std::collections::BTreeMap<K, V>,
) -> usize {
    a.keys()
        .chain(b.keys().filter(|k| !a.contains_key(k)))
        .filter(|k| a.get(k) != b.get(k))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_differ_where_a_value_differs_or_a_class_is_on_one_side_only() {
        let a: std::collections::BTreeMap<u32, u64> = [(1, 2), (2, 3)].into();
        assert_eq!(classes_differing(&a, &a), 0);
        let b = [(1, 2), (2, 4), (5, 1)].into();
        assert_eq!(classes_differing(&a, &b), 2);
        assert_eq!(classes_differing(&b, &a), 2);
    }

    #[test]
    fn log_detail_is_typed_with_every_figure() {
        let detail = Detail::Log(fraglab_allocators::log::LogDetail {
            segment_size: 1 << 20,
            cleaner: "greedy".into(),
            utilization_target: 0.85,
            segments: 7,
            segments_max: Some(9),
            segments_free: Some(2),
            bytes_written: 3000,
            bytes_copied: 600,
            write_amplification: 1.2,
            cleaner_runs: 4,
            segments_cleaned: 5,
            segments_released: 6,
            cleaner_pinned_skips: 1,
            utilization: 0.8,
        });
        let d = allocator_detail(&detail);
        let l = d.log().expect("typed log detail");
        assert_eq!(
            (l.segment_size, l.cleaner.as_str(), l.segments_max),
            (1 << 20, "greedy", Some(9))
        );
        assert_eq!((l.bytes_written, l.bytes_copied), (3000, 600));
        assert_eq!((l.cleaner_runs, l.segments_cleaned), (4, 5));
        assert_eq!((l.segments_released, l.cleaner_pinned_skips), (6, 1));
        assert_eq!((l.utilization_target, l.utilization), (0.85, 0.8));
        // Written as the allocator writes it: the same names, tagged `log`.
        let v = d.to_value();
        assert_eq!(v, serde_json::to_value(&detail).unwrap());
        assert_eq!(v["allocator"], "log");
        assert_eq!(v["segments_free"], 2);
        assert_eq!(v["write_amplification"], 1.2);
    }
}
