//! (Branch scaffold: replaced by the protocol's implementation before it reaches main.)

use fraglab_allocators::Allocator;
use fraglab_engine::Layout;

use super::{Ctx, Handled, Protocol};

/// One connection's protocol state.
#[derive(Debug, Default)]
pub struct Resp;

impl Protocol for Resp {
    fn handle<A: Allocator, L: Layout>(
        &mut self,
        _ctx: &mut Ctx<A, L>,
        input: &[u8],
        out: &mut Vec<u8>,
    ) -> Handled {
        out.extend_from_slice(b"ERROR\r\n");
        Handled {
            consumed: input.len(),
            close: true,
        }
    }
}
