//! `slabs reassign` (memcached's `process_slabs_command` in `proto_text.c`): the engine's page
//! mover behind memcached's answers.

use fraglab_allocators::Allocator;
use fraglab_engine::Layout;

use super::{line, parse_u32};
use crate::serve::Ctx;

/// `slabs reassign SRC DST` (`process_slabs_command`): the engine's page mover, with
/// memcached's answers.
pub(super) fn slabs_reassign<A: Allocator, L: Layout>(
    ctx: &mut Ctx<A, L>,
    src: &[u8],
    dst: &[u8],
    now: u64,
    out: &mut Vec<u8>,
) {
    use fraglab_allocators::slab::MoveError;
    use fraglab_engine::ReassignError;
    let src = match src {
        b"-1" => Some(None),
        s => parse_u32(s).map(Some),
    };
    let (Some(src), Some(dst)) = (src, parse_u32(dst)) else {
        line(out, false, b"CLIENT_ERROR bad command line format");
        return;
    };
    let reply: &[u8] = match ctx.store.slabs_reassign(src, dst, now) {
        Ok(()) => b"OK",
        Err(ReassignError::Unsupported) => b"CLIENT_ERROR slab reassignment disabled",
        Err(ReassignError::Move(MoveError::Running)) => {
            b"BUSY currently processing reassign request"
        }
        Err(ReassignError::Move(MoveError::NoSuchClass(_))) => {
            b"BADCLASS invalid src or dst class id"
        }
        Err(ReassignError::Move(MoveError::SameClass(_))) => {
            b"SAME src and dst class are identical"
        }
        Err(ReassignError::Move(MoveError::NoSpare(_)) | ReassignError::NoSource(_)) => {
            b"NOSPARE source class has no spare pages"
        }
        Err(ReassignError::Move(_)) => b"SERVER_ERROR page move failed",
    };
    line(out, false, reply);
}
