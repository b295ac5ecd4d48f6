//! A log-structured allocator with a cleaner, after RAMCloud ("Log-structured Memory for
//! DRAM-based Storage", Rumble, Kejriwal and Ousterhout, FAST 2014).
//!
//! Memory is a set of fixed-size segments (8 MiB by default, as in RAMCloud; `segment=1m`
//! compares with memcached's slab pages). A block is appended to the head segment behind a
//! 4-byte entry header, so a block costs its size + 4 bytes (`allocated_bytes`), with no size
//! classes and no alignment:
//!
//! ```text
//!  segment (S bytes)                                                 unwritten
//! +-----+---------+-----+-------------+-----+------+-- ... --+-----+--------+
//! | hdr | block 0 | hdr | block 1     | hdr | blk 2|         | hdr | blk n  |        |
//! +-----+---------+-----+-------------+-----+------+-- ... --+-----+--------+--------+
//!  hdr (u32, little-endian) = size << 1 | live
//! ```
//!
//! `free` clears the entry's live bit and takes its bytes off the segment's live count (a
//! segment whose last live entry goes is given back at once, even the head). Dead entries are reclaimed by the
//! **cleaner**: it picks sealed segments (full ones, neither the head nor the cleaner's own
//! survivor segment), copies their live entries into survivor segments, tells the owner of each
//! block where it went ([`Relocate::relocated`]) and gives the cleaned segments back to the
//! system. It picks by RAMCloud's cost-benefit score `(1 - u) x age / (1 + u)` (`u` the
//! segment's live fraction, `age` the log's write clock, in bytes appended, since the segment
//! was opened, for a survivor too), or greedily by the lowest
//! `u` (`cleaner=greedy`). Cleaning `u`-full segments copies `u / (1 - u)` bytes per byte it
//! frees.
//!
//! The cleaner runs inline, in the caller's thread, when the caller calls
//! [`Allocator::compact`] (the engine does whenever [`Allocator::wants_compaction`] says so and
//! when a request is refused), so its copying is part of the run's measured time, as a
//! single-threaded cleaner's would be (RAMCloud cleans on other cores). When it runs:
//!
//! - with a memory limit (`LimitKind::Footprint`: the limit allows `limit / S` segments, one
//!   of which is kept for the cleaner's survivors): when fewer than `free_min` segments are free
//!   (default 2), or when the segments in use pass `utilization` of the limit; and when a
//!   request finds no free segment. If the cleaner cannot free one, the request is out of
//!   memory, as in RAMCloud;
//! - without a limit: when the live bytes fall below `utilization` (default 0.90) of the
//!   footprint, so the log grows only while it is at least that full.
//!
//! Either way it runs only when the dead bytes of the sealed segments add up to a segment or
//! more (otherwise it could free nothing), and stops as soon as the condition no longer holds.
//! A run that frees no segment (the dead bytes were the ends of segments too short for the
//! blocks, as with blocks of a sizeable fraction of a segment, or pinned) is not repeated until
//! another segment's worth of bytes has died.
//!
//! The footprint is the segments in use x S (the unwritten end of a head counts: it is held).

mod cleaner;
mod region;

use std::fmt;
use std::ptr::NonNull;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use crate::stats::LogDetail;
use crate::stats::{Detail, MemStats, Tally};
use crate::{AllocError, Allocator, Block, LimitKind, Relocate};
use region::Region;

/// Bytes of entry header before each block.
pub const HEADER: usize = 4;
/// Segments smaller than this are refused.
pub const SEGMENT_MIN: usize = 64 << 10;
/// Segments larger than this are refused (an entry's offset fits 30 bits).
pub const SEGMENT_MAX: usize = 1 << 30;

/// How the cleaner picks the segments it cleans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CleanerPolicy {
    /// RAMCloud's `(1 - u) x age / (1 + u)`, highest first.
    CostBenefit,
    /// Lowest live fraction first.
    Greedy,
}

impl CleanerPolicy {
    /// The name in specs.
    pub fn name(self) -> &'static str {
        match self {
            CleanerPolicy::CostBenefit => "cost-benefit",
            CleanerPolicy::Greedy => "greedy",
        }
    }
}

impl fmt::Display for CleanerPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for CleanerPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "cost-benefit" | "cost_benefit" => Ok(CleanerPolicy::CostBenefit),
            "greedy" => Ok(CleanerPolicy::Greedy),
            _ => Err("valid: cost-benefit, greedy".into()),
        }
    }
}

