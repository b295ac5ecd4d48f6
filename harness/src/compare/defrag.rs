//! `fraglab compare --defrag SPEC`: Redis's active defrag as a second variant of the cells
//! that support it, so that one compare holds each such configuration with and without it
//! (the report's "Memory over time: active defrag" reads the pairs).

use fraglab_allocators::AllocSpec;
use fraglab_engine::LayoutKind;

use crate::spec::{check_defrag, parse_defrag, TargetKind};

/// `--defrag` checked as `fraglab run` checks it, and kept as given (the cells pass it on).
pub(super) fn defrag_arg(given: Option<&str>) -> Result<Option<String>, String> {
    match given {
        None => Ok(None),
        Some(d) => {
            parse_defrag(d).map_err(|e| format!("--defrag {d}: {e}"))?;
            Ok(Some(d.trim().to_string()))
        }
    }
}

/// The defrag variants of a cell: off, and with `defrag` when it is given, the cell is not
/// refused, and `fraglab run` accepts `--defrag` for its allocator, layout and target.
pub(super) fn variants(
    defrag: Option<&str>,
    alloc: &AllocSpec,
    layout: LayoutKind,
    target: TargetKind,
    refused: &Option<String>,
) -> Vec<Option<String>> {
    let mut out = vec![None];
    if let Some(d) = defrag {
        if refused.is_none() && check_defrag(alloc, layout, target).is_ok() {
            out.push(Some(d.to_string()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_cells_that_can_defrag_run_twice() {
        let zm: AllocSpec = "zmalloc:backend=jemalloc,prefix=0".parse().unwrap();
        let slab: AllocSpec = "slab".parse().unwrap();
        let glibc: AllocSpec = "zmalloc:backend=glibc".parse().unwrap();
        let (r, e) = (LayoutKind::Redis, TargetKind::Engine);
        let d = Some("cycle-min=65,cycle-max=75");
        assert_eq!(
            variants(d, &zm, r, e, &None),
            [None, Some("cycle-min=65,cycle-max=75".to_string())]
        );
        assert_eq!(variants(None, &zm, r, e, &None), [None]);
        assert_eq!(variants(d, &slab, LayoutKind::Memcached, e, &None), [None]);
        assert_eq!(variants(d, &glibc, r, e, &None), [None]);
        assert_eq!(variants(d, &zm, r, TargetKind::Redis, &None), [None]);
        assert_eq!(variants(d, &zm, r, e, &Some("refused".into())), [None]);
        assert_eq!(defrag_arg(Some(" on ")).unwrap().as_deref(), Some("on"));
        assert_eq!(defrag_arg(None).unwrap(), None);
        let err = defrag_arg(Some("cycle-min=90,cycle-max=10")).unwrap_err();
        assert!(
            err.starts_with("--defrag cycle-min=90,cycle-max=10: cycle-min=90"),
            "{err}"
        );
    }
}
