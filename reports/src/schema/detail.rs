//! `allocator_detail`: the allocator's own statistics at the end of a run, typed where the
//! reports read them (slab, log, a real Redis) and kept as JSON for the others.
//!
//! The JSON is an object tagged by its `allocator` field. Reading never fails on a valid JSON
//! value: a detail whose tag is not `slab`, `log` or `redis`, or whose fields do not fit the
//! typed shape, is kept as it is ([`AllocatorDetail::Other`]); `null` or no field at all is
//! [`AllocatorDetail::Absent`].

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The allocator's own statistics, by allocator.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum AllocatorDetail {
    /// None recorded: `null`, or no `allocator_detail` field.
    #[default]
    Absent,
    /// `"allocator": "slab"`: the slab allocator (in the engine, or a real memcached),
    /// memcached's `stats slabs`.
    Slab(SlabDetail),
    /// `"allocator": "log"`: the log-structured allocator's segments and cleaner.
    Log(LogDetail),
    /// `"allocator": "redis"`: a real Redis's `INFO memory` figures.
    Redis(RedisDetail),
    /// Anything else, as written: jemalloc, mimalloc, glibc, zmalloc and bump (what
    /// `fraglab_allocators::Detail` serializes to), or a slab, log or redis detail of another
    /// shape.
    Other(serde_json::Value),
}

/// The slab allocator's detail, in memcached's `stats slabs` names.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SlabDetail {
    /// Pages taken x page size (memcached's `total_malloced`; equals `footprint_bytes`).
    pub total_malloced: u64,
    /// The memory limit (`limit_maxbytes`); `null` without one.
    pub limit_maxbytes: Option<u64>,
    /// Pages in the global pool, in no class (memcached's `slab_global_page_pool`).
    pub pool_pages: u64,
    /// Pages granted past the limit by the first-page rule (memcached grants every class its
    /// first page even past the limit). Written by the engine's model; a real memcached does
    /// not report it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pages_past_limit: Option<u64>,
    /// Every class that holds pages, in class order.
    pub classes: Vec<SlabClassDetail>,
    /// Page moves between classes (the automover, `slabs reassign`); absent when the
    /// automover is off and no page moved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moves: Option<SlabMoves>,
}

/// The slab page mover's figures, in memcached's `stats` names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlabMoves {
    /// `slab_automove`: 0 off, 1 by the window of tail ages, 2 on every eviction.
    pub slab_automove: u8,
    /// `slabs_moved`: pages moved.
    pub slabs_moved: u64,
    /// `slab_reassign_rescues`: items copied out of a moving page.
    pub slab_reassign_rescues: u64,
    /// `slab_reassign_chunk_rescues`: chunks of large items copied out of a moving page.
    pub slab_reassign_chunk_rescues: u64,
    /// `slab_reassign_evictions_nomem`: items evicted because their class had no free chunk.
    pub slab_reassign_evictions_nomem: u64,
}

/// One slab class, in memcached's `stats slabs` and `stats items` names.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SlabClassDetail {
    /// Class id, from 1.
    pub class: u32,
    /// Chunk size in bytes.
    pub chunk_size: u64,
    /// Chunks per page. Written as `chunks_per_page` (memcached's `stats slabs` name); read
    /// also as `perslab` (memcached's `-vv` name, which result files used before).
    #[serde(alias = "perslab")]
    pub chunks_per_page: u64,
    /// Pages assigned to the class.
    pub total_pages: u64,
    /// Chunks holding items.
    pub used_chunks: u64,
    /// Chunks free in the class's pages.
    pub free_chunks: u64,
    /// Bytes the class's items asked for (`stats items`' `mem_requested`).
    pub mem_requested: u64,
    /// Items evicted from the class (`stats items`' `evicted`), when the source reports it (a
    /// real memcached).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evicted: Option<u64>,
}

