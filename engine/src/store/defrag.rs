//! Active defrag's cycle, as Redis 7.0's `activeDefragCycle` and `computeDefragCycles`
//! (`src/defrag.c`) run it from `serverCron`:
//!
//! - once a second (`run_with_period(1000)`, every [`HZ`]th tick) `computeDefragCycles` reads
//!   the allocator's fragmentation; a scan starts when `frag% >= threshold-lower` and the
//!   fragmented bytes reach `ignore-bytes`, with a CPU share interpolated from `cycle-min` to
//!   `cycle-max` ([`DefragConfig::cpu_pct`]); during a scan the share may rise, never fall;
//! - every tick of a running scan gets `cpu_pct` percent of the tick's 100 ms, which the model
//!   spends as [`KEYS_PER_CPU_MS`] keys per millisecond, scanning from a persistent cursor;
//! - when the scan completes the tick ends, and the next tick runs `computeDefragCycles`
//!   (whatever the one-second period) to decide whether another scan starts. Redis 7.0 decides
//!   at once and may start the next scan in the same tick while its time limit lasts; the
//!   model waits for the next tick so that a scan of a tiny or empty keyspace, which costs no
//!   keys, cannot be restarted without end within one tick's budget.
//!
//! The redis layout moves its own blocks ([`Layout::defrag_step`]); a layout of one block per
//! key that follows moves (compact) gives keys ([`Layout::scan_keys`]) and the store moves each
//! block and points the index and the eviction lists at its new place, through the same
//! [`Mover`] as compaction.

use std::ptr::NonNull;

use fraglab_allocators::{Allocator, Relocate};

use super::compaction::Mover;
use super::Store;
use crate::defrag::{DefragConfig, DefragCounters, HZ, KEYS_PER_CPU_MS};
use crate::layout::Layout;

/// The scan's state between ticks.
#[derive(Debug, Default)]
pub(super) struct DefragState {
    /// The CPU percent of the running scan; 0 when none runs (`active_defrag_running`).
    running: u32,
    /// The scan's cursor (0: at the start).
    cursor: u64,
    /// Cron ticks seen (`cronloops`).
    ticks: u64,
    /// A scan completed: the next tick decides whether another starts.
    decide_next: bool,
}

impl<A: Allocator, L: Layout> Store<A, L> {
    /// Whether active defrag can run here: the allocator gives the hint
    /// ([`Allocator::defrag_info`]).
    pub fn defrag_supported(&mut self) -> bool {
        self.alloc.defrag_info().is_some()
    }

    /// The CPU percent of the running scan, 0 when none runs (`active_defrag_running`).
    pub fn defrag_running(&self) -> u32 {
        self.defrag.running
    }

    /// `computeDefragCycles`.
    fn compute_defrag_cycles(&mut self, cfg: &DefragConfig) {
        let Some(info) = self.alloc.defrag_info() else {
            return;
        };
        let frag_pct = info.frag_pct();
        if self.defrag.running == 0
            && (frag_pct < f64::from(cfg.threshold_lower) || info.frag_bytes() < cfg.ignore_bytes)
        {
            return;
        }
        let cpu = cfg.cpu_pct(frag_pct);
        if cpu > self.defrag.running {
            self.defrag.running = cpu;
        }
    }

    /// One cron tick of active defrag (call every 100 ms of logical time, Redis's `hz 10`).
    /// Returns the keys visited.
    pub fn defrag_cycle(&mut self, cfg: &DefragConfig) -> u64 {
        let tick = self.defrag.ticks;
        self.defrag.ticks += 1;
        if tick % HZ == 0 || std::mem::take(&mut self.defrag.decide_next) {
            self.compute_defrag_cycles(cfg);
        }
        if self.defrag.running == 0 {
            return 0;
        }
        // Fresh bin figures for the hint at the start of each tick's work.
        self.alloc.defrag_info();
        self.counters.defrag.defrag_cycles += 1;
        // `timelimit = 1000000 * cpu_pct / hz / 100` us = `cpu_pct` ms at hz 10.
        let timelimit_us = (1_000_000 * u64::from(self.defrag.running) / HZ / 100).max(1);
        let mut budget = (timelimit_us * KEYS_PER_CPU_MS / 1000).max(1);
        let mut visited = 0;
        while budget > 0 {
            let (next, keys) = self.defrag_step(self.defrag.cursor, cfg);
            // A step costs at least one unit, so an empty bucket run still ends.
            budget = budget.saturating_sub(keys.max(1));
            visited += keys;
            self.defrag.cursor = next;
            if next == 0 {
                self.counters.defrag.scans_completed += 1;
                self.defrag.running = 0;
                self.defrag.decide_next = true;
                break;
            }
        }
        visited
    }

    /// One scan step from `cursor`: the next cursor and the keys visited.
    fn defrag_step(&mut self, cursor: u64, cfg: &DefragConfig) -> (u64, u64) {
        let c = &mut self.counters.defrag;
        if let Some(r) = self
            .layout
            .defrag_step(&mut self.alloc, cursor, cfg.max_scan_fields, c)
        {
            return r;
        }
        let mut keys = Vec::new();
        let next = self.layout.scan_keys(cursor, &mut keys);
        for &h in &keys {
            self.defrag_one_block(h);
        }
        (next, keys.len() as u64)
    }

    /// Moves a one-block key when the hint says so, pointing the index and the lists at it.
    fn defrag_one_block(&mut self, h: L::Handle) {
        let mut blocks = Vec::with_capacity(1);
        self.layout
            .blocks(&self.alloc, h, &mut |s, n| blocks.push((s, n)));
        let c: &mut DefragCounters = &mut self.counters.defrag;
        let [(start, size)] = blocks[..] else {
            // A chunked item is several blocks: not moved.
            c.skipped_blocks += blocks.len() as u64;
            c.active_defrag_key_misses += 1;
            return;
        };
        let from = NonNull::new(start as *mut u8).expect("a live block");
        // SAFETY: `from` is the key's live contiguous block of `size` requested bytes; on a
        // move the layout's index and the lists are pointed at the copy at once.
        let moved = unsafe {
            if self.alloc.defrag_hint(from, size) {
                self.alloc.defrag_move(from, size)
            } else {
                None
            }
        };
        match moved {
            Some(to) => {
                c.active_defrag_hits += 1;
                c.active_defrag_key_hits += 1;
                c.bytes_moved += size as u64;
                let mut mover = Mover {
                    layout: &mut self.layout,
                    lists: self.lists.as_mut(),
                    pinned: Vec::new(),
                };
                mover.relocated(from, to, size);
            }
            None => {
                c.active_defrag_misses += 1;
                c.active_defrag_key_misses += 1;
            }
        }
    }
}
