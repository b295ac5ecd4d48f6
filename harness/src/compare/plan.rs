//! The matrix, resolved and checked: the cells of a compare and the command of each.

use std::path::{Path, PathBuf};

use fraglab_allocators::AllocSpec;
use fraglab_engine::{LayoutKind, Unsupported};
use fraglab_reports::compare::{CellRecord, CellStatus, CompareSettings};
use fraglab_workloads::rng::fnv1a64_bytes;

use super::args::{CompareArgs, DEFAULT_SCALE, DEFAULT_WORKLOADS};
use crate::size_arg;
use crate::spec::defaults_for;
use crate::spec::TargetKind;

/// One run of the matrix.
#[derive(Debug, Clone)]
pub(super) struct Cell {
    pub id: String,
    pub group: usize,
    pub workload: String,
    pub scale: Option<f64>,
    /// The canonical spec.
    pub alloc: String,
    pub layout: LayoutKind,
    /// Whether `--layout` is passed (false: the allocator's default).
    pub layout_given: bool,
    pub target: TargetKind,
    pub memory: Option<u64>,
    /// `--defrag` as the cell runs it (None: off).
    pub defrag: Option<String>,
    pub repeat: u32,
    /// Relative to the output directory.
    pub file: String,
    pub refused: Option<String>,
}

/// The matrix, resolved and checked.
#[derive(Debug)]
pub(super) struct Plan {
    pub dir: PathBuf,
    pub cells: Vec<Cell>,
    /// The settings resolved: canonical specs, the limits swept (`None`: no limit), ...; as
    /// compare.json records them.
    pub settings: CompareSettings,
}

/// Letters, digits and `-` kept, everything else `_`, at most `max` characters.
pub(super) fn slug(s: &str, max: usize) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(max)
        .collect()
}

/// The compare scale of a workload when `--scale` is not given.
fn default_scale(workload: &str) -> Option<f64> {
    if workload.starts_with("trace:") {
        None
    } else if workload.starts_with("memefficiency-") || workload.starts_with("file:") {
        Some(1.0)
    } else {
        Some(DEFAULT_SCALE)
    }
}

/// Why `fraglab run` would refuse this allocator on this layout with its default policy, if it
/// would (the engine's rule in `Store::new`: the redis layout keeps no list links).
pub(super) fn refusal(alloc: &AllocSpec, layout: LayoutKind) -> Option<String> {
    let (_, policy) = defaults_for(alloc);
    if matches!(alloc, AllocSpec::Log(_)) && layout == LayoutKind::Redis {
        return Some(
            Unsupported::Moves {
                alloc: alloc.name(),
                layout,
            }
            .to_string(),
        );
    }
    (policy.needs_links() && matches!(layout, LayoutKind::Redis | LayoutKind::Segcache))
        .then(|| Unsupported::Policy { policy, layout }.to_string())
}

/// Why a cell of `target` is not run for this allocator and layout, if it is not: the engine's
/// rule above; a real server's refusal ([`crate::peer::refusal`]); and Redis runs only the
/// zmalloc specs (the real server is the same whatever the spec).
pub(super) fn target_refusal(
    target: TargetKind,
    alloc: &AllocSpec,
    layout: LayoutKind,
) -> Option<String> {
    let (_, policy) = defaults_for(alloc);
    match target {
        TargetKind::Engine => refusal(alloc, layout),
        TargetKind::Redis if !matches!(alloc, AllocSpec::Zmalloc(_)) => Some(
            "the redis target runs with the zmalloc specs only (the real Redis does not depend \
             on --alloc)"
                .into(),
        ),
        _ => crate::peer::refusal(target, alloc, policy),
    }
}

pub(super) fn target_list(values: &[String]) -> Result<Vec<TargetKind>, String> {
    let mut out = Vec::new();
    for v in values {
        let t = v
            .trim()
            .parse::<TargetKind>()
            .map_err(|e| format!("--targets: {e}"))?;
        if !out.contains(&t) {
            out.push(t);
        }
    }
    if out.is_empty() {
        out.push(TargetKind::Engine);
    }
    Ok(out)
}

