//! Finding finished cells: a rerun of a compare, or the result files its `--plan` lines wrote
//! wherever they ran, are picked up instead of being run again.

use fraglab_reports::RunResult;

use super::plan::{Cell, Plan};

/// Whether a saved result ran the workload `cell` would run now. A `file:` spec may have been
/// edited since, so its resolved parameters must match; presets and traces are named by their
/// settings (the cell's hash includes the scale), and a trace is re-read only by path.
fn same_workload(r: &RunResult, cell: &Cell) -> bool {
    let Some(path) = cell.workload.strip_prefix("file:") else {
        return true;
    };
    let Ok(mut spec) = fraglab_workloads::spec::WorkloadSpec::from_file(std::path::Path::new(path))
    else {
        return false;
    };
    if let Some(x) = cell.scale {
        spec.scale(x);
    }
    serde_json::to_value(&spec).ok().as_ref() == Some(&r.run.workload_parameters)
}

/// A finished result for `cell` already in place: complete, and of the same run.
pub(super) fn finished(plan: &Plan, cell: &Cell) -> Option<RunResult> {
    let r = RunResult::load(&plan.dir.join(&cell.file)).ok()?;
    (r.complete
        && r.run.workload == cell.workload
        && r.run.alloc == cell.alloc
        && r.run.layout == cell.layout.name()
        && r.run.target == cell.target.name()
        && r.run.seed == plan.settings.seed
        && r.run.memory_limit == cell.memory
        && same_workload(&r, cell))
    .then_some(r)
}
