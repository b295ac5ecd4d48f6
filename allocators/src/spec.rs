//! Allocator specs: `NAME[:key=value,...]`, parsed from the command line, serialized with every
//! default resolved, and turned into a concrete allocator with static dispatch.
//!
//! | spec | keys (defaults) |
//! |---|---|
//! | `slab` | `factor` (1.25), `min` (48), `chunk_max` (524288), `item_max` (1048576), `sizes` (none; `96-192-384`), `automove` (0; or 1, 2), `automove_ratio` (0.8), `automove_window` (30), `tick_ops` (100000: maintainer ticks of an untimed workload), `move_us` (750: microseconds a page move keeps the mover busy), `huge` (0; 1: pages on transparent huge pages), `prefault` (0; 1: pages resident when mapped), `file` (none; a path: the pages live in that file, for `--restart-at`; needs `item_max` at most `chunk_max`) |
//! | `zmalloc` | `backend` (`glibc`; or `jemalloc`, `mimalloc`), `prefix` (`8`: size header; `0`: usable size) |
//! | `glibc`, `jemalloc`, `mimalloc` | none |
//! | `bump` | `capacity` (0: bumpalo's default first chunk) |
//! | `log` | `segment` (8m), `cleaner` (`cost-benefit`; or `greedy`), `utilization` (0.9), `free_min` (2) |
//!
//! Sizes accept `512`, `64k`, `64m`, `1g` (powers of 1024).
//!
//! ```
//! use fraglab_allocators::AllocSpec;
//! let spec: AllocSpec = "zmalloc:backend=jemalloc,prefix=0".parse().unwrap();
//! assert_eq!(spec.to_string(), "zmalloc:backend=jemalloc,prefix=0");
//! let err = "slab:growth=2".parse::<AllocSpec>().unwrap_err();
//! assert!(err.to_string().contains("factor, min, chunk_max, item_max, sizes"));
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::bump::Bump;
use crate::glibc::Glibc;
use crate::jemalloc::Jemalloc;
use crate::log::{Log, LogConfig};
use crate::mimalloc::Mimalloc;
use crate::slab::{AutomoveConfig, Slab, SlabConfig};
use crate::zmalloc::Zmalloc;
use crate::Allocator;

/// Every allocator name a spec may start with.
pub const NAMES: &[&str] = &[
    "slab", "zmalloc", "glibc", "jemalloc", "mimalloc", "bump", "log",
];

/// The allocator zmalloc sits on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// glibc malloc.
    Glibc,
    /// jemalloc on a dedicated arena.
    Jemalloc,
    /// mimalloc on a dedicated heap.
    Mimalloc,
}

impl Backend {
    const NAMES: &'static [&'static str] = &["glibc", "jemalloc", "mimalloc"];

    fn as_str(self) -> &'static str {
        match self {
            Backend::Glibc => "glibc",
            Backend::Jemalloc => "jemalloc",
            Backend::Mimalloc => "mimalloc",
        }
    }
}

/// zmalloc's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZmallocSpec {
    /// The allocator underneath.
    pub backend: Backend,
    /// `true`: the 8-byte size header (`prefix=8`); `false`: usable sizes (`prefix=0`).
    pub prefix: bool,
}

impl Default for ZmallocSpec {
    fn default() -> Self {
        ZmallocSpec {
            backend: Backend::Glibc,
            prefix: true,
        }
    }
}

/// The bump arena's settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BumpSpec {
    /// Bytes in the first chunk (0: bumpalo's default).
    pub capacity: usize,
}

/// A fully resolved allocator choice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum AllocSpec {
    /// memcached's slab allocator.
    Slab(SlabConfig),
    /// Redis's zmalloc.
    Zmalloc(ZmallocSpec),
    /// glibc malloc.
    Glibc,
    /// jemalloc on a dedicated arena.
    Jemalloc,
    /// mimalloc on a dedicated heap.
    Mimalloc,
    /// bumpalo.
    Bump(BumpSpec),
    /// RAMCloud's log-structured memory.
    Log(LogConfig),
}

/// A spec that does not parse, or an allocator that cannot be built from it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllocSpecError {
    /// The name before the colon is not an allocator.
    #[error("unknown allocator `{name}`; valid: {}", NAMES.join(", "))]
    UnknownAllocator {
        /// The name given.
        name: String,
    },
    /// A key the allocator does not take.
    #[error("{alloc}: unknown key `{key}`; valid keys: {}", if allowed.is_empty() { "none".to_string() } else { allowed.join(", ") })]
    UnknownKey {
        /// The allocator.
        alloc: &'static str,
        /// The key given.
        key: String,
        /// The keys it takes.
        allowed: Vec<&'static str>,
    },
    /// A value that does not parse or is out of range.
    #[error("{alloc}: bad value `{value}` for `{key}`: {reason}")]
    BadValue {
        /// The allocator.
        alloc: &'static str,
        /// The key.
        key: &'static str,
        /// The value given.
        value: String,
        /// What is allowed.
        reason: String,
    },
    /// A `key=value` pair without `=`.
    #[error("{alloc}: `{pair}` is not key=value")]
    NotKeyValue {
        /// The allocator.
        alloc: &'static str,
        /// The text given.
        pair: String,
    },
    /// The settings are each valid but together not (memcached's own checks).
    #[error("{0}")]
    Invalid(String),
    /// The allocator could not be created (a jemalloc arena, a mimalloc heap).
    #[error("{0}")]
    Build(String),
}