/// The preset groups of `--workloads`: a word that stands for every preset whose name starts
/// with a prefix, in the presets' order (`ramcloud`: `ramcloud-w1` ... `ramcloud-w8`).
pub(super) const WORKLOAD_GROUPS: &[(&str, &str)] = &[("ramcloud", "ramcloud-w")];

/// The presets of a group's prefix.
fn group_members(prefix: &str) -> Vec<&'static str> {
    fraglab_workloads::presets::NAMES
        .iter()
        .copied()
        .filter(|n| n.starts_with(prefix))
        .collect()
}

/// One word of `--workloads` as workloads: a group's presets, or the word itself.
fn expand_workload(w: &str) -> Vec<String> {
    match WORKLOAD_GROUPS.iter().find(|(name, _)| *name == w) {
        Some((_, prefix)) => group_members(prefix)
            .into_iter()
            .map(str::to_string)
            .collect(),
        None => vec![w.to_string()],
    }
}

fn check_workload(w: &str) -> Result<(), String> {
    let path = w.strip_prefix("file:").or_else(|| w.strip_prefix("trace:"));
    match path {
        Some("-") => Err(format!(
            "--workloads {w}: a compare reads every trace once per cell, so it cannot read \
             stdin; save the trace to a file"
        )),
        Some(p) if Path::new(p).is_file() => Ok(()),
        Some(p) => Err(format!("--workloads {w}: no such file `{p}`")),
        None if fraglab_workloads::presets::NAMES.contains(&w) => Ok(()),
        None => Err(format!(
            "--workloads: unknown workload `{w}`; valid: {}, a group ({}), file:PATH (a TOML \
             spec) or trace:PATH",
            fraglab_workloads::presets::NAMES.join(", "),
            WORKLOAD_GROUPS
                .iter()
                .map(|(name, prefix)| format!("{name} = {}", group_members(prefix).join(",")))
                .collect::<Vec<_>>()
                .join("; ")
        )),
    }
}

/// Splits one word of `--allocs` at its commas that start a new spec: a comma followed by an
/// allocator's name (or `all`) and then the end, `:` or another comma. Other commas separate
/// a spec's keys (`slab:factor=1.25,min=48`).
fn split_specs(word: &str) -> Vec<&str> {
    let names: Vec<String> = AllocSpec::all()
        .iter()
        .map(|s| s.name().to_string())
        .chain(["all".to_string()])
        .collect();
    let starts_spec = |rest: &str| {
        names.iter().any(|n| {
            rest.strip_prefix(n.as_str())
                .is_some_and(|after| after.is_empty() || after.starts_with([':', ',']))
        })
    };
    let mut out = Vec::new();
    let mut start = 0;
    for (i, _) in word.match_indices(',') {
        if starts_spec(&word[i + 1..]) {
            out.push(&word[start..i]);
            start = i + 1;
        }
    }
    out.push(&word[start..]);
    out
}

/// The allocator specs of `--allocs`: separated by `;`, white space, a repeated flag, or a
/// comma before an allocator's name; `all` for every allocator; none given is `all`.
pub(super) fn alloc_list(values: &[String]) -> Result<Vec<AllocSpec>, String> {
    let mut out: Vec<AllocSpec> = Vec::new();
    let mut push = |spec: AllocSpec| {
        if !out.iter().any(|s| s.to_string() == spec.to_string()) {
            out.push(spec);
        }
    };
    let words: Vec<&str> = values
        .iter()
        .flat_map(|v| v.split(|c: char| c == ';' || c.is_whitespace()))
        .flat_map(split_specs)
        .filter(|w| !w.is_empty())
        .collect();
    if words.is_empty() {
        if !values.is_empty() {
            return Err(format!(
                "--allocs {}: no allocator spec in it; give specs or `all`",
                values.join(" --allocs ")
            ));
        }
        AllocSpec::all().into_iter().for_each(&mut push);
    }
    for word in words {
        if word == "all" {
            AllocSpec::all().into_iter().for_each(&mut push);
            continue;
        }
        let spec = word.parse::<AllocSpec>().map_err(|e| {
            let valid: String = AllocSpec::all()
                .iter()
                .map(|s| format!("\n  {s}"))
                .collect();
            format!(
                "--allocs `{word}`: {e}\nvalid allocators (`all` runs every one; \
                 NAME[:key=value,...] sets keys; separate specs with `,`, `;` or spaces):{valid}"
            )
        })?;
        push(spec);
    }
    Ok(out)
}