/// The log's settings (`log:segment=8m,cleaner=cost-benefit,utilization=0.9,free_min=2`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LogConfig {
    /// Segment size in bytes (a multiple of 4096, 64 KiB to 1 GiB).
    pub segment: usize,
    /// How the cleaner picks segments.
    pub cleaner: CleanerPolicy,
    /// The utilization the cleaner keeps: without a limit, live / footprint; with one, the
    /// share of the limit's segments in use past which cleaning starts.
    pub utilization: f64,
    /// With a limit: cleaning starts when fewer segments than this are free.
    pub free_min: u32,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment: 8 << 20,
            cleaner: CleanerPolicy::CostBenefit,
            utilization: 0.90,
            free_min: 2,
        }
    }
}

impl LogConfig {
    /// Checks the settings together.
    pub fn validate(&self) -> Result<(), String> {
        if !(SEGMENT_MIN..=SEGMENT_MAX).contains(&self.segment) || self.segment % 4096 != 0 {
            return Err(format!(
                "log: segment must be a multiple of 4096 between 64k and 1g, not {}",
                self.segment
            ));
        }
        if !(self.utilization > 0.0 && self.utilization < 1.0) {
            return Err(format!(
                "log: utilization must be between 0 and 1 (exclusive), not {}",
                self.utilization
            ));
        }
        Ok(())
    }
}

/// Where a segment is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Not committed: no memory.
    Free,
    /// Taking the caller's blocks.
    Head,
    /// Taking the cleaner's copies.
    Survivor,
    /// Full: a candidate for cleaning.
    Sealed,
}

/// One segment's books.
#[derive(Debug, Clone, Copy)]
struct Seg {
    /// Bytes appended (entries, live or dead).
    written: usize,
    /// Bytes of live entries (headers included).
    live: usize,
    /// Live entries.
    entries: u32,
    /// The write clock when the segment was opened (a survivor's too).
    stamp: u64,
    state: State,
}

impl Seg {
    const FREE: Seg = Seg {
        written: 0,
        live: 0,
        entries: 0,
        stamp: 0,
        state: State::Free,
    };
}

/// What the cleaner has done.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Work {
    bytes_written: u64,
    bytes_copied: u64,
    runs: u64,
    segments_cleaned: u64,
    segments_released: u64,
    pinned_skips: u64,
}

/// The log-structured allocator. See the [module docs](self).
pub struct Log {
    cfg: LogConfig,
    region: Region,
    segs: Vec<Seg>,
    /// Ids given back and not yet reused (taken lowest first).
    free_ids: std::collections::BTreeSet<u32>,
    head: Option<u32>,
    survivor: Option<u32>,
    in_use: u32,
    /// Sum over sealed segments of `S - live`: what cleaning them all would reclaim.
    sealed_dead: u64,
    /// Bytes appended by the caller (the cleaner's clock).
    clock: u64,
    /// `sealed_dead` after a cleaning run that freed no segment (the dead bytes were ends of
    /// segments too short for the blocks, or pinned): cleaning waits until a segment's worth
    /// more has died.
    stalled_at: Option<u64>,
    tally: Tally,
    limit: Option<u64>,
    work: Work,
}

// SAFETY: the log owns its reservation outright; the raw base pointer is never shared with
// another `Log`, so moving one to another thread moves all access with it.
unsafe impl Send for Log {}

impl fmt::Debug for Log {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Log")
            .field("cfg", &self.cfg)
            .field("in_use", &self.in_use)
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

#[inline]
fn header(size: usize, live: bool) -> u32 {
    (size as u32) << 1 | u32::from(live)
}

impl Log {
    /// A log with these settings, or why not (settings, or no address space to reserve).
    pub fn new(cfg: LogConfig) -> Result<Log, String> {
        cfg.validate()?;
        let region = Region::reserve(cfg.segment)
            .ok_or_else(|| "log: the system refused to reserve address space".to_string())?;
        Ok(Log {
            cfg,
            region,
            segs: Vec::new(),
            free_ids: Default::default(),
            head: None,
            survivor: None,
            in_use: 0,
            sealed_dead: 0,
            clock: 0,
            stalled_at: None,
            tally: Tally::default(),
            limit: None,
            work: Work::default(),
        })
    }

