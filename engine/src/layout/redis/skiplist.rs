//! Redis 7.0's skiplist (`zskiplist`, `src/t_zset.c`; the structs in `src/server.h`) in
//! allocator memory: the sorted half of a large sorted set.
//!
//! - the `zskiplist` struct, 32 bytes: `header`, `tail`, `length`, `level` (an `int`, padded);
//! - the header node, `zslCreateNode(ZSKIPLIST_MAXLEVEL, 0, NULL)`: 24 + 32 x 16 = 536 bytes;
//! - one node per member, `zmalloc(sizeof(zskiplistNode) + level * sizeof(zskiplistLevel))`
//!   = 24 + 16 x level bytes: `ele` (the member's SDS, which the node owns), `score`,
//!   `backward`, then per level `forward` and `span`. The level is `zslRandomLevel`'s.
//!
//! A node does not record its level (Redis's `zfree` does not need it); the allocator's `free`
//! does, so it is recovered from the links: a node of level L is linked at levels 0..L, and
//! `zslDeleteNode` sees exactly those levels point at it.

use std::ptr::NonNull;

use fraglab_allocators::{AllocError, Allocator};

use super::sds::{free_sds, sds_at};
use crate::util::{read_at, to_raw, write_at, Rng};

/// `sizeof(zskiplist)`.
pub(super) const ZSL: usize = 32;
/// `ZSKIPLIST_MAXLEVEL`.
pub(super) const MAX_LEVEL: usize = 32;
/// `sizeof(zskiplistNode)` without its levels: `ele`, `score`, `backward`.
const NODE_BASE: usize = 24;
/// `sizeof(struct zskiplistLevel)`: `forward`, `span`.
const LEVEL: usize = 16;
/// The header node's size.
pub(super) const HEADER: usize = node_size(MAX_LEVEL);
/// `zslRandomLevel`'s `threshold`: `ZSKIPLIST_P * RAND_MAX` as an `int` (0.25 x (2^31 - 1)).
const THRESHOLD: u64 = 536_870_911;

/// The size of a node of `level` levels.
pub(super) const fn node_size(level: usize) -> usize {
    NODE_BASE + level * LEVEL
}

/// `zslRandomLevel` (Redis 7.0): one more level while `random() < threshold`, `random()`
/// being 31 random bits; at most `ZSKIPLIST_MAXLEVEL`. (Redis 6.2 and older drew
/// `(random() & 0xFFFF) < 0.25 * 0xFFFF` instead.)
pub(super) fn random_level(rng: &mut Rng) -> usize {
    let mut level = 1;
    while rng.next_u64() >> 33 < THRESHOLD {
        level += 1;
    }
    level.min(MAX_LEVEL)
}

/// A node (or the header) of a live skiplist. Values of this type are only made from the
/// links of a live skiplist or from a fresh node allocation, and a level `i` is only touched
/// below the node's own level (the traversals guarantee it), so the accessors are safe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Node(NonNull<u8>);

impl Node {
    /// The node's address.
    #[cfg(test)]
    pub(super) fn ptr(self) -> NonNull<u8> {
        self.0
    }

    /// The member's SDS pointer (`ele`; null in the header).
    pub(super) fn ele(self) -> NonNull<u8> {
        // SAFETY: a live node; `ele` is at offset 0 and set for every node but the header.
        NonNull::new(unsafe { read_at::<*mut u8>(self.0, 0) }).expect("a member node")
    }

    /// The member's bytes.
    pub(super) fn member<'a>(self) -> &'a [u8] {
        // SAFETY: the node owns its member SDS, live while the node is.
        unsafe { sds_at(self.ele()).bytes() }
    }

    pub(super) fn score(self) -> f64 {
        // SAFETY: a live node; `score` is at offset 8.
        unsafe { read_at(self.0, 8) }
    }

    /// The address of the score (the zset dict's value points here).
    pub(super) fn score_addr(self) -> usize {
        self.0.as_ptr() as usize + 8
    }

    fn backward(self) -> Option<Node> {
        // SAFETY: a live node; `backward` is at offset 16.
        NonNull::new(unsafe { read_at::<*mut u8>(self.0, 16) }).map(Node)
    }

    /// The next node in order (`level[0].forward`).
    pub(super) fn next(self) -> Option<Node> {
        self.forward(0)
    }

