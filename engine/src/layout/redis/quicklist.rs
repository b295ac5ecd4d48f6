//! Redis 7.0's quicklist (`src/quicklist.c`, `src/quicklist.h`) in allocator memory: every
//! list's encoding in 7.0 (7.2 added a plain listpack for small lists; 7.0 has none).
//!
//! - the `quicklist` struct, 40 bytes: `head`, `tail`, `count` (elements), `len` (nodes), then
//!   the bit fields `fill` (16 bits, signed), `compress` (16) and `bookmark_count` (4);
//! - one `quicklistNode` per node, 40 bytes: `prev`, `next`, `entry`, `sz` (the listpack's
//!   bytes), then the bit fields `count` (16), `encoding` (2, RAW = 1), `container` (2, PACKED
//!   = 2, PLAIN = 1) and the flags;
//! - each node's listpack (`listpack.rs`); an element of 1 GiB or more (`packed_threshold`)
//!   lives alone in a PLAIN node whose `entry` is a block of exactly its bytes.
//!
//! A push goes into the end node when `_quicklistNodeAllowInsert` allows it: the estimate
//! `sz + element length + SIZE_ESTIMATE_OVERHEAD (8)` within the byte limit of a negative fill
//! (`optimization_level`: 4, 8, 16, 32, 64 KiB for -1..-5); for a positive fill, within
//! `SIZE_SAFETY_LIMIT` (8192) and with fewer than `fill` elements. Otherwise a new node is
//! made: the node, `lpNew(0)` (7 bytes), then the element added by `realloc`. A node that
//! loses its last element is freed (`lpDelete` first shrinks its listpack to 7 bytes, as
//! Redis's `quicklistDelIndex` does). Neither LPOP, RPOP nor LTRIM merges nodes in 7.0
//! (`quicklistDelRange` never calls `_quicklistMergeNodes`), and compression is off
//! (`list-compress-depth 0`, the default), so no node is ever LZF-encoded.
//!
//! A refused `realloc` leaves the list as it was: the listpack operations undo themselves, a
//! new node is freed again, and LTRIM, which frees whole nodes before it shrinks the ones it
//! cuts (Redis's order), puts the freed nodes back (blocks of the sizes just freed).

use std::ptr::NonNull;

use fraglab_allocators::{AllocError, Allocator};

use super::listpack::{Listpack, LpValue};
use crate::util::{read_at, to_raw, write_at};

/// `sizeof(quicklist)`.
pub(super) const QUICKLIST: usize = 40;
/// `sizeof(quicklistNode)`.
pub(super) const NODE: usize = 40;
/// `SIZE_SAFETY_LIMIT`.
const SIZE_SAFETY_LIMIT: usize = 8192;
/// `SIZE_ESTIMATE_OVERHEAD`.
const SIZE_ESTIMATE_OVERHEAD: usize = 8;
/// `optimization_level`: the byte limits of fills -1..-5.
const OPTIMIZATION_LEVEL: [usize; 5] = [4096, 8192, 16384, 32768, 65536];
/// `packed_threshold`: elements this long get a PLAIN node.
pub(super) const PACKED_THRESHOLD: usize = 1 << 30;
/// `FILL_MAX`: `quicklistSetFill` clamps to -5..=32767.
const FILL_MAX: i64 = (1 << 15) - 1;
const ENCODING_RAW: u32 = 1;
const CONTAINER_PLAIN: u32 = 1;
const CONTAINER_PACKED: u32 = 2;

/// A node of a live quicklist. Values are only made from the links of a live quicklist or a
/// fresh 40-byte node block, so the accessors are safe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct QNode(NonNull<u8>);

impl QNode {
    fn link(self, off: usize) -> Option<QNode> {
        // SAFETY: a live node; `prev` and `next` are pointers at offsets 0 and 8.
        NonNull::new(unsafe { read_at::<*mut u8>(self.0, off) }).map(QNode)
    }

    fn prev(self) -> Option<QNode> {
        self.link(0)
    }

    fn next(self) -> Option<QNode> {
        self.link(8)
    }

    fn set_prev(self, n: Option<QNode>) {
        // SAFETY: a live node.
        unsafe { write_at(self.0, 0, to_raw(n.map(|n| n.0))) }
    }

    fn set_next(self, n: Option<QNode>) {
        // SAFETY: a live node.
        unsafe { write_at(self.0, 8, to_raw(n.map(|n| n.0))) }
    }

    fn entry(self) -> NonNull<u8> {
        // SAFETY: a live node; every node has its entry block.
        unsafe { NonNull::new_unchecked(read_at::<*mut u8>(self.0, 16)) }
    }