/// The memory limits of `--memory`: sizes separated by commas (or a repeated flag); `none`
/// (or nothing) for no limit.
pub(super) fn memory_list(values: &[String]) -> Result<Vec<Option<u64>>, String> {
    let mut out = Vec::new();
    for v in values.iter().flat_map(|v| v.split(',')) {
        let v = v.trim();
        let m = match v {
            "" => return Err("--memory: an empty size in the list".into()),
            "none" | "unlimited" => None,
            _ => Some(size_arg("memory", v)?),
        };
        if !out.contains(&m) {
            out.push(m);
        }
    }
    if out.is_empty() {
        out.push(None);
    }
    Ok(out)
}

/// The layouts of `--layouts`; `None` is the allocator's own.
fn layout_list(values: &[String]) -> Result<Vec<Option<LayoutKind>>, String> {
    let mut layouts: Vec<Option<LayoutKind>> = Vec::new();
    for l in values {
        let l = l.trim();
        let layout = if l == "default" {
            None
        } else {
            Some(
                l.parse::<LayoutKind>()
                    .map_err(|e| format!("--layouts: {e} (or `default`: each allocator's own)"))?,
            )
        };
        if !layouts.contains(&layout) {
            layouts.push(layout);
        }
    }
    if layouts.is_empty() {
        layouts.push(None);
    }
    Ok(layouts)
}

