//! Tests of `plan.rs`.

use super::*;

#[test]
fn slugs_are_filesystem_safe() {
    assert_eq!(
        slug("slab:factor=1.25,min=48", 64),
        "slab_factor_1_25_min_48"
    );
    assert_eq!(slug("trace:/a b/c.csv", 64), "trace__a_b_c_csv");
    assert_eq!(slug("memefficiency-128", 5), "memef");
}

#[test]
fn groups_expand_to_presets_in_order() {
    for (name, prefix) in WORKLOAD_GROUPS {
        assert!(!fraglab_workloads::presets::NAMES.contains(name), "{name}");
        assert!(!group_members(prefix).is_empty(), "{name}");
    }
    let w: Vec<String> = (1..=8).map(|i| format!("ramcloud-w{i}")).collect();
    assert_eq!(expand_workload("ramcloud"), w);
    assert_eq!(expand_workload("ramcloud-w3"), ["ramcloud-w3"]);
    assert_eq!(expand_workload("etc"), ["etc"]);
}

#[test]
fn fnv1a_is_pinned() {
    // The reference values of FNV-1a 64.
    assert_eq!(fnv1a64_bytes(b""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(fnv1a64_bytes(b"a"), 0xaf63_dc4c_8601_ec8c);
}

fn names(values: &[&str]) -> Vec<String> {
    let values: Vec<String> = values.iter().map(|v| v.to_string()).collect();
    alloc_list(&values)
        .unwrap()
        .iter()
        .map(|s| s.to_string())
        .collect()
}

#[test]
fn alloc_lists_split_on_semicolons_spaces_and_commas_before_a_name() {
    let want = [
        "jemalloc",
        "slab:factor=2,min=64,chunk_max=524288,item_max=1048576",
        "mimalloc",
    ];
    assert_eq!(names(&["jemalloc;slab:factor=2,min=64", "mimalloc"]), want);
    assert_eq!(names(&["jemalloc,slab:factor=2,min=64,mimalloc"]), want);
    assert_eq!(names(&["jemalloc slab:factor=2,min=64 mimalloc"]), want);
    assert_eq!(
        names(&["jemalloc", "slab:factor=2,min=64", "mimalloc"]),
        want
    );
    assert_eq!(
        names(&["slab,jemalloc,zmalloc"]),
        names(&["slab;jemalloc;zmalloc"])
    );
    // A backend named inside a spec is a key's value, not a new spec.
    assert_eq!(
        names(&["zmalloc:backend=jemalloc,prefix=0,glibc"]),
        ["zmalloc:backend=jemalloc,prefix=0", "glibc"]
    );
    assert_eq!(names(&["all"]).len(), AllocSpec::all().len());
    assert_eq!(names(&[]).len(), AllocSpec::all().len());
    // Separators alone name no allocator: refused, not read as `all`.
    let e = alloc_list(&[";;".into()]).unwrap_err();
    assert!(e.contains("no allocator spec"), "{e}");
    assert_eq!(names(&["jemalloc,all"]).len(), AllocSpec::all().len());
    assert_eq!(names(&["slab slab:factor=1.25"]).len(), 1);
    let e = alloc_list(&["jemalloc,slab:factor=x".into()]).unwrap_err();
    assert!(e.contains("--allocs `slab:factor=x`"), "{e}");
    let e = alloc_list(&["jemalloc,tcmalloc".into()]).unwrap_err();
    assert!(e.contains("jemalloc,tcmalloc"), "{e}");
}

#[test]
fn memory_lists_sweep_limits() {
    let v = |s: &[&str]| memory_list(&s.iter().map(|x| x.to_string()).collect::<Vec<_>>());
    assert_eq!(
        v(&["16m,64m", "256m", "16m"]).unwrap(),
        [Some(16 << 20), Some(64 << 20), Some(256 << 20)]
    );
    assert_eq!(v(&[]).unwrap(), [None]);
    assert_eq!(v(&["none,1g"]).unwrap(), [None, Some(1 << 30)]);
    assert!(v(&["16m,"]).unwrap_err().contains("empty"));
    assert!(v(&["lots"]).unwrap_err().contains("--memory lots"));
}

#[test]
fn plan_lines_are_quoted_for_a_shell() {
    let words = ["slab:factor=1.25,min=48", "a b'c", "$HOME", "x\"y", "*"];
    let mut args = vec!["%s|".to_string()];
    args.extend(words.iter().map(|w| w.to_string()));
    let line = shell_line("printf", &args).unwrap();
    let out = std::process::Command::new("sh")
        .args(["-c", &line])
        .output()
        .unwrap();
    assert!(out.status.success(), "{line}");
    let want: String = words.iter().map(|w| format!("{w}|")).collect();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), want, "{line}");
    assert!(shell_line("x", &["a\0b".into()]).is_err());
}

#[test]
fn targets_refuse_what_they_cannot_run() {
    let slab: AllocSpec = "slab".parse().unwrap();
    let zm: AllocSpec = "zmalloc:backend=jemalloc,prefix=0".parse().unwrap();
    let je: AllocSpec = "jemalloc".parse().unwrap();
    let mc = LayoutKind::Memcached;
    assert!(target_refusal(TargetKind::Memcached, &slab, mc).is_none());
    assert!(target_refusal(TargetKind::Memcached, &je, mc)
        .unwrap()
        .contains("--alloc slab"));
    assert!(target_refusal(TargetKind::Redis, &zm, LayoutKind::Redis).is_none());
    assert!(target_refusal(TargetKind::Redis, &je, LayoutKind::Compact)
        .unwrap()
        .contains("zmalloc"));
    assert!(target_refusal(TargetKind::Engine, &slab, LayoutKind::Redis)
        .unwrap()
        .contains("slab-lru"));
    assert_eq!(
        target_list(&["redis".into(), "engine".into(), "redis".into()]).unwrap(),
        [TargetKind::Redis, TargetKind::Engine]
    );
    assert_eq!(target_list(&[]).unwrap(), [TargetKind::Engine]);
    assert!(target_list(&["valkey".into()])
        .unwrap_err()
        .contains("engine, memcached, redis"));
}

#[test]
fn redis_layout_refuses_slab_lru_only() {
    let slab: AllocSpec = "slab".parse().unwrap();
    let je: AllocSpec = "jemalloc".parse().unwrap();
    assert!(refusal(&slab, LayoutKind::Redis)
        .unwrap()
        .contains("slab-lru"));
    assert!(refusal(&slab, LayoutKind::Memcached).is_none());
    assert!(refusal(&je, LayoutKind::Redis).is_none());
}
