//! Every environment variable trace reads for itself, in one place (README.md,
//! "Environment", lists them). The variables of the user's own world (PATH to
//! find a command, SUDO_*/DOAS_USER for whom to run it as) are read where they
//! are used: [`crate::process`], [`crate::creds`].
//!
//! - Knobs for measuring and for kernels trace cannot see from its version:
//!   `TRACE_PERF_RINGS=1`, `TRACE_UPROBE_LINKS=0`. In every build.
//! - Test hooks, which make trace fail or stop at a chosen moment so that a test
//!   can prove what happens then: only in a build with the `test-hooks` feature
//!   (`cargo test --features test-hooks`, as ./run-tests does); the shipped
//!   binary reads none of them.

/// `TRACE_PERF_RINGS=1`: send records through the per-CPU perf rings, as on
/// kernels before the BPF ring buffer (5.8).
pub fn perf_rings_forced() -> bool {
    std::env::var_os("TRACE_PERF_RINGS").is_some_and(|v| v == "1")
}

/// `TRACE_UPROBE_LINKS=0`: attach uprobes as perf events even where the kernel
/// has uprobe links, as before 6.10.
pub fn uprobe_links_off() -> bool {
    std::env::var_os("TRACE_UPROBE_LINKS").is_some_and(|v| v == "0")
}

/// Test hook `TRACE_TEST_FAIL_ATTACH=N`: attaching the N-th unit of probes (from
/// 0, in attach order) fails as a kernel refusal would.
#[cfg(feature = "test-hooks")]
pub fn fail_attach_at() -> Option<usize> {
    std::env::var("TRACE_TEST_FAIL_ATTACH").ok()?.parse().ok()
}

#[cfg(not(feature = "test-hooks"))]
pub fn fail_attach_at() -> Option<usize> {
    None
}

/// Test hook `TRACE_TEST_STOP_BEFORE_RELEASE`: trace stops itself (SIGSTOP)
/// once every probe is attached and its signal handlers are in place, with the
/// command still held, so that a test can act at that moment.
#[cfg(feature = "test-hooks")]
pub fn stop_before_release() -> bool {
    std::env::var_os("TRACE_TEST_STOP_BEFORE_RELEASE").is_some()
}

#[cfg(not(feature = "test-hooks"))]
pub fn stop_before_release() -> bool {
    false
}