    /// The settings.
    pub fn config(&self) -> &LogConfig {
        &self.cfg
    }

    /// The segments the limit allows (or the reservation holds).
    fn max_segments(&self) -> u32 {
        let reserved = self.region.segments();
        match self.limit {
            Some(l) => (l / self.cfg.segment as u64).min(u64::from(reserved)) as u32,
            None => reserved,
        }
    }

    /// The largest block.
    fn max_block(&self) -> usize {
        self.cfg.segment - HEADER
    }

    fn footprint(&self) -> u64 {
        u64::from(self.in_use) * self.cfg.segment as u64
    }

    /// Opens a segment for the caller's blocks (keeping one free for the cleaner under a
    /// limit) or for the cleaner's copies.
    fn open(&mut self, state: State) -> Option<u32> {
        let reserve = u32::from(self.limit.is_some() && state == State::Head);
        if self.in_use + 1 + reserve > self.max_segments() {
            return None;
        }
        let id = match self.free_ids.pop_first() {
            Some(id) => id,
            None => {
                let id = u32::try_from(self.segs.len()).ok()?;
                if id >= self.region.segments() {
                    return None;
                }
                self.segs.push(Seg::FREE);
                id
            }
        };
        if !self.region.commit(id) {
            self.free_ids.insert(id);
            return None;
        }
        self.in_use += 1;
        self.segs[id as usize] = Seg {
            stamp: self.clock,
            state,
            ..Seg::FREE
        };
        Some(id)
    }

    /// Seals an open segment: it becomes a candidate for cleaning (or is freed, if empty).
    fn seal(&mut self, id: u32) {
        let s = &mut self.segs[id as usize];
        if s.entries == 0 {
            self.release(id);
        } else {
            s.state = State::Sealed;
            self.sealed_dead += (self.cfg.segment - s.live) as u64;
        }
    }

    /// Gives an empty segment back to the system.
    fn release(&mut self, id: u32) {
        let s = self.segs[id as usize];
        debug_assert_eq!(s.entries, 0);
        if s.state == State::Sealed {
            self.sealed_dead -= (self.cfg.segment - s.live) as u64;
        }
        self.region.decommit(id);
        self.segs[id as usize] = Seg::FREE;
        self.free_ids.insert(id);
        self.in_use -= 1;
        self.work.segments_released += 1;
    }

    /// Appends an entry of `size` bytes to open segment `id`, which has room; returns the
    /// block.
    fn append(&mut self, id: u32, size: usize) -> NonNull<u8> {
        let seg = &mut self.segs[id as usize];
        let at = seg.written;
        seg.written += HEADER + size;
        seg.live += HEADER + size;
        seg.entries += 1;
        let start = self.region.start(id);
        // SAFETY: `at + HEADER + size <= S` (the caller checked the room), inside a committed
        // segment.
        unsafe {
            let entry = start.add(at);
            entry
                .cast::<u32>()
                .as_ptr()
                .write_unaligned(header(size, true));
            entry.add(HEADER)
        }
    }

    fn room(&self, id: Option<u32>, entry: usize) -> Option<u32> {
        id.filter(|&i| self.cfg.segment - self.segs[i as usize].written >= entry)
    }

    /// Whether a request could find a segment without cleaning.
    fn short_of_segments(&self) -> bool {
        self.limit.is_some() && self.in_use + 2 > self.max_segments()
    }

    /// The log's detail.
    pub fn detail(&self) -> LogDetail {
        let written = self.work.bytes_written;
        let max = self.limit.map(|_| u64::from(self.max_segments()));
        LogDetail {
            segment_size: self.cfg.segment as u64,
            cleaner: self.cfg.cleaner.name().to_string(),
            utilization_target: self.cfg.utilization,
            segments: u64::from(self.in_use),
            segments_max: max,
            segments_free: max.map(|m| m.saturating_sub(u64::from(self.in_use))),
            bytes_written: written,
            bytes_copied: self.work.bytes_copied,
            write_amplification: if written == 0 {
                1.0
            } else {
                (written + self.work.bytes_copied) as f64 / written as f64
            },
            cleaner_runs: self.work.runs,
            segments_cleaned: self.work.segments_cleaned,
            segments_released: self.work.segments_released,
            cleaner_pinned_skips: self.work.pinned_skips,
            utilization: if self.in_use == 0 {
                0.0
            } else {
                self.tally.allocated as f64 / self.footprint() as f64
            },
        }
    }
}

impl Allocator for Log {
    const MOVES_BLOCKS: bool = true;

