//! Errors of the perf room, with messages that say what to check next.

use std::fmt;
use std::io;
use std::path::PathBuf;

use nix::errno::Errno;

/// Where the perf_event_open paranoia level is set.
pub const PERF_EVENT_PARANOID: &str = "/proc/sys/kernel/perf_event_paranoid";
/// The kernel lockdown state (security/lockdown/lockdown.c).
pub const LOCKDOWN: &str = "/sys/kernel/security/lockdown";

/// What a perf event was opened for, to name it in errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PerfTarget {
    /// A uprobe (or uretprobe) at a file offset of a binary.
    Uprobe { binary: PathBuf, offset: u64, retprobe: bool, pid: i32 },
    /// A kprobe (or kretprobe) on a kernel function.
    Kprobe { func: String, offset: u64, retprobe: bool },
    /// A tracepoint, by its tracefs id.
    Tracepoint { id: u32, pid: i32 },
    /// The BPF-output event behind one CPU's ring.
    BpfOutput { cpu: u32 },
    /// Any other event (perf_event_open called directly).
    Event { type_: u32, config: u64, pid: i32 },
}

impl fmt::Display for PerfTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PerfTarget::Uprobe { binary, offset, retprobe, .. } => {
                let kind = if *retprobe { "uretprobe" } else { "uprobe" };
                write!(f, "{kind} on {} at file offset {offset:#x}", crate::escape::path(binary))
            }
            PerfTarget::Kprobe { func, offset, retprobe } => {
                let kind = if *retprobe { "kretprobe" } else { "kprobe" };
                match offset {
                    0 => write!(f, "{kind} on `{func}`"),
                    o => write!(f, "{kind} on `{func}+{o:#x}`"),
                }
            }
            PerfTarget::Tracepoint { id, .. } => write!(f, "the tracepoint with id {id}"),
            PerfTarget::BpfOutput { cpu } => write!(f, "the BPF output event of CPU {cpu}"),
            PerfTarget::Event { type_, config, .. } => {
                write!(f, "the perf event type {type_} config {config:#x}")
            }
        }
    }
}

impl PerfTarget {
    /// The pid the event was opened for (-1: all processes).
    fn pid(&self) -> i32 {
        match self {
            PerfTarget::Uprobe { pid, .. }
            | PerfTarget::Tracepoint { pid, .. }
            | PerfTarget::Event { pid, .. } => *pid,
            PerfTarget::Kprobe { .. } | PerfTarget::BpfOutput { .. } => -1,
        }
    }
}

/// Why a perf operation failed.
#[derive(Debug)]
pub enum PerfError {
    /// No `/sys/bus/event_source/devices/<pmu>`: the kernel lacks that PMU.
    NoPmu(String),
    /// A PMU file whose content we do not understand.
    PmuFormat { path: PathBuf, text: String },
    /// A sysfs file that could not be read.
    Io { path: PathBuf, err: io::Error },
    /// A CPU list (`0-1,3`) that could not be parsed.
    CpuList { text: String, reason: String },
    /// An argument rejected before calling the kernel.
    InvalidArgument(String),
    /// ENOENT: no such file, function or tracepoint.
    NotFound(PerfTarget),
    /// EINVAL on a kprobe: the function exists but cannot be probed.
    NotProbeable { func: String },
    /// EILSEQ: the probe offset is not on an instruction boundary.
    NotInstructionBoundary(PerfTarget),
    /// EPERM or EACCES, with the settings that may explain it.
    Permission { target: PerfTarget, errno: Errno, paranoid: Option<String>, lockdown: Option<String> },
    /// ESRCH: the process to trace does not exist.
    NoProcess { pid: i32 },
    /// Any other perf_event_open failure.
    Open { target: PerfTarget, errno: Errno },
    /// An ioctl on a perf event failed.
    Ioctl { request: &'static str, errno: Errno },
    /// mmap of a perf ring failed.
    Mmap { cpu: u32, bytes: usize, err: io::Error },
    /// mmap of part of the BPF ring buffer failed (`offset` 0: the consumer page).
    RingbufMmap { bytes: usize, offset: u64, err: io::Error },
}

impl PerfError {
    /// Translates the errno of a failed perf_event_open for `target`.
    pub fn from_open(errno: Errno, target: PerfTarget) -> PerfError {
        match (errno, &target) {
            (Errno::ENOENT, _) => PerfError::NotFound(target),
            (Errno::EINVAL, PerfTarget::Kprobe { func, .. }) => {
                PerfError::NotProbeable { func: func.clone() }
            }
            (Errno::EILSEQ, _) => PerfError::NotInstructionBoundary(target),
            (Errno::EPERM | Errno::EACCES, _) => PerfError::Permission {
                target,
                errno,
                paranoid: read_setting(PERF_EVENT_PARANOID),
                lockdown: read_setting(LOCKDOWN),
            },
            (Errno::ESRCH, _) => PerfError::NoProcess { pid: target.pid() },
            _ => PerfError::Open { target, errno },
        }
    }