/// The log-structured allocator's detail (RAMCloud's log: fixed-size segments and a cleaner
/// that copies live entries forward), in the allocator's own names.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LogDetail {
    /// Segment size in bytes.
    pub segment_size: u64,
    /// The cleaner's policy: `cost-benefit` (`(1-u) x age / (1+u)`) or `greedy` (lowest
    /// utilization first).
    pub cleaner: String,
    /// The target memory utilization the cleaner keeps (live / footprint), the spec's
    /// `utilization`.
    pub utilization_target: f64,
    /// Segments in use (head, survivor and sealed).
    pub segments: u64,
    /// Segments the memory limit allows; `null` without a limit.
    pub segments_max: Option<u64>,
    /// Segments the limit still allows; `null` without a limit.
    pub segments_free: Option<u64>,
    /// Bytes of entries appended by the caller (entry headers included).
    pub bytes_written: u64,
    /// Bytes of live entries the cleaner copied forward.
    pub bytes_copied: u64,
    /// `(bytes_written + bytes_copied) / bytes_written` (1 before anything is written).
    pub write_amplification: f64,
    /// Times the cleaner ran.
    pub cleaner_runs: u64,
    /// Segments the cleaner emptied and freed.
    pub segments_cleaned: u64,
    /// Segments given back to the system (cleaned, or emptied by frees).
    pub segments_released: u64,
    /// Segments the cleaner passed over because a live entry in them was pinned.
    pub cleaner_pinned_skips: u64,
    /// Live entries' bytes / footprint at the end.
    pub utilization: f64,
}

/// A real Redis's memory figures (`INFO memory`, `CLIENT INFO`) at the last sample.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RedisDetail {
    /// `used_memory`, less the sampling client's reply buffer.
    pub used_memory: u64,
    /// `used_memory` at the baseline (after the warm-up, before any data).
    pub used_memory_baseline: u64,
    /// `allocator_allocated`.
    pub allocator_allocated: u64,
    /// `allocator_active`.
    pub allocator_active: u64,
    /// `allocator_resident`.
    pub allocator_resident: u64,
    /// `mem_fragmentation_ratio`.
    pub mem_fragmentation_ratio: f64,
    /// `mem_allocator` (e.g. `jemalloc-5.3.0`).
    pub mem_allocator: String,
    /// `used_memory` as `INFO` reported it.
    pub used_memory_reported: u64,
    /// The sampling client's reply buffer (`rbs` of `CLIENT INFO`).
    pub client_reply_buffer: u64,
}