impl Plan {
    pub(super) fn new(args: &CompareArgs) -> Result<Plan, String> {
        let mut workloads: Vec<String> = Vec::new();
        let given: Vec<String> = if args.workloads.is_empty() {
            DEFAULT_WORKLOADS.iter().map(|s| s.to_string()).collect()
        } else {
            args.workloads
                .iter()
                .map(|w| w.trim().to_string())
                .collect()
        };
        for w in given.iter().flat_map(|w| expand_workload(w)) {
            if w.is_empty() {
                return Err("--workloads: an empty name".into());
            }
            check_workload(&w)?;
            if !workloads.contains(&w) {
                workloads.push(w);
            }
        }
        let allocs = alloc_list(&args.allocs)?;
        let targets = target_list(&args.targets)?;
        let layouts = layout_list(&args.layouts)?;
        let memories = memory_list(&args.memory)?;
        let defrag = super::defrag::defrag_arg(args.defrag.as_deref())?;
        if args.repeat == 0 {
            return Err("--repeat 0: at least one run per cell".into());
        }
        let jobs = match args.jobs {
            Some(0) => return Err("--jobs 0: at least one".into()),
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        if let Some(s) = args.scale {
            if !(s.is_finite() && s > 0.0) {
                return Err(format!("--scale {s}: must be a positive number"));
            }
        }
        let dir = args.out.clone().unwrap_or_else(|| {
            PathBuf::from("results").join(format!(
                "compare-{}",
                crate::env::now_rfc3339().replace(':', "-")
            ))
        });

        let mut cells = Vec::new();
        let mut group = 0;
        for w in &workloads {
            let scale = if w.starts_with("trace:") {
                None
            } else {
                args.scale.or_else(|| default_scale(w))
            };
            for a in &allocs {
                let default_layout = defaults_for(a).0;
                // The layouts of this allocator, resolved and without duplicates.
                let mut mine: Vec<(LayoutKind, bool)> = Vec::new();
                for l in &layouts {
                    let resolved = l.unwrap_or(default_layout);
                    if !mine.iter().any(|(m, _)| *m == resolved) {
                        mine.push((resolved, l.is_some()));
                    }
                }
                let alloc = a.to_string();
                for (layout, layout_given) in mine {
                    for &target in &targets {
                        let refused = target_refusal(target, a, layout);
                        let variants =
                            super::defrag::variants(defrag.as_deref(), a, layout, target, &refused);
                        for (defrag, &memory) in variants
                            .iter()
                            .flat_map(|d| memories.iter().map(move |m| (d, m)))
                        {
                            // Engine cells keep the key and id they had before targets existed.
                            let (tkey, tid) = match target {
                                TargetKind::Engine => (String::new(), String::new()),
                                t => (format!("\0{t}"), format!("__{t}")),
                            };
                            // Cells with defrag add it to the key and id; the others keep theirs.
                            let (dkey, did) = match defrag {
                                Some(d) => (format!("\0defrag={d}"), "__defrag"),
                                None => (String::new(), ""),
                            };
                            let key = format!(
                                "{w}\0{alloc}\0{layout}\0{scale:?}\0{}\0{memory:?}{tkey}{dkey}",
                                args.seed
                            );
                            let hash = fnv1a64_bytes(key.as_bytes()) as u32;
                            for repeat in 0..args.repeat {
                                let id = format!(
                                    "{}__{}__{}{tid}{did}__{hash:08x}-r{repeat}",
                                    slug(w, 48),
                                    slug(&alloc, 48),
                                    layout.name()
                                );
                                cells.push(Cell {
                                    file: format!("cells/{id}.json"),
                                    id,
                                    group,
                                    workload: w.clone(),
                                    scale,
                                    alloc: alloc.clone(),
                                    layout,
                                    layout_given,
                                    target,
                                    memory,
                                    defrag: defrag.clone(),
                                    repeat,
                                    refused: refused.clone(),
                                });
                            }
                            group += 1;
                        }
                    }
                }
            }
        }
        Ok(Plan {
            dir,
            cells,
            settings: CompareSettings {
                workloads,
                allocs: allocs.iter().map(|a| a.to_string()).collect(),
                layouts: layouts
                    .iter()
                    .map(|l| l.map_or("default".to_string(), |l| l.name().to_string()))
                    .collect(),
                targets: targets.iter().map(|t| t.to_string()).collect(),
                memory_limits: memories,
                repeat: args.repeat,
                jobs,
                seed: args.seed,
                scale: args.scale,
                default_scale: DEFAULT_SCALE,
                defrag,
            },
        })
    }

    /// The child's arguments for a cell (after the program), its result going to `out`.
    pub(super) fn child_args(&self, cell: &Cell, out: &Path) -> Vec<String> {
        let mut a: Vec<String> = vec![
            "run".into(),
            "--workload".into(),
            cell.workload.clone(),
            "--alloc".into(),
            cell.alloc.clone(),
        ];
        if cell.layout_given {
            a.extend(["--layout".into(), cell.layout.name().into()]);
        }
        if cell.target != TargetKind::Engine {
            a.extend(["--target".into(), cell.target.to_string()]);
        }
        if let Some(s) = cell.scale {
            a.extend(["--scale".into(), s.to_string()]);
        }
        a.extend(["--seed".into(), self.settings.seed.to_string()]);
        if let Some(m) = cell.memory {
            a.extend(["--memory".into(), m.to_string()]);
        }
        if let Some(d) = &cell.defrag {
            a.extend(["--defrag".into(), d.clone()]);
        }
        a.extend([
            "--out".into(),
            out.to_string_lossy().into_owned(),
            "--quiet".into(),
            "--format".into(),
            "json".into(),
        ]);
        a
    }

    /// A cell's entry in compare.json, before it runs.
    pub(super) fn record(&self, cell: &Cell) -> CellRecord {
        CellRecord {
            id: cell.id.clone(),
            workload: cell.workload.clone(),
            scale: cell.scale,
            alloc: cell.alloc.clone(),
            layout: cell.layout.name().to_string(),
            default_layout: !cell.layout_given,
            target: cell.target.to_string(),
            memory_limit: cell.memory,
            repeat: cell.repeat,
            defrag: cell.defrag.clone(),
            file: cell.file.clone(),
            status: CellStatus::Pending,
            reason: None,
            exit_code: None,
            seconds: None,
            figures: None,
        }
    }
}

/// One shell command line: every word quoted as POSIX shells need it.
pub(super) fn shell_line(program: &str, args: &[String]) -> Result<String, String> {
    std::iter::once(program)
        .chain(args.iter().map(String::as_str))
        .map(|w| {
            shlex::try_quote(w)
                .map(|q| q.into_owned())
                .map_err(|_| format!("`{w}` cannot be quoted for a shell (it holds a NUL)"))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(|words| words.join(" "))
}

#[cfg(test)]
mod tests;