/// Parses a size: `512`, `64k`, `1.5m`, `1GiB` (powers of 1024), by the rule every fraglab
/// crate shares ([`fraglab_units`]).
pub use fraglab_units::parse_size;

/// A 0/1 switch (`huge=1`).
fn parse_switch(alloc: &'static str, key: &'static str, v: &str) -> Result<bool, AllocSpecError> {
    match v {
        "1" | "yes" | "on" | "true" => Ok(true),
        "0" | "no" | "off" | "false" => Ok(false),
        _ => Err(AllocSpecError::BadValue {
            alloc,
            key,
            value: v.to_string(),
            reason: "expected 1 or 0".into(),
        }),
    }
}

fn parse_usize(
    alloc: &'static str,
    key: &'static str,
    value: &str,
) -> Result<usize, AllocSpecError> {
    parse_size(value)
        .and_then(|v| usize::try_from(v).map_err(|_| "out of range".to_string()))
        .map_err(|reason| AllocSpecError::BadValue {
            alloc,
            key,
            value: value.to_string(),
            reason,
        })
}

fn pairs<'a>(
    alloc: &'static str,
    rest: &'a str,
) -> impl Iterator<Item = Result<(&'a str, &'a str), AllocSpecError>> + 'a {
    rest.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(move |p| {
            p.split_once('=')
                .map(|(k, v)| (k.trim(), v.trim()))
                .ok_or_else(|| AllocSpecError::NotKeyValue {
                    alloc,
                    pair: p.to_string(),
                })
        })
}

impl FromStr for AllocSpec {
    type Err = AllocSpecError;

