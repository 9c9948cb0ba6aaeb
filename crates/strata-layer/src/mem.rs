//! Memory the process is about to fill, made ready in one call.

/// Ask the kernel to map the pages of `v`'s spare capacity now, in one call
/// (`MADV_POPULATE_WRITE`, Linux 5.14), rather than one page fault per 4 KiB as the
/// vector fills: a fault costs microseconds (a virtual machine's more), and a table of
/// a few hundred KiB is filled at once. Only whole pages inside the allocation are
/// asked for; a kernel without the call, or anything else that fails, changes nothing.
pub(crate) fn prefault<T>(v: &mut Vec<T>) {
    const PAGE: usize = 4096;
    let spare = v.spare_capacity_mut();
    let bytes = std::mem::size_of_val(spare);
    // Small buffers come from pages the allocator touched already.
    if bytes < 16 * PAGE {
        return;
    }
    let start = spare.as_mut_ptr() as usize;
    let first = start.next_multiple_of(PAGE);
    let end = (start + bytes) & !(PAGE - 1);
    if end <= first {
        return;
    }
    #[allow(unsafe_code)]
    // SAFETY: `first..end` is whole pages inside `v`'s allocation, which `v` owns; the
    // advice maps those pages (as a write to each would) and changes no byte of them.
    let _ = unsafe {
        rustix::mm::madvise(first as *mut std::ffi::c_void, end - first, rustix::mm::Advice::LinuxPopulateWrite)
    };
}