/// The typed variants as written: internally tagged by `allocator`.
#[derive(Serialize)]
#[serde(tag = "allocator", rename_all = "snake_case")]
enum Tagged<'a> {
    Slab(&'a SlabDetail),
    Log(&'a LogDetail),
    Redis(&'a RedisDetail),
}

impl AllocatorDetail {
    /// The detail a JSON value holds (never fails: see the module docs).
    pub fn from_value(value: serde_json::Value) -> AllocatorDetail {
        let typed = match value.get("allocator").and_then(|a| a.as_str()) {
            Some("slab") => SlabDetail::deserialize(&value)
                .ok()
                .map(AllocatorDetail::Slab),
            Some("log") => LogDetail::deserialize(&value)
                .ok()
                .map(AllocatorDetail::Log),
            Some("redis") => RedisDetail::deserialize(&value)
                .ok()
                .map(AllocatorDetail::Redis),
            _ => None,
        };
        match typed {
            Some(t) => t,
            None if value.is_null() => AllocatorDetail::Absent,
            None => AllocatorDetail::Other(value),
        }
    }

    /// The detail as the JSON value a result file holds.
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    /// The allocator it describes: the `allocator` tag (`slab`, `log`, `redis`, `jemalloc`, ...),
    /// None when absent or untagged.
    pub fn allocator(&self) -> Option<&str> {
        match self {
            AllocatorDetail::Absent => None,
            AllocatorDetail::Slab(_) => Some("slab"),
            AllocatorDetail::Log(_) => Some("log"),
            AllocatorDetail::Redis(_) => Some("redis"),
            AllocatorDetail::Other(v) => v.get("allocator").and_then(|a| a.as_str()),
        }
    }

    /// The slab detail, when it is one.
    pub fn slab(&self) -> Option<&SlabDetail> {
        match self {
            AllocatorDetail::Slab(s) => Some(s),
            _ => None,
        }
    }

    /// The log detail, when it is one.
    pub fn log(&self) -> Option<&LogDetail> {
        match self {
            AllocatorDetail::Log(l) => Some(l),
            _ => None,
        }
    }

    /// The Redis detail, when it is one.
    pub fn redis(&self) -> Option<&RedisDetail> {
        match self {
            AllocatorDetail::Redis(r) => Some(r),
            _ => None,
        }
    }
}

impl From<serde_json::Value> for AllocatorDetail {
    fn from(value: serde_json::Value) -> AllocatorDetail {
        AllocatorDetail::from_value(value)
    }
}

impl From<SlabDetail> for AllocatorDetail {
    fn from(d: SlabDetail) -> AllocatorDetail {
        AllocatorDetail::Slab(d)
    }
}

impl From<LogDetail> for AllocatorDetail {
    fn from(d: LogDetail) -> AllocatorDetail {
        AllocatorDetail::Log(d)
    }
}

impl From<RedisDetail> for AllocatorDetail {
    fn from(d: RedisDetail) -> AllocatorDetail {
        AllocatorDetail::Redis(d)
    }
}

impl Serialize for AllocatorDetail {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            AllocatorDetail::Absent => s.serialize_none(),
            AllocatorDetail::Slab(d) => Tagged::Slab(d).serialize(s),
            AllocatorDetail::Log(d) => Tagged::Log(d).serialize(s),
            AllocatorDetail::Redis(d) => Tagged::Redis(d).serialize(s),
            AllocatorDetail::Other(v) => v.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for AllocatorDetail {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<AllocatorDetail, D::Error> {
        serde_json::Value::deserialize(d).map(AllocatorDetail::from_value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn slab_reads_perslab_and_writes_chunks_per_page() {
        let old = json!({
            "allocator": "slab",
            "total_malloced": 2097152,
            "limit_maxbytes": null,
            "pool_pages": 0,
            "pages_past_limit": 0,
            "classes": [{"class": 1, "chunk_size": 96, "perslab": 10922, "total_pages": 1,
                         "used_chunks": 3, "free_chunks": 10919, "mem_requested": 200}]
        });
        let d = AllocatorDetail::from_value(old);
        let s = d.slab().expect("typed slab");
        assert_eq!(s.classes[0].chunks_per_page, 10922);
        assert_eq!(s.classes[0].evicted, None);
        assert_eq!(s.pages_past_limit, Some(0));
        let v = d.to_value();
        assert_eq!(v["allocator"], "slab");
        assert_eq!(v["classes"][0]["chunks_per_page"], 10922);
        assert!(v["classes"][0].get("perslab").is_none());
        assert!(v["classes"][0].get("evicted").is_none());
        assert!(v["limit_maxbytes"].is_null());
        assert_eq!(AllocatorDetail::from_value(v), d);
    }

    #[test]
    fn log_is_typed_and_round_trips() {
        let written = json!({
            "allocator": "log",
            "segment_size": 1048576,
            "cleaner": "cost-benefit",
            "utilization_target": 0.9,
            "segments": 12,
            "segments_max": null,
            "segments_free": null,
            "bytes_written": 4000,
            "bytes_copied": 1000,
            "write_amplification": 1.25,
            "cleaner_runs": 3,
            "segments_cleaned": 5,
            "segments_released": 6,
            "cleaner_pinned_skips": 0,
            "utilization": 0.875
        });
        let d = AllocatorDetail::from_value(written.clone());
        let l = d.log().expect("typed log");
        assert_eq!(l.cleaner, "cost-benefit");
        assert_eq!(l.bytes_copied, 1000);
        assert_eq!(l.segments_max, None);
        assert_eq!(d.allocator(), Some("log"));
        assert!(d.slab().is_none() && d.redis().is_none());
        assert_eq!(d.to_value(), written);
        assert_eq!(AllocatorDetail::from_value(d.to_value()), d);
        // A log detail of another shape stays as it was.
        let odd = json!({"allocator": "log", "segments": "many"});
        let d = AllocatorDetail::from_value(odd.clone());
        assert_eq!(d, AllocatorDetail::Other(odd));
        assert_eq!(d.allocator(), Some("log"));
        assert!(d.log().is_none());
    }

    #[test]
    fn untyped_and_absent_details_are_kept() {
        let je = json!({"allocator": "jemalloc", "arena": 9, "mapped": 4096});
        let d = AllocatorDetail::from_value(je.clone());
        assert_eq!(d, AllocatorDetail::Other(je.clone()));
        assert_eq!(d.allocator(), Some("jemalloc"));
        assert_eq!(d.to_value(), je);
        // A slab detail that does not fit the typed shape stays as it was.
        let odd = json!({"allocator": "slab", "classes": [{"class": "x"}]});
        let d = AllocatorDetail::from_value(odd.clone());
        assert_eq!(d, AllocatorDetail::Other(odd));
        assert_eq!(d.allocator(), Some("slab"));
        assert!(d.slab().is_none());
        assert_eq!(
            AllocatorDetail::from_value(serde_json::Value::Null),
            AllocatorDetail::Absent
        );
        assert!(AllocatorDetail::Absent.to_value().is_null());
        assert_eq!(AllocatorDetail::Absent.allocator(), None);
    }
}