    fn from_str(text: &str) -> Result<Self, AllocSpecError> {
        let (name, rest) = text.trim().split_once(':').unwrap_or((text.trim(), ""));
        let unknown =
            |alloc: &'static str, key: &str, allowed: &[&'static str]| AllocSpecError::UnknownKey {
                alloc,
                key: key.to_string(),
                allowed: allowed.to_vec(),
            };
        match name {
            "slab" => {
                const KEYS: &[&str] = &[
                    "factor",
                    "min",
                    "chunk_max",
                    "item_max",
                    "sizes",
                    "automove",
                    "automove_ratio",
                    "automove_window",
                    "tick_ops",
                    "move_us",
                    "huge",
                    "prefault",
                    "file",
                ];
                let mut c = SlabConfig::default();
                let mut mode = None;
                let mut am = AutomoveConfig::default();
                let mut am_keys = Vec::new();
                for pair in pairs("slab", rest) {
                    let (k, v) = pair?;
                    match k {
                        "factor" => {
                            c.factor = v.parse().map_err(|_| AllocSpecError::BadValue {
                                alloc: "slab",
                                key: "factor",
                                value: v.to_string(),
                                reason: "expected a number greater than 1, such as 1.25".into(),
                            })?
                        }
                        "min" => c.min = parse_usize("slab", "min", v)?,
                        "chunk_max" => c.chunk_max = parse_usize("slab", "chunk_max", v)?,
                        "item_max" => c.item_max = parse_usize("slab", "item_max", v)?,
                        "sizes" => {
                            let sizes = v
                                .split('-')
                                .map(|s| parse_usize("slab", "sizes", s))
                                .collect::<Result<Vec<_>, _>>()?;
                            c.sizes = Some(sizes);
                        }
                        "automove" => mode = Some(parse_usize("slab", "automove", v)?),
                        "automove_ratio" => {
                            am.ratio = v.parse().map_err(|_| AllocSpecError::BadValue {
                                alloc: "slab",
                                key: "automove_ratio",
                                value: v.to_string(),
                                reason: "expected a number in (0, 1], such as 0.8".into(),
                            })?;
                            am_keys.push(k);
                        }
                        "automove_window" => {
                            am.window = u32::try_from(parse_usize("slab", "automove_window", v)?)
                                .unwrap_or(u32::MAX);
                            am_keys.push(k);
                        }
                        "tick_ops" => {
                            am.tick_ops = parse_usize("slab", "tick_ops", v)? as u64;
                            am_keys.push(k);
                        }
                        "move_us" => {
                            am.move_us = parse_usize("slab", "move_us", v)? as u64;
                            am_keys.push(k);
                        }
                        "huge" => c.huge = parse_switch("slab", "huge", v)?,
                        "prefault" => c.prefault = parse_switch("slab", "prefault", v)?,
                        "file" => c.file = Some(std::path::PathBuf::from(v)),
                        _ => return Err(unknown("slab", k, KEYS)),
                    }
                }
                match mode.unwrap_or(0) {
                    0 if !am_keys.is_empty() => {
                        return Err(AllocSpecError::Invalid(format!(
                            "slab: `{}` needs automove=1 or automove=2",
                            am_keys[0]
                        )))
                    }
                    0 => {}
                    m => {
                        am.mode = u8::try_from(m).unwrap_or(u8::MAX);
                        c.automove = Some(am);
                    }
                }
                c.validate()
                    .map_err(|e| AllocSpecError::Invalid(e.to_string()))?;
                Ok(AllocSpec::Slab(c))
            }
            "zmalloc" => {
                const KEYS: &[&str] = &["backend", "prefix"];
                let mut z = ZmallocSpec::default();
                for pair in pairs("zmalloc", rest) {
                    let (k, v) = pair?;
                    match k {
                        "backend" => {
                            z.backend = match v {
                                "glibc" | "libc" => Backend::Glibc,
                                "jemalloc" => Backend::Jemalloc,
                                "mimalloc" => Backend::Mimalloc,
                                _ => {
                                    return Err(AllocSpecError::BadValue {
                                        alloc: "zmalloc",
                                        key: "backend",
                                        value: v.to_string(),
                                        reason: format!("valid: {}", Backend::NAMES.join(", ")),
                                    })
                                }
                            }
                        }
                        "prefix" => {
                            z.prefix = match v {
                                "8" | "true" | "yes" | "on" => true,
                                "0" | "false" | "no" | "off" => false,
                                _ => {
                                    return Err(AllocSpecError::BadValue {
                                        alloc: "zmalloc",
                                        key: "prefix",
                                        value: v.to_string(),
                                        reason: "valid: 8 (size header), 0 (usable size)".into(),
                                    })
                                }
                            }
                        }
                        _ => return Err(unknown("zmalloc", k, KEYS)),
                    }
                }
                Ok(AllocSpec::Zmalloc(z))
            }
            "bump" => {
                let mut b = BumpSpec::default();
                for pair in pairs("bump", rest) {
                    let (k, v) = pair?;
                    match k {
                        "capacity" => b.capacity = parse_usize("bump", "capacity", v)?,
                        _ => return Err(unknown("bump", k, &["capacity"])),
                    }
                }
                Ok(AllocSpec::Bump(b))
            }
            "log" => {
                const KEYS: &[&str] = &["segment", "cleaner", "utilization", "free_min"];
                let mut c = LogConfig::default();
                let bad = |key: &'static str, v: &str, reason: &str| AllocSpecError::BadValue {
                    alloc: "log",
                    key,
                    value: v.to_string(),
                    reason: reason.to_string(),
                };
                for pair in pairs("log", rest) {
                    let (k, v) = pair?;
                    match k {
                        "segment" => c.segment = parse_usize("log", "segment", v)?,
                        "cleaner" => {
                            c.cleaner = v.parse().map_err(|e: String| bad("cleaner", v, &e))?
                        }
                        "utilization" => {
                            c.utilization = v.parse().map_err(|_| {
                                bad("utilization", v, "expected a fraction such as 0.9")
                            })?
                        }
                        "free_min" => {
                            c.free_min = v
                                .parse()
                                .map_err(|_| bad("free_min", v, "expected a count of segments"))?
                        }
                        _ => return Err(unknown("log", k, KEYS)),
                    }
                }
                c.validate().map_err(AllocSpecError::Invalid)?;
                Ok(AllocSpec::Log(c))
            }
            "glibc" | "jemalloc" | "mimalloc" => {
                let alloc: &'static str = NAMES.iter().find(|n| **n == name).expect("listed");
                if let Some(pair) = pairs(alloc, rest).next() {
                    let (k, _) = pair?;
                    return Err(unknown(alloc, k, &[]));
                }
                Ok(match name {
                    "glibc" => AllocSpec::Glibc,
                    "jemalloc" => AllocSpec::Jemalloc,
                    _ => AllocSpec::Mimalloc,
                })
            }
            _ => Err(AllocSpecError::UnknownAllocator {
                name: name.to_string(),
            }),
        }
    }
}