    /// The errno behind this error, if it came from the kernel.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            PerfError::NotFound(_) => Some(Errno::ENOENT),
            PerfError::NotProbeable { .. } => Some(Errno::EINVAL),
            PerfError::NotInstructionBoundary(_) => Some(Errno::EILSEQ),
            PerfError::NoProcess { .. } => Some(Errno::ESRCH),
            PerfError::Permission { errno, .. }
            | PerfError::Open { errno, .. }
            | PerfError::Ioctl { errno, .. } => Some(*errno),
            PerfError::Io { err, .. } | PerfError::Mmap { err, .. } | PerfError::RingbufMmap { err, .. } => {
                err.raw_os_error().map(Errno::from_raw)
            }
            _ => None,
        }
    }
}

/// The trimmed content of a small settings file, if readable.
fn read_setting(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|s| s.trim().to_string())
}

impl fmt::Display for PerfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PerfError::NoPmu(pmu) => write_no_pmu(f, pmu),
            PerfError::PmuFormat { path, text } => {
                write!(f, "cannot understand {} ({text:?}): expected `config:BIT`", path.display())
            }
            PerfError::Io { path, err } => write!(f, "cannot read {}: {err}", path.display()),
            PerfError::CpuList { text, reason } => write!(f, "cannot parse the CPU list {text:?}: {reason}"),
            PerfError::InvalidArgument(msg) => f.write_str(msg),
            PerfError::NotFound(target) => write_not_found(f, target),
            PerfError::NotProbeable { func } => write!(
                f,
                "the kernel function `{func}` cannot be probed (EINVAL): it may be inlined or on the \
                 kprobe blacklist; /sys/kernel/tracing/available_filter_functions lists functions that can"
            ),
            PerfError::NotInstructionBoundary(target) => write!(
                f,
                "cannot place {target}: the offset is not on an instruction boundary (EILSEQ); \
                 use a function's start or an offset taken from a disassembly"
            ),
            PerfError::Permission { target, errno, paranoid, lockdown } => {
                write_permission(f, target, *errno, paranoid.as_deref(), lockdown.as_deref())
            }
            PerfError::NoProcess { pid } => {
                write!(f, "no process with pid {pid} (ESRCH): it may have exited; `pgrep NAME` finds pids")
            }
            PerfError::Open { target, errno } => write_open(f, target, *errno),
            PerfError::Ioctl { request, errno } => write_ioctl(f, request, *errno),
            PerfError::Mmap { cpu, bytes, err } => write!(
                f,
                "cannot map the perf ring of CPU {cpu} ({bytes} bytes): {err}; if this is EPERM, the ring \
                 exceeds the locked-memory allowance (/proc/sys/kernel/perf_event_mlock_kb, `ulimit -l`): \
                 use a smaller ring or run as root"
            ),
            PerfError::RingbufMmap { bytes, offset, err } => write!(
                f,
                "cannot map the BPF ring buffer ({bytes} bytes at offset {offset}): {err}; use a smaller \
                 ring (--ring-pages)"
            ),
        }
    }
}

impl std::error::Error for PerfError {}

fn write_no_pmu(f: &mut fmt::Formatter<'_>, pmu: &str) -> fmt::Result {
    write!(f, "this kernel has no `{pmu}` PMU (no /sys/bus/event_source/devices/{pmu})")?;
    match pmu {
        "kprobe" => {
            f.write_str(": it was built without CONFIG_KPROBE_EVENTS, so kernel functions cannot be traced")
        }
        "uprobe" => {
            f.write_str(": it was built without CONFIG_UPROBE_EVENTS, so user functions cannot be traced")
        }
        _ => Ok(()),
    }
}

fn write_not_found(f: &mut fmt::Formatter<'_>, target: &PerfTarget) -> fmt::Result {
    match target {
        PerfTarget::Uprobe { binary, .. } => {
            write!(f, "cannot place {target}: no such file {} (ENOENT)", crate::escape::path(binary))
        }
        PerfTarget::Kprobe { func, .. } => write!(
            f,
            "cannot place {target}: the kernel has no function `{func}` (ENOENT); check /proc/kallsyms"
        ),
        PerfTarget::Tracepoint { id, .. } => write!(
            f,
            "no tracepoint with id {id} (ENOENT): take the id from tracefs events/<category>/<name>/id"
        ),
        _ => write!(f, "cannot open {target}: ENOENT"),
    }
}

fn write_permission(
    f: &mut fmt::Formatter<'_>,
    target: &PerfTarget,
    errno: Errno,
    paranoid: Option<&str>,
    lockdown: Option<&str>,
) -> fmt::Result {
    write!(
        f,
        "permission denied opening {target} ({}): run as root, or grant CAP_PERFMON and CAP_BPF; \
         check {PERF_EVENT_PARANOID}",
        errno.desc()
    )?;
    if let Some(p) = paranoid {
        write!(f, " (now {p}; -1 allows everything)")?;
    }
    write!(f, " and the kernel lockdown in {LOCKDOWN}")?;
    if let Some(l) = lockdown {
        write!(f, " (now `{l}`; `confidentiality` forbids kprobes, tracefs and BPF reads of kernel memory)")?;
    }
    Ok(())
}

