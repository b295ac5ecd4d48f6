//! LTRIM on a quicklist (`quicklist.rs`): Redis 7.0's two `quicklistDelRange` calls, and
//! their undoing when the allocator refuses a shrink midway.

use fraglab_allocators::{AllocError, Allocator};

use super::{Listpack, QNode, Quicklist};

/// A whole node removed by LTRIM, kept until the command cannot fail any more.
struct Removed {
    bytes: Vec<u8>,
    count: usize,
    plain: bool,
}

/// The node LTRIM's first half cut, its listpack as it was, and how many elements it lost.
struct Cut {
    node: QNode,
    saved: Vec<u8>,
    removed: usize,
}

impl Quicklist {
    /// LTRIM's two `quicklistDelRange` calls: removes the first `ltrim` and the last `rtrim`
    /// elements (`ltrim + rtrim <= count()`). On a refusal the list is put back as it was.
    pub(in super::super) fn trim<A: Allocator>(
        self,
        a: &mut A,
        ltrim: usize,
        rtrim: usize,
    ) -> Result<(), AllocError> {
        let mut removed = Vec::new();
        // `quicklistDelRange(ql, 0, ltrim)`: whole nodes from the head, then a cut.
        let mut left = ltrim;
        let mut cut: Option<Cut> = None;
        while left > 0 {
            let node = self.head().expect("ltrim within the list");
            if left >= node.count() {
                left -= node.count();
                removed.push(Removed::of(node));
                self.del_node(a, node);
            } else {
                // Never PLAIN: a PLAIN node holds one element.
                let mut lp = node.lp();
                let saved = lp_bytes(lp);
                if let Err(e) = lp.delete_range_index(a, 0, left) {
                    self.restore(a, removed, None);
                    return Err(e);
                }
                node.set_lp(lp, node.count() - left);
                self.add_count(-(left as isize));
                cut = Some(Cut {
                    node,
                    saved,
                    removed: left,
                });
                left = 0;
            }
        }
        if rtrim == 0 {
            return Ok(());
        }
        // `quicklistDelRange(ql, -rtrim, rtrim)`: the node holding index -rtrim loses its
        // elements from there to its end (all of them, then it goes), then whole nodes.
        let (mut node, mut behind) = (self.tail(), 0);
        while let Some(n) = node {
            if behind + n.count() >= rtrim {
                break;
            }
            behind += n.count();
            node = n.prev();
        }
        let first = node.expect("rtrim within the list");
        let mut next = first.next();
        let del = rtrim - behind;
        if first.plain() {
            self.del_node(a, first);
        } else {
            let mut lp = first.lp();
            let shrunk = lp.delete_range_index(a, -(del as i64), del);
            if del == first.count() {
                first.set_lp(lp, first.count());
                self.del_node(a, first);
            } else if let Err(e) = shrunk {
                self.restore(a, removed, cut);
                return Err(e);
            } else {
                first.set_lp(lp, first.count() - del);
                self.add_count(-(del as isize));
            }
        }
        // Then every node after it, towards the tail.
        while let Some(n) = next {
            next = n.next();
            self.del_node(a, n);
        }
        Ok(())
    }

    /// Undoes LTRIM's first half: grows the cut node back and puts the removed head nodes
    /// back in front (best effort: blocks of sizes just freed).
    fn restore<A: Allocator>(self, a: &mut A, removed: Vec<Removed>, cut: Option<Cut>) {
        if let Some(Cut {
            node,
            saved,
            removed,
        }) = cut
        {
            let lp = node.lp();
            // SAFETY: the node's live listpack block, requested with `lp.bytes()` bytes.
            if let Ok(b) = unsafe { a.realloc(lp.ptr(), lp.bytes(), saved.len()) } {
                // SAFETY: the block now holds `saved.len()` bytes.
                unsafe {
                    std::ptr::copy_nonoverlapping(saved.as_ptr(), b.ptr.as_ptr(), saved.len());
                }
                node.set(b.ptr, saved.len(), node.count() + removed);
                self.add_count(removed as isize);
            }
        }
        for r in removed.into_iter().rev() {
            let Ok(node) = Self::new_node(a, &r.bytes, r.count, r.plain) else {
                return;
            };
            self.insert_node(self.head(), node, false);
            self.add_count(r.count as isize);
        }
    }
}

impl Removed {
    fn of(node: QNode) -> Removed {
        let bytes = if node.plain() {
            // SAFETY: a PLAIN node's entry holds `sz` bytes.
            unsafe { std::slice::from_raw_parts(node.entry().as_ptr(), node.sz()) }.to_vec()
        } else {
            lp_bytes(node.lp())
        };
        Removed {
            bytes,
            count: node.count(),
            plain: node.plain(),
        }
    }
}

/// A copy of a listpack's bytes.
fn lp_bytes(lp: Listpack) -> Vec<u8> {
    // SAFETY: the listpack's block holds `bytes()` bytes.
    unsafe { std::slice::from_raw_parts(lp.ptr().as_ptr(), lp.bytes()) }.to_vec()
}