    fn forward(self, i: usize) -> Option<Node> {
        // SAFETY: `i` is below the node's level (see the type's docs).
        NonNull::new(unsafe { read_at::<*mut u8>(self.0, NODE_BASE + i * LEVEL) }).map(Node)
    }

    fn span(self, i: usize) -> usize {
        // SAFETY: as for `forward`.
        unsafe { read_at(self.0, NODE_BASE + i * LEVEL + 8) }
    }

    fn set_ele(self, ele: Option<NonNull<u8>>) {
        // SAFETY: a live node.
        unsafe { write_at(self.0, 0, to_raw(ele)) }
    }

    fn set_score(self, score: f64) {
        // SAFETY: a live node.
        unsafe { write_at(self.0, 8, score) }
    }

    fn set_backward(self, b: Option<Node>) {
        // SAFETY: a live node.
        unsafe { write_at(self.0, 16, to_raw(b.map(|n| n.0))) }
    }

    fn set_forward(self, i: usize, f: Option<Node>) {
        // SAFETY: as for `forward`.
        unsafe { write_at(self.0, NODE_BASE + i * LEVEL, to_raw(f.map(|n| n.0))) }
    }

    fn set_span(self, i: usize, span: usize) {
        // SAFETY: as for `forward`.
        unsafe { write_at(self.0, NODE_BASE + i * LEVEL + 8, span) }
    }

    /// Whether the node sorts before `(score, member)` (`score`, then `sdscmp`).
    fn before(self, score: f64, member: &[u8]) -> bool {
        self.score() < score || (self.score() == score && self.member() < member)
    }
}

/// A `zskiplist` in allocator memory. See the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Zsl(pub(super) NonNull<u8>);

impl Zsl {
    /// `zslCreate`: the struct, then the header node with every level empty.
    pub(super) fn create<A: Allocator>(a: &mut A) -> Result<Zsl, AllocError> {
        let zsl = a.alloc(ZSL)?.ptr;
        let header = match a.alloc(HEADER) {
            Ok(b) => b.ptr,
            Err(e) => {
                // SAFETY: just allocated with `ZSL` bytes.
                unsafe { a.free(zsl, ZSL) };
                return Err(e);
            }
        };
        // SAFETY: fresh blocks of `ZSL` and `HEADER` bytes, filled as `zslCreate` does (the
        // header's `ele` NULL, score 0, no backward, every level NULL with span 0).
        unsafe {
            std::ptr::write_bytes(header.as_ptr(), 0, HEADER);
            write_at(zsl, 0, header.as_ptr());
            write_at(zsl, 8, std::ptr::null_mut::<u8>());
            write_at(zsl, 16, 0usize);
            write_at(zsl, 24, 1i32);
            write_at(zsl, 28, 0i32);
        }
        Ok(Zsl(zsl))
    }

    fn header(self) -> Node {
        // SAFETY: a live skiplist; `header` is at offset 0.
        Node(unsafe { NonNull::new_unchecked(read_at::<*mut u8>(self.0, 0)) })
    }

    /// The last node.
    #[cfg(test)]
    pub(super) fn tail(self) -> Option<Node> {
        // SAFETY: a live skiplist; `tail` is at offset 8.
        NonNull::new(unsafe { read_at::<*mut u8>(self.0, 8) }).map(Node)
    }

    fn set_tail(self, t: Option<Node>) {
        // SAFETY: a live skiplist.
        unsafe { write_at(self.0, 8, to_raw(t.map(|n| n.0))) }
    }

    /// The number of members (`length`).
    pub(super) fn len(self) -> usize {
        // SAFETY: a live skiplist; `length` is at offset 16.
        unsafe { read_at(self.0, 16) }
    }

    fn set_len(self, n: usize) {
        // SAFETY: a live skiplist.
        unsafe { write_at(self.0, 16, n) }
    }

    /// The highest level in use (`level`, at least 1).
    pub(super) fn level(self) -> usize {
        // SAFETY: a live skiplist; `level` is the `int` at offset 24.
        unsafe { read_at::<i32>(self.0, 24) as usize }
    }

    fn set_level(self, l: usize) {
        // SAFETY: a live skiplist.
        unsafe { write_at(self.0, 24, l as i32) }
    }