    /// The node's listpack (PACKED nodes only).
    fn lp(self) -> Listpack {
        debug_assert!(!self.plain());
        // SAFETY: a PACKED node's entry is its live listpack.
        unsafe { Listpack::from_ptr(self.entry()) }
    }

    fn sz(self) -> usize {
        // SAFETY: a live node; `sz` is at offset 24.
        unsafe { read_at(self.0, 24) }
    }

    fn bits(self) -> u32 {
        // SAFETY: a live node; the bit fields are the `unsigned int` at offset 32.
        unsafe { read_at(self.0, 32) }
    }

    fn count(self) -> usize {
        (self.bits() & 0xFFFF) as usize
    }

    fn plain(self) -> bool {
        (self.bits() >> 18) & 3 == CONTAINER_PLAIN
    }

    /// Sets `entry`, `sz` and `count` (a listpack's, or a PLAIN element's).
    fn set(self, entry: NonNull<u8>, sz: usize, count: usize) {
        let bits = (self.bits() & !0xFFFF) | count as u32;
        // SAFETY: a live node.
        unsafe {
            write_at(self.0, 16, entry.as_ptr());
            write_at(self.0, 24, sz);
            write_at(self.0, 32, bits);
        }
    }

    /// Points the node at its listpack after a change (`quicklistNodeUpdateSz` and count).
    fn set_lp(self, lp: Listpack, count: usize) {
        self.set(lp.ptr(), lp.bytes(), count);
    }

    /// The entry block's requested size.
    fn entry_size(self) -> usize {
        if self.plain() {
            self.sz()
        } else {
            self.lp().bytes()
        }
    }

    /// `quicklistCreateNode` on a fresh block: no links, RAW, the given container.
    fn init(block: NonNull<u8>, container: u32) -> QNode {
        // SAFETY: a fresh block of `NODE` bytes.
        unsafe {
            std::ptr::write_bytes(block.as_ptr(), 0, NODE);
            write_at(block, 32, ENCODING_RAW << 16 | container << 18);
        }
        QNode(block)
    }
}

/// `_quicklistNodeAllowInsert` for an element of `sz` bytes.
fn allow_insert(node: Option<QNode>, fill: i64, sz: usize) -> bool {
    let Some(node) = node else { return false };
    if node.plain() || sz >= PACKED_THRESHOLD {
        return false;
    }
    let new_sz = node.sz() + sz + SIZE_ESTIMATE_OVERHEAD;
    if fill < 0 {
        // `_quicklistNodeSizeMeetsOptimizationRequirement`; when it fails the count test
        // below cannot pass for a negative fill.
        return OPTIMIZATION_LEVEL
            .get((-fill - 1) as usize)
            .is_some_and(|&limit| new_sz <= limit);
    }
    new_sz <= SIZE_SAFETY_LIMIT && (node.count() as i64) < fill
}

/// A quicklist in allocator memory. See the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Quicklist(pub(super) NonNull<u8>);

impl Quicklist {
    /// `quicklistCreate` + `quicklistSetOptions(fill, 0)`.
    pub(super) fn create<A: Allocator>(a: &mut A, fill: i64) -> Result<Quicklist, AllocError> {
        let p = a.alloc(QUICKLIST)?.ptr;
        let fill = fill.clamp(-5, FILL_MAX) as i16;
        // SAFETY: a fresh block of `QUICKLIST` bytes: no nodes, the fill, no compression, no
        // bookmarks.
        unsafe {
            std::ptr::write_bytes(p.as_ptr(), 0, QUICKLIST);
            write_at(p, 32, u32::from(fill as u16));
        }
        Ok(Quicklist(p))
    }

    fn head(self) -> Option<QNode> {
        // SAFETY: a live quicklist; `head` at offset 0.
        NonNull::new(unsafe { read_at::<*mut u8>(self.0, 0) }).map(QNode)
    }

    fn tail(self) -> Option<QNode> {
        // SAFETY: a live quicklist; `tail` at offset 8.
        NonNull::new(unsafe { read_at::<*mut u8>(self.0, 8) }).map(QNode)
    }

    fn set_head(self, n: Option<QNode>) {
        // SAFETY: a live quicklist.
        unsafe { write_at(self.0, 0, to_raw(n.map(|n| n.0))) }
    }

    fn set_tail(self, n: Option<QNode>) {
        // SAFETY: a live quicklist.
        unsafe { write_at(self.0, 8, to_raw(n.map(|n| n.0))) }
    }

    /// The number of elements (`count`).
    pub(super) fn count(self) -> usize {
        // SAFETY: a live quicklist; `count` at offset 16.
        unsafe { read_at(self.0, 16) }
    }