    fn name(&self) -> &'static str {
        "log"
    }

    fn alloc(&mut self, size: usize) -> Result<Block, AllocError> {
        if size > self.max_block() {
            self.tally.on_failure();
            return Err(AllocError::TooLarge {
                size,
                max: self.max_block(),
            });
        }
        let entry = HEADER + size;
        let id = match self.room(self.head, entry) {
            Some(id) => id,
            None => {
                if let Some(old) = self.head.take() {
                    self.seal(old);
                }
                match self.open(State::Head) {
                    Some(id) => {
                        self.head = Some(id);
                        id
                    }
                    None => {
                        self.tally.on_failure();
                        // Out of segments (or a limit under two segments: one for the head,
                        // one kept for the cleaner, so nothing ever fits).
                        return Err(AllocError::OutOfMemory { size });
                    }
                }
            }
        };
        let ptr = self.append(id, size);
        self.clock += entry as u64;
        self.work.bytes_written += entry as u64;
        self.tally.on_alloc(size, entry);
        Ok(Block { ptr, usable: size })
    }

    unsafe fn free(&mut self, ptr: NonNull<u8>, size: usize) {
        // SAFETY: `ptr` is a live block (caller's promise), so its header is the 4 bytes
        // before it, in the same segment.
        let entry = unsafe { ptr.sub(HEADER) };
        let (id, _) = self.region.locate(entry);
        // SAFETY: as above.
        unsafe {
            let h = entry.cast::<u32>();
            debug_assert_eq!(h.as_ptr().read_unaligned(), header(size, true));
            h.as_ptr().write_unaligned(header(size, false));
        }
        let seg = &mut self.segs[id as usize];
        seg.live -= HEADER + size;
        seg.entries -= 1;
        let (state, empty) = (seg.state, seg.entries == 0);
        if state == State::Sealed {
            self.sealed_dead += (HEADER + size) as u64;
        }
        if empty {
            // An empty segment is given back, open or sealed: nothing in it is live.
            match state {
                State::Head => self.head = None,
                State::Survivor => self.survivor = None,
                _ => {}
            }
            self.release(id);
        }
        self.tally.on_free(size, HEADER + size);
    }

    unsafe fn realloc(
        &mut self,
        ptr: NonNull<u8>,
        old_size: usize,
        new_size: usize,
    ) -> Result<Block, AllocError> {
        let block = self.alloc(new_size)?;
        // SAFETY: `ptr` is live with `old_size` bytes (caller's promise) and `block` is a fresh
        // entry of `new_size` bytes; entries never overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(ptr.as_ptr(), block.ptr.as_ptr(), old_size.min(new_size));
            self.free(ptr, old_size);
        }
        self.tally.count_as_realloc();
        Ok(block)
    }

    fn usable_size(&self, size: usize) -> Result<usize, AllocError> {
        if size > self.max_block() {
            return Err(AllocError::TooLarge {
                size,
                max: self.max_block(),
            });
        }
        Ok(HEADER + size)
    }

    fn max_contiguous(&self) -> usize {
        self.max_block()
    }

    fn stats(&self) -> MemStats {
        self.tally
            .snapshot(self.footprint(), Detail::Log(self.detail()))
    }

    fn set_limit(&mut self, limit: Option<u64>) {
        self.limit = limit;
    }

    fn limit(&self) -> Option<u64> {
        self.limit
    }

    fn limit_kind(&self) -> LimitKind {
        LimitKind::Footprint
    }

    fn wants_compaction(&self) -> bool {
        let floor = self.stalled_at.unwrap_or(0);
        if self.sealed_dead < floor.saturating_add(self.cfg.segment as u64) {
            return false;
        }
        match self.limit {
            Some(_) => {
                let max = self.max_segments();
                let free = max.saturating_sub(self.in_use);
                free < self.cfg.free_min
                    || f64::from(self.in_use) > self.cfg.utilization * f64::from(max)
            }
            None => (self.tally.allocated as f64) < self.cfg.utilization * self.footprint() as f64,
        }
    }

    fn compact(&mut self, relocate: &mut dyn Relocate) -> u64 {
        self.clean(relocate)
    }

    fn library_version(&self) -> Option<String> {
        None
    }
}
