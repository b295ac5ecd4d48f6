//! Persistence in a result: fork snapshots (`--snapshot-at`) and the append-only file
//! (`--aof`), each save measured as Redis measures a BGSAVE or a BGREWRITEAOF (`rdb.c`,
//! `aof.c`, `server.c`'s `sendChildInfo`: the child's `Private_Dirty` from
//! `/proc/self/smaps` at its end is `rdb_last_cow_size`). Documented in
//! `docs/results-schema.md`.

use serde::{Deserialize, Serialize};

/// One forked save: a snapshot, or an AOF rewrite.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ForkSave {
    /// The ops replayed when the child was forked.
    pub at_op: u64,
    /// How long `fork` held the replay, microseconds (Redis's `latest_fork_usec`).
    pub fork_us: u64,
    /// From the fork to the child's report, seconds.
    pub duration_s: f64,
    /// Seconds of the save during which the parent replayed: `duration_s`, or less when the
    /// replay ended first (the parent then waited for the child).
    #[serde(default)]
    pub overlap_s: f64,
    /// Keys saved.
    pub keys: u64,
    /// The allocator's allocated bytes when the child was forked (the data the save
    /// shares), the scale for `cow_bytes`.
    #[serde(default)]
    pub allocated_at_fork: u64,
    /// Bytes of the file the child wrote.
    pub bytes: u64,
    /// The child's private dirty bytes at its end (`Private_Dirty` of
    /// `/proc/<child>/smaps_rollup`): the pages the parent's writes made the kernel copy, plus
    /// the child's own few (its stack and buffers). Redis's `rdb_last_cow_size`.
    pub cow_bytes: u64,
    /// The growth of the replaying process's own private dirty bytes from the fork to the
    /// child's end: the pages it copied, plus pages it newly touched.
    pub parent_dirty_bytes: u64,
    /// Copy-on-write in user space at the allocator's block granularity over the same
    /// window (`--snapshot-at` on an allocator that owns its memory, `slab`): the bytes of
    /// the blocks live at the fork that were written before the child ended. Absent where
    /// the allocator does not own its blocks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_cow_bytes: Option<u64>,
    /// The same window counted in 4 KiB pages of the allocator's memory, as the kernel
    /// copies them (the part of `cow_bytes` the allocator's blocks explain).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_page_cow_bytes: Option<u64>,
    /// Ops the parent replayed while the child ran, and how many of them wrote.
    pub ops_during: u64,
    /// Writes among `ops_during` (sets, deletes, aggregate writes, ...).
    pub writes_during: u64,
    /// Whether the child finished (false: Ctrl-C, or an error, in `error`).
    pub complete: bool,
    /// Why the save failed, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Where the file was kept (`--snapshot-to`); absent when it was a temporary file, removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

impl ForkSave {
    /// `cow_bytes` as a share of `allocated_at_fork` (0 when nothing was allocated).
    pub fn cow_share(&self) -> f64 {
        if self.allocated_at_fork > 0 {
            self.cow_bytes as f64 / self.allocated_at_fork as f64
        } else {
            0.0
        }
    }

    /// The parent's writes per second while it replayed during the save (`writes_during /
    /// overlap_s`), the rate the copy-on-write grows with.
    pub fn write_rate(&self) -> f64 {
        if self.overlap_s > 0.0 {
            self.writes_during as f64 / self.overlap_s
        } else {
            0.0
        }
    }
}

/// The `snapshot` section: the forked snapshots of a run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SnapshotSection {
    /// `--snapshot-key-delay`, microseconds per key (Redis's `rdb-key-save-delay`).
    pub key_delay_us: u64,
    /// The largest `cow_bytes` of the saves: what memory must be sized for.
    pub cow_bytes: u64,
    /// Each save, in order.
    pub saves: Vec<ForkSave>,
}

/// The `restart` section: a warm restart part way (`--restart-at`, `slab:file=PATH`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RestartSection {
    /// The ops replayed when the store was restarted.
    pub at_op: u64,
    /// From the shutdown (metadata written) to the index rebuilt, seconds.
    pub duration_s: f64,
    /// Keys held before.
    pub items_before: u64,
    /// Keys found again, each checked whole (key, sizes, the value's CRLF).
    pub items_after: u64,
    /// Chunks marked live that did not hold a sound item (dropped).
    pub bad_items: u64,
    /// Why the first bad items were bad.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bad_reasons: Vec<String>,
    /// Whether the LRU lists kept their order: the items' links moved by the distance between
    /// the old mapping's base and the new (memcached's `restart_fixup`); false when they were
    /// rebuilt by last access (links that did not hold together).
    #[serde(default)]
    pub lists_kept: bool,
    /// Pages per slab class (`[class, pages]`, classes holding pages) just before the restart
    /// and just after it: a restart gives every page back to its class.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub class_pages_before: Vec<[u64; 2]>,
    /// See `class_pages_before`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub class_pages_after: Vec<[u64; 2]>,
    /// The page file.
    pub file: String,
    /// Bytes of the metadata file written at the shutdown (the class of every page).
    pub meta_bytes: u64,
    /// `meta_bytes / items_before`: what the file's own metadata costs per item.
    pub meta_bytes_per_item: f64,
    /// Bytes of each item that are addresses (memcached's LRU links and hash chain): at a
    /// restart the LRU links are moved to the new base and the hash chain is built anew.
    pub link_bytes_per_item: u64,
    /// What the same links would take as 4-byte offsets from the mapping's base (8-byte units
    /// reach 32 GiB): what restartable pointers would save per item.
    pub offset_bytes_per_item: u64,
    /// Why the restart was refused or failed, if it was (the run then went on unrestarted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The `aof` section: what the append-only file cost.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AofSection {
    /// `always`, `everysec` or `no` (Redis's `appendfsync`).
    pub fsync: String,
    /// The file's size at the end.
    pub aof_bytes: u64,
    /// Bytes appended over the run (rewrites' files not included).
    pub bytes_appended: u64,
    /// Write commands appended.
    pub commands: u64,
    /// `fsync` calls made.
    pub fsyncs: u64,
    /// `auto-aof-rewrite-percentage` and `auto-aof-rewrite-min-size` as used.
    pub rewrite_percentage: u64,
    /// See `rewrite_percentage`.
    pub rewrite_min_size: u64,
    /// Each rewrite, a forked child writing the whole dataset as commands.
    pub rewrites: Vec<ForkSave>,
}