    /// The first node (ZPOPMIN's).
    pub(super) fn first(self) -> Option<Node> {
        self.header().forward(0)
    }

    /// `zslGetElementByRank`: the node of 1-based `rank`.
    pub(super) fn by_rank(self, rank: usize) -> Option<Node> {
        let mut x = self.header();
        let mut traversed = 0;
        for i in (0..self.level()).rev() {
            while let Some(f) = x.forward(i) {
                if traversed + x.span(i) > rank {
                    break;
                }
                traversed += x.span(i);
                x = f;
            }
            if traversed == rank {
                return (rank > 0).then_some(x);
            }
        }
        None
    }

    /// The last node before `(score, member)` at every level in use (`update[]`), as
    /// `zslDelete` and `zslUpdateScore` find them.
    fn predecessors(self, score: f64, member: &[u8]) -> [Node; MAX_LEVEL] {
        let mut update = [self.header(); MAX_LEVEL];
        let mut x = self.header();
        for i in (0..self.level()).rev() {
            while let Some(f) = x.forward(i) {
                if !f.before(score, member) {
                    break;
                }
                x = f;
            }
            update[i] = x;
        }
        update
    }

    /// `zslInsert`: inserts a member known to be absent. The skiplist takes ownership of the
    /// SDS `ele`; on an error nothing changed and the caller still owns it.
    pub(super) fn insert<A: Allocator>(
        self,
        a: &mut A,
        rng: &mut Rng,
        score: f64,
        ele: NonNull<u8>,
    ) -> Result<Node, AllocError> {
        debug_assert!(!score.is_nan());
        // `zslInsert` draws the level and only then allocates; its search touches no memory
        // of the allocator's, so allocating first keeps the order of allocator calls.
        let level = random_level(rng);
        let x = Node(a.alloc(node_size(level))?.ptr);
        self.link(x, level, score, ele);
        Ok(x)
    }

    /// The linking half of `zslInsert`, with the node already allocated.
    fn link(self, x: Node, level: usize, score: f64, ele: NonNull<u8>) {
        // SAFETY: `ele` is a live SDS owned by the caller.
        let member = unsafe { sds_at(ele).bytes() };
        let header = self.header();
        let mut update = [header; MAX_LEVEL];
        let mut rank = [0usize; MAX_LEVEL];
        let top = self.level();
        let mut p = header;
        for i in (0..top).rev() {
            rank[i] = if i == top - 1 { 0 } else { rank[i + 1] };
            while let Some(f) = p.forward(i) {
                if !f.before(score, member) {
                    break;
                }
                rank[i] += p.span(i);
                p = f;
            }
            update[i] = p;
        }
        if level > top {
            for i in top..level {
                rank[i] = 0;
                update[i] = header;
                header.set_span(i, self.len());
            }
            self.set_level(level);
        }
        x.set_ele(Some(ele));
        x.set_score(score);
        for i in 0..level {
            x.set_forward(i, update[i].forward(i));
            update[i].set_forward(i, Some(x));
            x.set_span(i, update[i].span(i) - (rank[0] - rank[i]));
            update[i].set_span(i, rank[0] - rank[i] + 1);
        }
        for (i, u) in update.iter().enumerate().take(self.level()).skip(level) {
            u.set_span(i, u.span(i) + 1);
        }
        x.set_backward((update[0] != header).then_some(update[0]));
        match x.forward(0) {
            Some(f) => f.set_backward(Some(x)),
            None => self.set_tail(Some(x)),
        }
        self.set_len(self.len() + 1);
    }

    /// `zslDeleteNode`: unlinks `x`; returns its level (the levels that pointed at it).
    fn unlink(self, x: Node, update: &[Node; MAX_LEVEL]) -> usize {
        let mut level = 0;
        for (i, u) in update.iter().enumerate().take(self.level()) {
            if u.forward(i) == Some(x) {
                u.set_span(i, u.span(i) + x.span(i) - 1);
                u.set_forward(i, x.forward(i));
                level += 1;
            } else {
                u.set_span(i, u.span(i) - 1);
            }
        }
        match x.forward(0) {
            Some(f) => f.set_backward(x.backward()),
            None => self.set_tail(x.backward()),
        }
        let header = self.header();
        while self.level() > 1 && header.forward(self.level() - 1).is_none() {
            self.set_level(self.level() - 1);
        }
        self.set_len(self.len() - 1);
        level
    }

