//! compare.json and the summary: the groups of a plan's cells, written atomically.

use std::collections::BTreeMap;

use fraglab_reports::compare::{
    CellRecord, CompareFile, CompareState, GroupRecord, COMPARE_SCHEMA,
};
use fraglab_reports::write_atomic;

use super::plan::Plan;

/// The groups of `records` (one per workload x alloc x layout x target x memory limit), in
/// plan order.
pub(super) fn groups(plan: &Plan, records: &[CellRecord]) -> Vec<GroupRecord> {
    let mut members: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, c) in plan.cells.iter().enumerate() {
        members.entry(c.group).or_default().push(i);
    }
    members
        .values()
        .map(|idx| {
            let cells: Vec<&CellRecord> = idx.iter().map(|&i| &records[i]).collect();
            GroupRecord::of(&cells, plan.cells[idx[0]].refused.as_deref())
        })
        .collect()
}

/// Writes compare.json.
pub(super) struct Writer<'a> {
    pub plan: &'a Plan,
    pub started_at: String,
    pub env: fraglab_reports::Env,
    pub command: Vec<String>,
}

impl Writer<'_> {
    pub(super) fn write(&self, records: &[CellRecord], state: CompareState) -> Result<(), String> {
        let plan = self.plan;
        let file = CompareFile {
            kind: "fraglab-compare".into(),
            schema: COMPARE_SCHEMA,
            state,
            started_at: self.started_at.clone(),
            finished_at: (state != CompareState::Running).then(crate::env::now_rfc3339),
            command: self.command.clone(),
            settings: plan.settings.clone(),
            env: self.env.clone(),
            cells: records.to_vec(),
            groups: groups(plan, records),
        };
        let json = serde_json::to_string_pretty(&file).map_err(|e| e.to_string())? + "\n";
        write_atomic(&plan.dir.join("compare.json"), json.as_bytes()).map_err(|e| e.to_string())
    }
}
