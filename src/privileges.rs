//! Can we trace at all? Root, or CAP_BPF with CAP_PERFMON (or CAP_SYS_ADMIN).

/// Capability numbers from include/uapi/linux/capability.h.
const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// The effective capability mask from /proc/self/status's `CapEff:` line.
pub fn effective_caps(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("CapEff:"))?;
    u64::from_str_radix(line.trim_start_matches("CapEff:").trim(), 16).ok()
}

/// Whether a capability mask allows loading tracing programs and opening probes.
pub fn caps_allow_tracing(caps: u64) -> bool {
    let has = |c: u32| caps & (1u64 << c) != 0;
    has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON))
}

/// Ok when this process may trace; else the message telling the user what to do.
pub fn check() -> Result<(), String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    match effective_caps(&status) {
        Some(caps) if caps_allow_tracing(caps) => Ok(()),
        _ => Err("tracing needs root: run it again with sudo (`sudo trace ...`), or give the binary \
                  CAP_BPF and CAP_PERFMON (`sudo setcap cap_bpf,cap_perfmon+ep trace`)"
            .to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_capabilities() {
        let root = "Name:\ttrace\nCapEff:\t000001ffffffffff\n";
        assert_eq!(effective_caps(root), Some(0x1ff_ffff_ffff));
        assert!(caps_allow_tracing(0x1ff_ffff_ffff));
        assert!(!caps_allow_tracing(0));
        assert!(caps_allow_tracing((1 << CAP_BPF) | (1 << CAP_PERFMON)));
        assert!(!caps_allow_tracing(1 << CAP_BPF));
        assert_eq!(effective_caps("Name:\tx\n"), None);
    }
}