    fn add_count(self, d: isize) {
        // SAFETY: a live quicklist.
        unsafe { write_at(self.0, 16, self.count().wrapping_add_signed(d)) }
    }

    /// The number of nodes (`len`).
    pub(super) fn nodes(self) -> usize {
        // SAFETY: a live quicklist; `len` at offset 24.
        unsafe { read_at(self.0, 24) }
    }

    fn add_nodes(self, d: isize) {
        // SAFETY: a live quicklist.
        unsafe { write_at(self.0, 24, self.nodes().wrapping_add_signed(d)) }
    }

    /// The fill factor (`list-max-listpack-size` at creation, clamped).
    pub(super) fn fill(self) -> i64 {
        // SAFETY: a live quicklist; `fill` is the low 16 bits of the word at offset 32.
        i64::from(unsafe { read_at::<u32>(self.0, 32) } as u16 as i16)
    }

    /// `__quicklistInsertNode`: links `new` before (`after == false`) or after `old`.
    fn insert_node(self, old: Option<QNode>, new: QNode, after: bool) {
        if after {
            new.set_prev(old);
            if let Some(o) = old {
                new.set_next(o.next());
                if let Some(n) = o.next() {
                    n.set_prev(Some(new));
                }
                o.set_next(Some(new));
            }
            if self.tail() == old {
                self.set_tail(Some(new));
            }
        } else {
            new.set_next(old);
            if let Some(o) = old {
                new.set_prev(o.prev());
                if let Some(p) = o.prev() {
                    p.set_next(Some(new));
                }
                o.set_prev(Some(new));
            }
            if self.head() == old {
                self.set_head(Some(new));
            }
        }
        if self.nodes() == 0 {
            self.set_head(Some(new));
            self.set_tail(Some(new));
        }
        self.add_nodes(1);
    }

    /// Unlinks a node (the first half of `__quicklistDelNode`).
    fn unlink_node(self, node: QNode) {
        if let Some(n) = node.next() {
            n.set_prev(node.prev());
        }
        if let Some(p) = node.prev() {
            p.set_next(node.next());
        }
        if self.tail() == Some(node) {
            self.set_tail(node.prev());
        }
        if self.head() == Some(node) {
            self.set_head(node.next());
        }
        self.add_nodes(-1);
        self.add_count(-(node.count() as isize));
    }

    /// `__quicklistDelNode`: unlinks the node and frees its entry, then the node.
    fn del_node<A: Allocator>(self, a: &mut A, node: QNode) {
        self.unlink_node(node);
        // SAFETY: the node is unlinked; its entry and itself are freed once.
        unsafe {
            a.free(node.entry(), node.entry_size());
            a.free(node.0, NODE);
        }
    }

    /// A new node holding `bytes` (a whole listpack or a PLAIN element) of `count` elements.
    fn new_node<A: Allocator>(
        a: &mut A,
        bytes: &[u8],
        count: usize,
        plain: bool,
    ) -> Result<QNode, AllocError> {
        let node = QNode::init(
            a.alloc(NODE)?.ptr,
            if plain {
                CONTAINER_PLAIN
            } else {
                CONTAINER_PACKED
            },
        );
        let entry = match alloc_copy(a, bytes) {
            Ok(e) => e,
            Err(e) => {
                // SAFETY: the node was just allocated.
                unsafe { a.free(node.0, NODE) };
                return Err(e);
            }
        };
        node.set(entry, bytes.len(), count);
        Ok(node)
    }

    /// `quicklistPushHead` / `quicklistPushTail`.
    pub(super) fn push<A: Allocator>(
        self,
        a: &mut A,
        elem: &[u8],
        head: bool,
    ) -> Result<(), AllocError> {
        let end = if head { self.head() } else { self.tail() };
        if elem.len() >= PACKED_THRESHOLD {
            // `__quicklistInsertPlainNode`.
            let node = Self::new_node(a, elem, 1, true)?;
            self.insert_node(end, node, !head);
            self.add_count(1);
            return Ok(());
        }
        let v = LpValue::Str(elem);
        match end {
            Some(node) if allow_insert(end, self.fill(), elem.len()) => {
                let mut lp = node.lp();
                if head {
                    lp.prepend(a, v)?;
                } else {
                    lp.append(a, v)?;
                }
                node.set_lp(lp, node.count() + 1);
            }
            _ => {
                let node = QNode::init(a.alloc(NODE)?.ptr, CONTAINER_PACKED);
                let mut lp = match Listpack::new(a) {
                    Ok(lp) => lp,
                    Err(e) => {
                        // SAFETY: the node was just allocated.
                        unsafe { a.free(node.0, NODE) };
                        return Err(e);
                    }
                };
                let added = if head {
                    lp.prepend(a, v)
                } else {
                    lp.append(a, v)
                };
                if let Err(e) = added {
                    // SAFETY: both were just allocated and are not linked.
                    unsafe {
                        lp.free(a);
                        a.free(node.0, NODE);
                    }
                    return Err(e);
                }
                node.set_lp(lp, 1);
                self.insert_node(end, node, !head);
            }
        }
        self.add_count(1);
        Ok(())
    }

