//! The class table memcached builds from its settings (`slabs_init`), and the settings'
//! checks (memcached's option parser).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{CHUNK_ALIGN, CHUNK_HEADER, ITEM_HEADER, MAX_CLASSES, PAGE_SIZE};

/// The settings memcached builds its slab classes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlabConfig {
    /// Growth factor between classes (`-f`, default 1.25, must be > 1).
    pub factor: f64,
    /// Minimum space for key, value and flags (`-n`, default 48): class 1 is `48 + min`.
    pub min: usize,
    /// Largest chunk (`-o slab_chunk_max`, in bytes in 1.6.18; default 512 KiB = page / 2, at
    /// most the page). Larger items are chunked.
    pub chunk_max: usize,
    /// Largest item (`-I`, default 1 MiB). Larger requests are refused with `TooLarge`.
    pub item_max: usize,
    /// Explicit chunk sizes (`-o slab_sizes=a-b-c`), replacing the computed ones.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sizes: Option<Vec<usize>>,
    /// The slab automover (`-o slab_automove=1|2`); `None` is `slab_automove=0`. memcached
    /// 1.6.18 starts with mode 1; fraglab's `slab` starts with the automover off, so that a run
    /// measures the allocator alone unless the spec asks for it (`slab:automove=1`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub automove: Option<AutomoveConfig>,
    /// Pages from 2 MiB-aligned reservations backed by transparent huge pages (`huge=1`; see
    /// [`crate::page::MapOptions`]). Off by default: memcached without `-L`.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub huge: bool,
    /// Every mapping made resident when it is made (`prefault=1`), so no op takes a
    /// first-touch fault. Off by default.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub prefault: bool,
    /// Keep the pages in this file (`file=PATH`, memcached's `-e PATH`), so that a restart
    /// finds the items there (`slab/restart.rs`). Items must fit one chunk
    /// (`item_max <= chunk_max`). As with `-e`, one page of every class is taken at the
    /// start (`slabs.c`'s `slabs_preallocate`), so a limit must hold at least as many pages as
    /// there are classes.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub file: Option<std::path::PathBuf>,
}

/// The slab automover's settings (memcached 1.6.18's `slab_automove*` options).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AutomoveConfig {
    /// `slab_automove`: 1 moves pages by the window of tail ages (`slab_automove.c`), once a
    /// second; 2 asks for a page on every eviction (`items.c`, `lru_pull_tail`).
    pub mode: u8,
    /// `slab_automove_ratio` (0.8): the youngest class's age must be under this share of the
    /// oldest's.
    pub ratio: f64,
    /// `slab_automove_window` (30): seconds of history the automover averages.
    pub window: u32,
    /// How often the maintainer runs when the workload has no time (every op at time 0): once
    /// every this many ops, each counting as one second. A workload with timestamps ticks once
    /// per second of its own time instead.
    pub tick_ops: u64,
    /// How long a page move keeps memcached's mover thread busy, in microseconds of trace time:
    /// requests for another move in that time are dropped (`slabs_reassign` answers
    /// `REASSIGN_RUNNING`). 750 by default: memcached 1.6.18 moved 390 to 780 pages a second
    /// (about 1,100 rescues a page) in the paced automove=2 validate case on the 2-core
    /// development machine, and 750 us puts the model's count inside the real runs' range.
    /// 0 makes every move instant.
    #[serde(default = "default_move_us")]
    pub move_us: u64,
}

fn default_move_us() -> u64 {
    AutomoveConfig::default().move_us
}

impl Default for AutomoveConfig {
    fn default() -> Self {
        AutomoveConfig {
            mode: 1,
            ratio: 0.8,
            window: 30,
            tick_ops: 100_000,
            move_us: 750,
        }
    }
}

impl Default for SlabConfig {
    fn default() -> Self {
        SlabConfig {
            factor: 1.25,
            min: 48,
            chunk_max: PAGE_SIZE / 2,
            item_max: PAGE_SIZE,
            sizes: None,
            automove: None,
            huge: false,
            prefault: false,
            file: None,
        }
    }
}

/// A configuration memcached would refuse, with its reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid slab configuration: {0}")]
pub struct ConfigError(pub String);

/// One slab class as `memcached -vv` prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassInfo {
    /// Class id, 1-based.
    pub class: u32,
    /// Chunk size in bytes.
    pub chunk_size: u32,
    /// Chunks per 1 MiB page: `chunks_per_page` in `stats slabs`, the name fraglab uses
    /// everywhere, the serialized form included; memcached's `slabs.c` calls the field
    /// `perslab`, and so does the `-vv` line ([`fmt::Display`]), which is kept as memcached
    /// prints it. Read also as `perslab`.
    #[serde(alias = "perslab")]
    pub chunks_per_page: u32,
}

impl fmt::Display for ClassInfo {
    /// The line `memcached -vv` prints: `slab class   1: chunk size        96 perslab   10922`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "slab class {:3}: chunk size {:9} perslab {:7}",
            self.class, self.chunk_size, self.chunks_per_page
        )
    }
}

