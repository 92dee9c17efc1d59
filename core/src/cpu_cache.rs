//! A hint to the CPU that memory will be read soon.
//!
//! With tens of thousands of flows open, a packet's index cells and flow slot are rarely in the
//! cache, and the analysing thread waited for them at every packet (the flow table's look-up,
//! then the flow's own fields). The frames decoded ahead (`predecode`) name the flows of the
//! next packets, so their lines can be asked for while the current packet is analysed
//! (`FlowTable::prefetch_index`, `FlowTable::prefetch`).

/// Ask for the cache line holding `p`. Never faults and never changes what a program computes,
/// whatever `p` is.
#[inline]
pub fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `prefetcht0` is a hint: it reads nothing into a register and raises no fault for
    // any address (Intel SDM, PREFETCHh), and SSE is part of every x86_64 target. The intrinsic
    // is `unsafe` only because it is declared with `#[target_feature(enable = "sse")]`.
    #[allow(unsafe_code)]
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