fn write_open(f: &mut fmt::Formatter<'_>, target: &PerfTarget, errno: Errno) -> fmt::Result {
    write!(f, "cannot open {target}: {errno}")?;
    match (errno, target) {
        (Errno::EINVAL, PerfTarget::Uprobe { binary, .. }) => {
            write!(
                f,
                "; {} must be a regular file and the offset must lie inside it",
                crate::escape::path(binary)
            )
        }
        (Errno::EINVAL, PerfTarget::Tracepoint { .. }) => {
            f.write_str("; no tracepoint has this id (it comes from tracefs events/<category>/<name>/id)")
        }
        (Errno::EMFILE | Errno::ENFILE, _) => f.write_str("; too many open files: raise `ulimit -n`"),
        (Errno::ENODEV, PerfTarget::BpfOutput { cpu }) => {
            write!(f, "; CPU {cpu} is not online (see /sys/devices/system/cpu/online)")
        }
        (Errno::ENODEV | Errno::EOPNOTSUPP, _) => f.write_str("; this kernel does not support that event"),
        (Errno::E2BIG, _) => f.write_str("; the kernel rejected the size of perf_event_attr"),
        _ => Ok(()),
    }
}

fn write_ioctl(f: &mut fmt::Formatter<'_>, request: &str, errno: Errno) -> fmt::Result {
    write!(f, "ioctl {request} failed: {errno}")?;
    match (request, errno) {
        ("PERF_EVENT_IOC_SET_BPF", Errno::EINVAL) => f.write_str(
            "; the descriptor is not a BPF program of the right type (kprobe programs for kprobes and \
             uprobes, tracepoint programs for tracepoints)",
        ),
        ("PERF_EVENT_IOC_SET_BPF", Errno::EEXIST) => f.write_str("; the event already has a BPF program"),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_translation() {
        let up = PerfTarget::Uprobe { binary: "/bin/x".into(), offset: 0x10, retprobe: false, pid: 42 };
        let kp = PerfTarget::Kprobe { func: "vfs_opn".into(), offset: 0, retprobe: true };
        assert!(matches!(PerfError::from_open(Errno::ENOENT, up.clone()), PerfError::NotFound(t) if t == up));
        assert!(
            matches!(PerfError::from_open(Errno::EINVAL, kp.clone()), PerfError::NotProbeable { func } if func == "vfs_opn")
        );
        assert!(matches!(
            PerfError::from_open(Errno::EINVAL, up.clone()),
            PerfError::Open { errno: Errno::EINVAL, .. }
        ));
        assert!(matches!(
            PerfError::from_open(Errno::EILSEQ, up.clone()),
            PerfError::NotInstructionBoundary(_)
        ));
        assert!(matches!(PerfError::from_open(Errno::ESRCH, up.clone()), PerfError::NoProcess { pid: 42 }));
        assert!(matches!(
            PerfError::from_open(Errno::EACCES, kp.clone()),
            PerfError::Permission { errno: Errno::EACCES, .. }
        ));
        assert_eq!(PerfError::from_open(Errno::EPERM, kp).errno(), Some(Errno::EPERM));
    }

    #[test]
    fn messages() {
        let kp = PerfTarget::Kprobe { func: "vfs_opn".into(), offset: 0, retprobe: false };
        assert_eq!(
            PerfError::NotFound(kp).to_string(),
            "cannot place kprobe on `vfs_opn`: the kernel has no function `vfs_opn` (ENOENT); check /proc/kallsyms"
        );
        let up = PerfTarget::Uprobe { binary: "/bin/x".into(), offset: 0x1130, retprobe: true, pid: -1 };
        assert_eq!(
            PerfError::NotInstructionBoundary(up).to_string(),
            "cannot place uretprobe on /bin/x at file offset 0x1130: the offset is not on an instruction \
             boundary (EILSEQ); use a function's start or an offset taken from a disassembly"
        );
        let perm = PerfError::Permission {
            target: PerfTarget::Tracepoint { id: 7, pid: -1 },
            errno: Errno::EACCES,
            paranoid: Some("2".into()),
            lockdown: Some("none [integrity] confidentiality".into()),
        };
        assert_eq!(
            perm.to_string(),
            "permission denied opening the tracepoint with id 7 (Permission denied): run as root, or grant \
             CAP_PERFMON and CAP_BPF; check /proc/sys/kernel/perf_event_paranoid (now 2; -1 allows everything) \
             and the kernel lockdown in /sys/kernel/security/lockdown (now `none [integrity] confidentiality`; \
             `confidentiality` forbids kprobes, tracefs and BPF reads of kernel memory)"
        );
        assert_eq!(
            PerfError::NoPmu("kprobe".into()).to_string(),
            "this kernel has no `kprobe` PMU (no /sys/bus/event_source/devices/kprobe): it was built without \
             CONFIG_KPROBE_EVENTS, so kernel functions cannot be traced"
        );
        let kp_off = PerfTarget::Kprobe { func: "f".into(), offset: 4, retprobe: false };
        assert_eq!(kp_off.to_string(), "kprobe on `f+0x4`");
    }
}