impl SlabConfig {
    /// Checks the settings as memcached's option parser does.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |m: String| Err(ConfigError(m));
        if self.factor.is_nan() || self.factor <= 1.0 || !self.factor.is_finite() {
            return err(format!(
                "factor must be greater than 1 (got {})",
                self.factor
            ));
        }
        if self.min == 0 {
            return err("min must be at least 1".into());
        }
        if self.min > 1 << 30 {
            return err(format!(
                "min must be at most 1073741824 bytes (got {})",
                self.min
            ));
        }
        if self.chunk_max < 2 * CHUNK_HEADER || self.chunk_max > PAGE_SIZE {
            return err(format!(
                "chunk_max must be between {} and {PAGE_SIZE} bytes (got {})",
                2 * CHUNK_HEADER,
                self.chunk_max
            ));
        }
        if PAGE_SIZE % self.chunk_max != 0 {
            return err(format!(
                "chunk_max must divide evenly into the {PAGE_SIZE}-byte page (got {})",
                self.chunk_max
            ));
        }
        if ITEM_HEADER + self.min > self.chunk_max {
            // memcached accepts such a -n and builds a first class larger than a page, which
            // holds no chunk at all; the model refuses it.
            return err(format!(
                "min ({}) plus the {ITEM_HEADER}-byte item header must fit in chunk_max ({})",
                self.min, self.chunk_max
            ));
        }
        if self.item_max < 1024 || self.item_max > 1 << 30 {
            return err(format!(
                "item_max must be between 1024 and 1073741824 bytes (got {})",
                self.item_max
            ));
        }
        if self.item_max % self.chunk_max != 0 {
            return err(format!(
                "chunk_max ({}) must divide evenly into item_max ({})",
                self.chunk_max, self.item_max
            ));
        }
        if self.file.is_some() && self.item_max > self.chunk_max {
            return err(format!(
                "file keeps every item in one chunk, so a restart reads it whole: item_max ({}) must be at most chunk_max ({}); add item_max={}",
                self.item_max, self.chunk_max, self.chunk_max
            ));
        }
        if self.file.is_some() && self.huge {
            return err(
                "file and huge cannot go together: a file's pages are its own mappings".into(),
            );
        }
        if let Some(a) = &self.automove {
            if !(1..=2).contains(&a.mode) {
                return err(format!("automove must be 0, 1 or 2 (got {})", a.mode));
            }
            // memcached's option parser: "slab_automove_ratio must be > 0 and < 1" (it
            // accepts 1).
            if a.ratio.is_nan() || a.ratio <= 0.0 || a.ratio > 1.0 {
                return err(format!(
                    "automove_ratio must be > 0 and at most 1 (got {})",
                    a.ratio
                ));
            }
            if a.window < 3 {
                return err(format!("automove_window must be > 2 (got {})", a.window));
            }
            if a.tick_ops == 0 {
                return err("tick_ops must be at least 1".into());
            }
        }
        if let Some(sizes) = &self.sizes {
            if sizes.is_empty() {
                return err("sizes must list at least one size".into());
            }
            if sizes.len() > MAX_CLASSES - 1 {
                return err(format!(
                    "sizes may list at most {} sizes (got {})",
                    MAX_CLASSES - 1,
                    sizes.len()
                ));
            }
            let mut last = 0;
            for &s in sizes {
                if s < self.min || s > self.chunk_max {
                    return err(format!(
                        "slab size {s} is out of the valid range {}..={}",
                        self.min, self.chunk_max
                    ));
                }
                if s <= last + CHUNK_ALIGN {
                    return err(format!(
                        "slab size {s} must be more than {CHUNK_ALIGN} bytes larger than the \
                         previous size ({last})"
                    ));
                }
                last = s;
            }
        }
        Ok(())
    }

    /// The class table `slabs_init` builds from these settings.
    pub fn classes(&self) -> Result<Vec<ClassInfo>, ConfigError> {
        self.validate()?;
        let mut out = Vec::new();
        let mut size: u32 = (ITEM_HEADER + self.min) as u32;
        let mut i = 0usize;
        // memcached: `while (++i < MAX_NUMBER_OF_SLAB_CLASSES - 1)`, i.e. classes 1..=62.
        loop {
            i += 1;
            if i >= MAX_CLASSES {
                break;
            }
            if let Some(sizes) = &self.sizes {
                match sizes.get(i - 1) {
                    Some(&s) => size = s as u32,
                    None => break,
                }
            } else if f64::from(size) >= self.chunk_max as f64 / self.factor {
                break;
            }
            if size as usize % CHUNK_ALIGN != 0 {
                size += (CHUNK_ALIGN - size as usize % CHUNK_ALIGN) as u32;
            }
            out.push(ClassInfo {
                class: i as u32,
                chunk_size: size,
                chunks_per_page: (PAGE_SIZE / size as usize) as u32,
            });
            if self.sizes.is_none() {
                // `size *= factor` on an unsigned int: multiply as double, truncate.
                size = (f64::from(size) * self.factor) as u32;
            }
        }
        out.push(ClassInfo {
            class: i as u32,
            chunk_size: self.chunk_max as u32,
            chunks_per_page: (PAGE_SIZE / self.chunk_max) as u32,
        });
        Ok(out)
    }
}
