//! Returning freed heap to the operating system. glibc keeps freed heap mapped for
//! reuse, so after a burst of allocation (start-up, a Kubernetes relist, a large store
//! batch, forgetting idle edges) RSS would stay at the peak for good. The layers that
//! cause such bursts call this once the burst is over, so RSS follows the working set.
//! It sits at the bottom of the crate because both identity and the daemon need it.

/// Hands the heap glibc holds free back to the system.
pub(crate) fn release_freed_memory() {
    // SAFETY: malloc_trim only releases free heap pages; it has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}
