//! `fraglab-workloads` will own the stream of operations the lab replays: the `Op` type,
//! TOML workload specs, the distributions of key and value sizes, popularity and TTLs, the
//! published presets (YCSB, Facebook ETC, RAMCloud, Redis's memory test, Twitter's clusters)
//! and streaming readers and writers for real traces (Twitter CSV, libCacheSim oracleGeneral,
//! Segcache binary, fraglab CSV). Every stream is an iterator driven by one explicit seed. It
//! depends on nothing else in the workspace and has no content yet: the workloads issue builds
//! it.
