//! The `calcification-reads` preset: `calcification`'s small phase unchanged, and a large phase
//! that reads (80% gets with demand fill, 20% sets), so a run has a hit ratio to show.

use fraglab_workloads::presets::{self, PresetParams};
use fraglab_workloads::{describe, Workload};

#[test]
fn calcification_reads_keeps_the_small_phase_and_reads_in_the_large_one() {
    let p = PresetParams::default();
    let plain = presets::preset("calcification", &p).unwrap();
    let reads = presets::preset("calcification-reads", &p).unwrap();
    assert_eq!(reads.name, "calcification-reads");
    assert_eq!(reads.keyspace, plain.keyspace);
    assert_eq!(reads.value_size, plain.value_size);
    assert_eq!(reads.phases[0], plain.phases[0]);
    assert_eq!(reads.phases[1].ops, plain.phases[1].ops);
    assert_eq!(reads.phases[1].value_size, plain.phases[1].value_size);
    assert!(reads.demand_fill && !plain.demand_fill);
    assert_eq!(plain.phases[1].mix, None);

    let params = PresetParams {
        scale: 0.01,
        ..PresetParams::default()
    };
    let s = describe(
        Workload::preset("calcification-reads", &params)
            .unwrap()
            .stream(1)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(s.phases[0].requests, 4_000);
    assert_eq!(s.phases[1].requests, 8_000);
    // The small phase is all sets; the large one about 80% gets (8,000 draws: within 3%).
    let gets = s.ops["get"] as f64;
    assert!((gets / 8_000.0 - 0.8).abs() < 0.03, "{gets} gets of 8000");
    assert_eq!(s.ops["set"] + s.ops["get"], 12_000);
    // The plain preset still only writes.
    let plain = describe(
        Workload::preset("calcification", &params)
            .unwrap()
            .stream(1)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(plain.ops.get("get"), None);
}