    /// `zslDelete` with `node == NULL`: removes `(score, member)` and frees its node and SDS
    /// (`zslFreeNode`: the SDS, then the node). Returns whether it was there.
    pub(super) fn delete<A: Allocator>(self, a: &mut A, score: f64, member: &[u8]) -> bool {
        let update = self.predecessors(score, member);
        match update[0].forward(0) {
            Some(x) if x.score() == score && x.member() == member => {
                let level = self.unlink(x, &update);
                // SAFETY: `x` is unlinked; it owned its SDS; both are freed once.
                unsafe {
                    free_sds(a, sds_at(x.ele()));
                    a.free(x.0, node_size(level));
                }
                true
            }
            _ => false,
        }
    }

    /// `zslUpdateScore`: moves `(cur, member)` to `new`, in place when the node keeps its
    /// position (its neighbours' scores still bracket `new` strictly), else into a new node
    /// that takes over the SDS while the old node is freed. On an error nothing changed.
    pub(super) fn update_score<A: Allocator>(
        self,
        a: &mut A,
        rng: &mut Rng,
        cur: f64,
        member: &[u8],
        new: f64,
    ) -> Result<Node, AllocError> {
        let update = self.predecessors(cur, member);
        let x = update[0]
            .forward(0)
            .filter(|x| x.score() == cur && x.member() == member)
            .expect("the member is in the skiplist with its current score");
        if x.backward().is_none_or(|b| b.score() < new) && x.next().is_none_or(|f| f.score() > new)
        {
            x.set_score(new);
            return Ok(x);
        }
        // `zslDeleteNode` touches no allocator memory, so allocating the new node before it
        // keeps Redis's order of calls: the new node, then the old one freed.
        let level = random_level(rng);
        let n = Node(a.alloc(node_size(level))?.ptr);
        let old_level = self.unlink(x, &update);
        self.link(n, level, new, x.ele());
        // SAFETY: `x` is unlinked and its SDS now belongs to `n`; freed once.
        unsafe { a.free(x.0, node_size(old_level)) };
        Ok(n)
    }

    /// Calls `f` with every node, in order, and its level.
    pub(super) fn for_each_node(self, f: &mut dyn FnMut(Node, usize)) {
        let top = self.level();
        let header = self.header();
        let mut cursor = [None; MAX_LEVEL];
        for (i, c) in cursor.iter_mut().enumerate().take(top).skip(1) {
            *c = header.forward(i);
        }
        let mut x = header.forward(0);
        while let Some(n) = x {
            let mut level = 1;
            while level < top && cursor[level] == Some(n) {
                cursor[level] = n.forward(level);
                level += 1;
            }
            f(n, level);
            x = n.next();
        }
    }

    /// Calls `f(start, requested size)` for the struct, the header, every node and every
    /// member SDS.
    pub(super) fn blocks(self, f: &mut dyn FnMut(usize, usize)) {
        f(self.0.as_ptr() as usize, ZSL);
        f(self.header().0.as_ptr() as usize, HEADER);
        self.for_each_node(&mut |n, level| {
            f(n.0.as_ptr() as usize, node_size(level));
            // SAFETY: the node's member SDS is live.
            let sds = unsafe { sds_at(n.ele()) };
            // SAFETY: as above.
            f(sds.base.as_ptr() as usize, unsafe { sds.size() });
        });
    }

    /// `zslFree`: the header, then every node with its SDS, then the struct.
    ///
    /// # Safety
    /// The skiplist is live and not used afterwards.
    pub(super) unsafe fn free<A: Allocator>(self, a: &mut A) {
        let mut nodes = Vec::with_capacity(self.len());
        self.for_each_node(&mut |n, level| nodes.push((n, level)));
        // SAFETY: every block belongs to the skiplist and is freed once.
        unsafe {
            a.free(self.header().0, HEADER);
            for (n, level) in nodes {
                free_sds(a, sds_at(n.ele()));
                a.free(n.0, node_size(level));
            }
            a.free(self.0, ZSL);
        }
    }
}

#[cfg(test)]
#[path = "skiplist_tests.rs"]
mod tests;