impl fmt::Display for AllocSpec {
    /// The canonical spec with every default written out.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AllocSpec::Slab(c) => {
                write!(
                    f,
                    "slab:factor={},min={},chunk_max={},item_max={}",
                    c.factor, c.min, c.chunk_max, c.item_max
                )?;
                if let Some(sizes) = &c.sizes {
                    let s: Vec<String> = sizes.iter().map(|s| s.to_string()).collect();
                    write!(f, ",sizes={}", s.join("-"))?;
                }
                if let Some(a) = &c.automove {
                    write!(
                        f,
                        ",automove={},automove_ratio={},automove_window={},tick_ops={},move_us={}",
                        a.mode, a.ratio, a.window, a.tick_ops, a.move_us
                    )?;
                }
                if c.huge {
                    f.write_str(",huge=1")?;
                }
                if c.prefault {
                    f.write_str(",prefault=1")?;
                }
                if let Some(p) = &c.file {
                    write!(f, ",file={}", p.display())?;
                }
                Ok(())
            }
            AllocSpec::Zmalloc(z) => write!(
                f,
                "zmalloc:backend={},prefix={}",
                z.backend.as_str(),
                if z.prefix { 8 } else { 0 }
            ),
            AllocSpec::Glibc => f.write_str("glibc"),
            AllocSpec::Jemalloc => f.write_str("jemalloc"),
            AllocSpec::Mimalloc => f.write_str("mimalloc"),
            AllocSpec::Bump(b) => write!(f, "bump:capacity={}", b.capacity),
            AllocSpec::Log(c) => write!(
                f,
                "log:segment={},cleaner={},utilization={},free_min={}",
                c.segment, c.cleaner, c.utilization, c.free_min
            ),
        }
    }
}

/// Code to run with a concrete allocator: [`AllocSpec::build`] picks the type once, so the
/// code inside runs with static dispatch.
pub trait WithAllocator {
    /// What the code returns.
    type Output;
    /// Runs with the allocator the spec names.
    fn run<A: Allocator>(self, alloc: A) -> Self::Output;
}

impl AllocSpec {
    /// The allocator's name (`slab`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            AllocSpec::Slab(_) => "slab",
            AllocSpec::Zmalloc(_) => "zmalloc",
            AllocSpec::Glibc => "glibc",
            AllocSpec::Jemalloc => "jemalloc",
            AllocSpec::Mimalloc => "mimalloc",
            AllocSpec::Bump(_) => "bump",
            AllocSpec::Log(_) => "log",
        }
    }

    /// One spec per allocator (and per zmalloc backend and mode), with defaults (but the log's
    /// 1 MiB segments): what `--allocs all` means.
    pub fn all() -> Vec<AllocSpec> {
        let mut out = vec![AllocSpec::Slab(SlabConfig::default())];
        for backend in [Backend::Glibc, Backend::Jemalloc, Backend::Mimalloc] {
            for prefix in [true, false] {
                out.push(AllocSpec::Zmalloc(ZmallocSpec { backend, prefix }));
            }
        }
        out.extend([
            AllocSpec::Glibc,
            AllocSpec::Jemalloc,
            AllocSpec::Mimalloc,
            AllocSpec::Bump(BumpSpec::default()),
            // 1 MiB segments, as slab pages: RAMCloud's 8 MiB segments were sized for
            // memories of 10 GB and more, and would be a tenth of the default suite's memory.
            AllocSpec::Log(LogConfig {
                segment: 1 << 20,
                ..LogConfig::default()
            }),
        ]);
        out
    }

    /// Builds the allocator and runs `code` with it.
    pub fn build<W: WithAllocator>(&self, code: W) -> Result<W::Output, AllocSpecError> {
        let build = |e: &dyn fmt::Display| AllocSpecError::Build(e.to_string());
        Ok(match self {
            AllocSpec::Slab(c) => {
                code.run(Slab::new(c.clone()).map_err(|e| AllocSpecError::Invalid(e.to_string()))?)
            }
            AllocSpec::Zmalloc(z) => match z.backend {
                Backend::Glibc => code.run(Zmalloc::new(Glibc::new(), z.prefix)),
                Backend::Jemalloc => code.run(Zmalloc::new(
                    Jemalloc::new().map_err(|e| build(&e))?,
                    z.prefix,
                )),
                Backend::Mimalloc => code.run(Zmalloc::new(
                    Mimalloc::new().map_err(|e| build(&e))?,
                    z.prefix,
                )),
            },
            AllocSpec::Glibc => code.run(Glibc::new()),
            AllocSpec::Jemalloc => code.run(Jemalloc::new().map_err(|e| build(&e))?),
            AllocSpec::Mimalloc => code.run(Mimalloc::new().map_err(|e| build(&e))?),
            AllocSpec::Bump(b) => {
                code.run(Bump::try_with_capacity(b.capacity).map_err(|e| build(&e))?)
            }
            AllocSpec::Log(c) => code.run(Log::new(*c).map_err(|e| build(&e))?),
        })
    }
}

#[cfg(test)]
mod tests;
