//! Can we trace at all? Root, or CAP_BPF with CAP_PERFMON (or CAP_SYS_ADMIN).
//!
//! Those capabilities trace any process of the machine: a user who runs trace
//! with them (file capabilities, `setcap`), not as root, could read another
//! user's data through a uprobe on a library function. So trace does not
//! advise them, and a user who is not root may then trace only what they could
//! ptrace themselves: a command trace starts as them, or `-p` of their own
//! process; not `--watch` (every process running a program) and not a script
//! without a process (the whole system).

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
        _ => Err("tracing needs root: run it again with sudo (`sudo trace ...`)".to_string()),
    }
}

/// What a session will trace, for [`check_scope`].
pub enum Scope {
    /// A command trace starts itself, as the user who runs trace.
    Command,
    /// A running process.
    Pid(u32),
    /// Processes that are not named: `--watch`, or a script with neither `-c`
    /// nor `-p` (the whole system).
    Others,
}

/// For a user who is not root but has the capabilities (see the module's
/// text): Ok only for what that user could trace with ptrace.
pub fn check_scope(scope: Scope) -> Result<(), String> {
    let uid = nix::unistd::getuid().as_raw();
    if uid == 0 {
        return Ok(());
    }
    let refuse = |what: &str| {
        Err(format!(
            "{what}: trace has tracing capabilities but runs as uid {uid}, not root, and would see \
             other users' processes; as yourself, trace a command (`trace ./prog`) or -p of your own \
             process, or use sudo"
        ))
    };
    match scope {
        Scope::Command => Ok(()),
        Scope::Pid(pid) => {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            // Uid: real, effective, saved, fs: all must be the user's, as ptrace asks.
            let uids: Vec<u32> = status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .map(|l| l.split_whitespace().filter_map(|u| u.parse().ok()).collect())
                .unwrap_or_default();
            if !uids.is_empty() && uids.iter().all(|&u| u == uid) {
                Ok(())
            } else {
                refuse(&format!("process {pid} is not yours"))
            }
        }
        Scope::Others => refuse("--watch and scripts without -c or -p trace every process"),
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