    /// `quicklistPopCustom`: removes the first (`head`) or last element, appending its text to
    /// `out`; returns its length, or `None` when the list is empty.
    pub(super) fn pop<A: Allocator>(
        self,
        a: &mut A,
        head: bool,
        out: &mut Vec<u8>,
    ) -> Result<Option<usize>, AllocError> {
        let Some(node) = (if head { self.head() } else { self.tail() }) else {
            return Ok(None);
        };
        let mark = out.len();
        if node.plain() {
            // SAFETY: a PLAIN node's entry holds `sz` bytes of its one element.
            out.extend_from_slice(unsafe {
                std::slice::from_raw_parts(node.entry().as_ptr(), node.sz())
            });
            self.del_node(a, node);
            return Ok(Some(out.len() - mark));
        }
        let mut lp = node.lp();
        let off = lp
            .seek(if head { 0 } else { -1 })
            .expect("a node is never empty");
        lp.get(off).write_text(out);
        // `quicklistDelIndex`: `lpDelete`, then the node goes if it is empty.
        let deleted = lp.delete(a, off);
        if node.count() == 1 {
            // The node goes whether or not the shrink to 7 bytes was granted.
            node.set_lp(lp, 1);
            self.del_node(a, node);
        } else if let Err(e) = deleted {
            out.truncate(mark);
            return Err(e);
        } else {
            node.set_lp(lp, node.count() - 1);
            self.add_count(-1);
        }
        Ok(Some(out.len() - mark))
    }

    /// Calls `f` with `n` elements from index `start` (`start + n <= count()`), in order.
    pub(super) fn for_range(self, start: usize, n: usize, f: &mut dyn FnMut(LpValue<'_>)) {
        let (mut skip, mut left) = (start, n);
        let mut node = self.head();
        while let Some(nd) = node {
            if left == 0 {
                break;
            }
            if skip >= nd.count() {
                skip -= nd.count();
            } else if nd.plain() {
                // SAFETY: a PLAIN node's entry holds `sz` bytes of its one element.
                f(LpValue::Str(unsafe {
                    std::slice::from_raw_parts(nd.entry().as_ptr(), nd.sz())
                }));
                left -= 1;
            } else {
                let lp = nd.lp();
                for v in lp.iter().skip(skip).take(left) {
                    f(v);
                    left -= 1;
                }
                skip = 0;
            }
            node = nd.next();
        }
    }

    /// Calls `f(start, requested size)` for the struct, every node and every entry block.
    pub(super) fn blocks(self, f: &mut dyn FnMut(usize, usize)) {
        f(self.0.as_ptr() as usize, QUICKLIST);
        let mut node = self.head();
        while let Some(n) = node {
            f(n.0.as_ptr() as usize, NODE);
            f(n.entry().as_ptr() as usize, n.entry_size());
            node = n.next();
        }
    }

    /// `quicklistRelease`: every node's entry then the node, head first; then the struct.
    ///
    /// # Safety
    /// The quicklist is live and not used afterwards.
    pub(super) unsafe fn free<A: Allocator>(self, a: &mut A) {
        let mut node = self.head();
        while let Some(n) = node {
            node = n.next();
            // SAFETY: every node and entry belongs to the list and is freed once.
            unsafe {
                a.free(n.entry(), n.entry_size());
                a.free(n.0, NODE);
            }
        }
        // SAFETY: the struct is freed once, last.
        unsafe { a.free(self.0, QUICKLIST) };
    }
}

/// A new block holding a copy of `bytes`.
fn alloc_copy<A: Allocator>(a: &mut A, bytes: &[u8]) -> Result<NonNull<u8>, AllocError> {
    if bytes.len() > a.max_contiguous() {
        return Err(AllocError::TooLarge {
            size: bytes.len(),
            max: a.max_contiguous(),
        });
    }
    let p = a.alloc(bytes.len())?.ptr;
    // SAFETY: a fresh block of `bytes.len()` bytes.
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), p.as_ptr(), bytes.len()) };
    Ok(p)
}

#[path = "quicklist_trim.rs"]
mod trim;

#[cfg(test)]
#[path = "quicklist_tests.rs"]
mod tests;
