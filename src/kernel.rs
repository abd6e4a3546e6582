//! What the running kernel is: its version, and the one place where a feature
//! is told from it (`kern_version`, RLIMIT_MEMLOCK, the probe_read_user
//! helpers, the BPF ring buffer, the kprobe PMU). Features that are asked of the
//! kernel itself are asked where they are used: the PMUs in sysfs (`perf`),
//! uprobe links by loading a program (`bpf::link`), tracefs (`tracefs`).

use std::fmt;
use std::fs;

/// A kernel version as major.minor.patch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct KernelVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl KernelVersion {
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        KernelVersion { major, minor, patch }
    }

    /// LINUX_VERSION_CODE as include/generated/uapi/linux/version.h computes it
    /// (KERNEL_VERSION(a,b,c) = (a << 16) + (b << 8) + min(c, 255)).
    pub fn code(self) -> u32 {
        (self.major << 16) + (self.minor << 8) + self.patch.min(255)
    }

    /// The running kernel, found at run time (never at build time): Ubuntu's
    /// /proc/version_signature, then the "Debian x.y.z" part of `uname -v`, then
    /// `uname -r`. The distribution strings matter because their `uname -r` often
    /// hides the real sublevel ("5.10.0-28-cloud-amd64").
    pub fn current() -> KernelVersion {
        let uname = nix::sys::utsname::uname().ok();
        let release = uname.as_ref().map(|u| u.release().to_string_lossy().into_owned()).unwrap_or_default();
        let version = uname.as_ref().map(|u| u.version().to_string_lossy().into_owned()).unwrap_or_default();
        let signature = fs::read_to_string("/proc/version_signature").unwrap_or_default();
        Self::from_strings(&signature, &version, &release).unwrap_or(KernelVersion::new(0, 0, 0))
    }

    /// The pure part of [`KernelVersion::current`], testable with fixed strings.
    pub fn from_strings(signature: &str, uname_v: &str, uname_r: &str) -> Option<KernelVersion> {
        // "Ubuntu 5.4.0-42.46-generic 5.4.44": the last word is the upstream version.
        if let Some(v) = signature.split_whitespace().last().and_then(parse_version) {
            return Some(v);
        }
        // "#1 SMP Debian 5.10.209-2 (2024-01-31)"
        let words: Vec<&str> = uname_v.split_whitespace().collect();
        if let Some(i) = words.iter().position(|w| *w == "Debian") {
            if let Some(v) = words.get(i + 1).and_then(|w| parse_version(w)) {
                return Some(v);
            }
        }
        parse_version(uname_r)
    }

    /// Programs of type KPROBE carry kern_version only before 5.0.
    pub fn needs_kern_version(self) -> bool {
        self < KernelVersion::new(5, 0, 0)
    }

    /// Before 5.11 BPF memory is charged to RLIMIT_MEMLOCK.
    pub fn charges_memlock(self) -> bool {
        self < KernelVersion::new(5, 11, 0)
    }

    /// bpf_probe_read_user_str and friends appeared in 5.5.
    pub fn has_probe_read_user(self) -> bool {
        self >= KernelVersion::new(5, 5, 0)
    }

    /// BPF_MAP_TYPE_RINGBUF and bpf_ringbuf_output came with 5.8.
    pub fn has_ringbuf(self) -> bool {
        self >= RINGBUF_SINCE
    }

    /// The kprobe PMU (`/sys/bus/event_source/devices/kprobe`), which trace
    /// attaches kprobes with, came with 4.17.
    pub fn has_kprobe_pmu(self) -> bool {
        self >= KPROBE_PMU_SINCE
    }
}

/// The first kernel with the BPF ring buffer.
pub const RINGBUF_SINCE: KernelVersion = KernelVersion::new(5, 8, 0);
/// The first kernel with the kprobe PMU.
pub const KPROBE_PMU_SINCE: KernelVersion = KernelVersion::new(4, 17, 0);

impl fmt::Display for KernelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// "5.10.209-2", "6.18.44-fc-v782", "4.19.0": the leading numbers.
fn parse_version(s: &str) -> Option<KernelVersion> {
    let mut nums = s.split(|c: char| !c.is_ascii_digit()).take(3);
    let major = nums.next()?.parse().ok()?;
    let minor = nums.next()?.parse().ok()?;
    let patch = nums.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    Some(KernelVersion::new(major, minor, patch))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_code_matches_kernel_macro() {
        assert_eq!(KernelVersion::new(4, 19, 0).code(), 0x041300);
        assert_eq!(KernelVersion::new(5, 10, 300).code(), 0x050aff);
    }

    #[test]
    fn distribution_strings_win_over_uname_r() {
        let ubuntu =
            KernelVersion::from_strings("Ubuntu 5.4.0-42.46-generic 5.4.44\n", "", "5.4.0-42-generic");
        assert_eq!(ubuntu, Some(KernelVersion::new(5, 4, 44)));
        let debian =
            KernelVersion::from_strings("", "#1 SMP Debian 5.10.209-2 (2024-01-31)", "5.10.0-28-cloud-amd64");
        assert_eq!(debian, Some(KernelVersion::new(5, 10, 209)));
        let plain = KernelVersion::from_strings("", "#1 SMP PREEMPT_DYNAMIC @0", "6.18.44-fc-v782");
        assert_eq!(plain, Some(KernelVersion::new(6, 18, 44)));
    }

    #[test]
    fn feature_thresholds() {
        assert!(KernelVersion::new(4, 19, 0).needs_kern_version());
        assert!(!KernelVersion::new(5, 0, 0).needs_kern_version());
        assert!(KernelVersion::new(5, 10, 0).charges_memlock());
        assert!(!KernelVersion::new(5, 11, 0).charges_memlock());
        assert!(!KernelVersion::new(5, 4, 0).has_probe_read_user());
        assert!(KernelVersion::new(5, 5, 0).has_probe_read_user());
    }
}
