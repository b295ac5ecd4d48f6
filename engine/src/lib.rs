//! `fraglab-engine` will own `Store<A: Allocator>`: the key-value store that replays a workload
//! into any allocator of `fraglab-allocators`, with its index, the three item layouts
//! (`compact`, `memcached`, `redis`), the string commands, expiry, the eviction policies and
//! the engine's own statistics. It is generic over the allocator (static dispatch), so the
//! layout decides what is asked for and the allocator decides what it costs. It has no content
//! yet: the engine issue builds it on top of the allocator contract.
