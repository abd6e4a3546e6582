//! The kernel boundary of the perf room: `struct perf_event_attr`, the
//! perf_event_open(2) syscall, the PMU files in sysfs, and the ioctls that attach
//! a BPF program and enable an event.
//!
//! Layout and constants come from include/uapi/linux/perf_event.h. The offsets were
//! checked by compiling a C program that prints `offsetof()` of every field against
//! the installed UAPI header (linux-libc-dev, through `sig_data` at 120, sizeof 128)
//! and, for `config3` (added in 6.3, PERF_ATTR_SIZE_VER8 = 136), against the kernel
//! commit that appended it; the unit tests pin the same numbers.

use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use bitflags::bitflags;
use nix::errno::Errno;

use super::error::{PerfError, PerfTarget};
use crate::explain;

// enum perf_type_id, include/uapi/linux/perf_event.h
/// `PERF_TYPE_HARDWARE`: CPU counters.
pub const PERF_TYPE_HARDWARE: u32 = 0;
/// `PERF_TYPE_SOFTWARE`: software events such as BPF output.
pub const PERF_TYPE_SOFTWARE: u32 = 1;
/// `PERF_TYPE_TRACEPOINT`: `config` is a tracefs event id.
pub const PERF_TYPE_TRACEPOINT: u32 = 2;
/// `PERF_TYPE_HW_CACHE`: CPU cache counters.
pub const PERF_TYPE_HW_CACHE: u32 = 3;
/// `PERF_TYPE_RAW`: raw CPU events.
pub const PERF_TYPE_RAW: u32 = 4;
/// `PERF_TYPE_BREAKPOINT`: hardware breakpoints.
pub const PERF_TYPE_BREAKPOINT: u32 = 5;

// enum perf_sw_ids, include/uapi/linux/perf_event.h
/// `PERF_COUNT_SW_DUMMY`: a software event that never counts.
pub const PERF_COUNT_SW_DUMMY: u64 = 9;
/// `PERF_COUNT_SW_BPF_OUTPUT`: the target of bpf_perf_event_output().
pub const PERF_COUNT_SW_BPF_OUTPUT: u64 = 10;

// enum perf_event_sample_format, include/uapi/linux/perf_event.h
/// `PERF_SAMPLE_RAW`: samples carry `u32 size; char data[size]`.
pub const PERF_SAMPLE_RAW: u64 = 1 << 10;

/// `PERF_FLAG_FD_CLOEXEC`, perf_event_open flags (include/uapi/linux/perf_event.h).
pub const PERF_FLAG_FD_CLOEXEC: u64 = 1 << 3;

// Ioctls on a perf event fd, include/uapi/linux/perf_event.h.
/// `PERF_EVENT_IOC_ENABLE = _IO('$', 0)`.
pub const PERF_EVENT_IOC_ENABLE: libc::Ioctl = 0x2400;
/// `PERF_EVENT_IOC_DISABLE = _IO('$', 1)`.
pub const PERF_EVENT_IOC_DISABLE: libc::Ioctl = 0x2401;
/// `PERF_EVENT_IOC_SET_BPF = _IOW('$', 8, __u32)`.
pub const PERF_EVENT_IOC_SET_BPF: libc::Ioctl = 0x4004_2408;

/// `PERF_ATTR_SIZE_VER1` (include/uapi/linux/perf_event.h): the first size that
/// includes `config2`; with a smaller `size` the kernel ignores the probe offset.
pub const PERF_ATTR_SIZE_VER1: u32 = 72;
/// `PERF_ATTR_SIZE_VER5` (include/uapi/linux/perf_event.h): through `aux_watermark`.
pub const PERF_ATTR_SIZE_VER5: u32 = 112;
/// `PERF_ATTR_SIZE_VER8` (include/uapi/linux/perf_event.h, 6.3+): through `config3`.
pub const PERF_ATTR_SIZE_VER8: u32 = 136;

/// Where the kernel lists its PMUs (Documentation/ABI/testing/sysfs-bus-event_source-devices).
pub const EVENT_SOURCE_DEVICES: &str = "/sys/bus/event_source/devices";

bitflags! {
    /// The bit fields at offset 40 of `struct perf_event_attr`, in the header's order.
    #[repr(transparent)]
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct AttrFlags: u64 {
        /// Off by default: enable with PERF_EVENT_IOC_ENABLE.
        const DISABLED = 1 << 0;
        /// Children inherit the event.
        const INHERIT = 1 << 1;
        /// Must always be on the PMU.
        const PINNED = 1 << 2;
        /// The only group on the PMU.
        const EXCLUSIVE = 1 << 3;
        /// Do not count user space.
        const EXCLUDE_USER = 1 << 4;
        /// Do not count the kernel.
        const EXCLUDE_KERNEL = 1 << 5;
        /// Do not count the hypervisor.
        const EXCLUDE_HV = 1 << 6;
        /// Do not count when idle.
        const EXCLUDE_IDLE = 1 << 7;
        /// Emit mmap records.
        const MMAP = 1 << 8;
        /// Emit comm records.
        const COMM = 1 << 9;
        /// `sample_period` is a frequency.
        const FREQ = 1 << 10;
        /// Per-task counts.
        const INHERIT_STAT = 1 << 11;
        /// The next exec enables the event.
        const ENABLE_ON_EXEC = 1 << 12;
        /// Emit fork/exit records.
        const TASK = 1 << 13;
        /// Wake up after `wakeup_watermark` bytes instead of `wakeup_events` events.
        const WATERMARK = 1 << 14;
        /// precise_ip, low bit (a 2-bit skid constraint).
        const PRECISE_IP_LOW = 1 << 15;
        /// precise_ip, high bit.
        const PRECISE_IP_HIGH = 1 << 16;
        /// Non-exec mmap records.
        const MMAP_DATA = 1 << 17;
        /// sample_type fields on all records.
        const SAMPLE_ID_ALL = 1 << 18;
        /// Do not count in the host.
        const EXCLUDE_HOST = 1 << 19;
        /// Do not count in guests.
        const EXCLUDE_GUEST = 1 << 20;
        /// No kernel callchains.
        const EXCLUDE_CALLCHAIN_KERNEL = 1 << 21;
        /// No user callchains.
        const EXCLUDE_CALLCHAIN_USER = 1 << 22;
        /// mmap records with inode data.
        const MMAP2 = 1 << 23;
        /// Flag comm records caused by exec.
        const COMM_EXEC = 1 << 24;
        /// Use `clockid` for time fields.
        const USE_CLOCKID = 1 << 25;
        /// Context switch records.
        const CONTEXT_SWITCH = 1 << 26;
        /// Write the ring from end to beginning.
        const WRITE_BACKWARD = 1 << 27;
        /// Namespace records.
        const NAMESPACES = 1 << 28;
        /// ksymbol records.
        const KSYMBOL = 1 << 29;
        /// BPF program load/unload records.
        const BPF_EVENT = 1 << 30;
        /// AUX records instead of events.
        const AUX_OUTPUT = 1 << 31;
        /// cgroup records.
        const CGROUP = 1 << 32;
        /// text_poke records.
        const TEXT_POKE = 1 << 33;
        /// Build ids in mmap2 records.
        const BUILD_ID = 1 << 34;
        /// Children inherit only with CLONE_THREAD.
        const INHERIT_THREAD = 1 << 35;
        /// Removed from the task on exec.
        const REMOVE_ON_EXEC = 1 << 36;
        /// Send SIGTRAP on events.
        const SIGTRAP = 1 << 37;
    }
}

/// `struct perf_event_attr` (include/uapi/linux/perf_event.h), through `config3`
/// (PERF_ATTR_SIZE_VER8). Unions are one field named after the member we use, with
/// the alternatives in its doc comment. Older kernels accept the larger struct as
/// long as the fields they do not know are zero.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PerfEventAttr {
    /// Major type: `PERF_TYPE_*` or a dynamic PMU type from sysfs.
    pub type_: u32,
    /// `size_of::<PerfEventAttr>()`, set by [`PerfEventAttr::new`].
    pub size: u32,
    /// Type-specific event selector (tracepoint id, retprobe bit, ...).
    pub config: u64,
    /// `sample_period`, or `sample_freq` with [`AttrFlags::FREQ`].
    pub sample_period: u64,
    /// `PERF_SAMPLE_*` bits: what a sample record carries.
    pub sample_type: u64,
    /// `PERF_FORMAT_*` bits: what read(2) returns.
    pub read_format: u64,
    /// The bit fields.
    pub flags: AttrFlags,
    /// `wakeup_events`, or `wakeup_watermark` (bytes) with [`AttrFlags::WATERMARK`].
    pub wakeup: u32,
    /// Breakpoint type.
    pub bp_type: u32,
    /// `config1`: also `bp_addr`, `kprobe_func`, `uprobe_path` (a pointer to a
    /// NUL-terminated string for the probe PMUs).
    pub config1: u64,
    /// `config2`: also `bp_len`, `kprobe_addr`, `probe_offset`.
    pub config2: u64,
    /// `enum perf_branch_sample_type` bits.
    pub branch_sample_type: u64,
    /// User registers to dump in samples.
    pub sample_regs_user: u64,
    /// Bytes of user stack to dump in samples.
    pub sample_stack_user: u32,
    /// Clock for time fields with [`AttrFlags::USE_CLOCKID`].
    pub clockid: i32,
    /// Registers to dump on interrupt samples.
    pub sample_regs_intr: u64,
    /// Wakeup watermark of the AUX area.
    pub aux_watermark: u32,
    /// Maximum callchain depth.
    pub sample_max_stack: u16,
    /// `__reserved_2`: must be zero.
    pub reserved_2: u16,
    /// AUX data bytes per sample.
    pub aux_sample_size: u32,
    /// `aux_action` bits (6.13+; `__reserved_3` before): must be zero here.
    pub aux_action: u32,
    /// Value returned in `si_perf_data` with [`AttrFlags::SIGTRAP`].
    pub sig_data: u64,
    /// `config3`: extension of `config2`.
    pub config3: u64,
}

impl PerfEventAttr {
    /// An all-zero attr of type `type_` and selector `config`, with `size` set to
    /// the size of the struct (so the kernel reads `config2`).
    pub fn new(type_: u32, config: u64) -> PerfEventAttr {
        PerfEventAttr {
            type_,
            size: std::mem::size_of::<PerfEventAttr>() as u32,
            config,
            sample_period: 0,
            sample_type: 0,
            read_format: 0,
            flags: AttrFlags::empty(),
            wakeup: 0,
            bp_type: 0,
            config1: 0,
            config2: 0,
            branch_sample_type: 0,
            sample_regs_user: 0,
            sample_stack_user: 0,
            clockid: 0,
            sample_regs_intr: 0,
            aux_watermark: 0,
            sample_max_stack: 0,
            reserved_2: 0,
            aux_sample_size: 0,
            aux_action: 0,
            sig_data: 0,
            config3: 0,
        }
    }
}

/// perf_event_open(2) with PERF_FLAG_FD_CLOEXEC always added to `flags`.
pub fn perf_event_open(
    attr: &PerfEventAttr,
    pid: i32,
    cpu: i32,
    group_fd: i32,
    flags: u64,
) -> Result<OwnedFd, PerfError> {
    raw_perf_event_open(attr, pid, cpu, group_fd, flags, &AttrNames::default()).map_err(|errno| {
        PerfError::from_open(errno, PerfTarget::Event { type_: attr.type_, config: attr.config, pid })
    })
}

/// What some numbers of an attr stand for, so that `--explain` can show them:
/// the name of the PMU whose dynamic type is in `type`, and the string `config1`
/// points to (checked against the pointer before it is shown).
#[derive(Clone, Copy, Debug, Default)]
pub struct AttrNames<'a> {
    /// The PMU named in sysfs (`uprobe`, `kprobe`), when `type` is its number.
    pub pmu: Option<&'a str>,
    /// The NUL-terminated string whose address is in `config1`.
    pub config1: Option<&'a CStr>,
}

/// The attr the way `--explain` shows it: type, size and config always, then
/// every other field that is not zero.
/// `{type=uprobe(8), size=136, config=0 (entry), config1="/bin/ls", config2=0x4a20}`.
pub fn describe_attr(attr: &PerfEventAttr, names: &AttrNames<'_>) -> String {
    let mut fields = vec![
        format!("type={}", type_text(attr.type_, names.pmu)),
        format!("size={}", attr.size),
        format!("config={}", config_text(attr, names.pmu)),
    ];
    let mut push = |name: &str, v: u64, text: String| {
        if v != 0 {
            fields.push(format!("{name}={text}"));
        }
    };
    push("sample_period", attr.sample_period, attr.sample_period.to_string());
    push("sample_type", attr.sample_type, sample_type_text(attr.sample_type));
    push("read_format", attr.read_format, format!("{:#x}", attr.read_format));
    let flag_names: Vec<&str> = attr.flags.iter_names().map(|(n, _)| n).collect();
    push("flags", attr.flags.bits(), flag_names.join("|"));
    let wakeup = if attr.flags.contains(AttrFlags::WATERMARK) { "wakeup_watermark" } else { "wakeup_events" };
    push(wakeup, attr.wakeup.into(), attr.wakeup.to_string());
    push("bp_type", attr.bp_type.into(), attr.bp_type.to_string());
    let config1 = match names.config1 {
        Some(s) if s.as_ptr() as u64 == attr.config1 => explain::quote(s.to_bytes()),
        _ => format!("{:#x}", attr.config1),
    };
    push("config1", attr.config1, config1);
    push("config2", attr.config2, format!("{:#x}", attr.config2));
    push("branch_sample_type", attr.branch_sample_type, format!("{:#x}", attr.branch_sample_type));
    push("sample_regs_user", attr.sample_regs_user, format!("{:#x}", attr.sample_regs_user));
    push("sample_stack_user", attr.sample_stack_user.into(), attr.sample_stack_user.to_string());
    push("clockid", attr.clockid as u32 as u64, attr.clockid.to_string());
    push("sample_regs_intr", attr.sample_regs_intr, format!("{:#x}", attr.sample_regs_intr));
    push("aux_watermark", attr.aux_watermark.into(), attr.aux_watermark.to_string());
    push("sample_max_stack", attr.sample_max_stack.into(), attr.sample_max_stack.to_string());
    push("aux_sample_size", attr.aux_sample_size.into(), attr.aux_sample_size.to_string());
    push("aux_action", attr.aux_action.into(), format!("{:#x}", attr.aux_action));
    push("sig_data", attr.sig_data, format!("{:#x}", attr.sig_data));
    push("config3", attr.config3, format!("{:#x}", attr.config3));
    format!("{{{}}}", fields.join(", "))
}

/// `PERF_TYPE_TRACEPOINT(2)`, `uprobe(8)`, or the bare number.
fn type_text(type_: u32, pmu: Option<&str>) -> String {
    let fixed = match type_ {
        PERF_TYPE_HARDWARE => Some("PERF_TYPE_HARDWARE"),
        PERF_TYPE_SOFTWARE => Some("PERF_TYPE_SOFTWARE"),
        PERF_TYPE_TRACEPOINT => Some("PERF_TYPE_TRACEPOINT"),
        PERF_TYPE_HW_CACHE => Some("PERF_TYPE_HW_CACHE"),
        PERF_TYPE_RAW => Some("PERF_TYPE_RAW"),
        PERF_TYPE_BREAKPOINT => Some("PERF_TYPE_BREAKPOINT"),
        _ => None,
    };
    match fixed.or(pmu) {
        Some(name) => format!("{name}({type_})"),
        None => type_.to_string(),
    }
}

/// The config of the attr: a software event's name, a probe PMU's entry/return
/// bit, or the number (a tracepoint id).
fn config_text(attr: &PerfEventAttr, pmu: Option<&str>) -> String {
    match (attr.type_, attr.config, pmu) {
        (PERF_TYPE_SOFTWARE, PERF_COUNT_SW_BPF_OUTPUT, _) => {
            format!("PERF_COUNT_SW_BPF_OUTPUT({})", attr.config)
        }
        (PERF_TYPE_SOFTWARE, PERF_COUNT_SW_DUMMY, _) => format!("PERF_COUNT_SW_DUMMY({})", attr.config),
        (_, 0, Some(_)) => "0 (entry)".into(),
        (_, c, Some(_)) => format!("{c:#x} (return probe: the retprobe bit)"),
        (_, c, None) => c.to_string(),
    }
}

/// `PERF_SAMPLE_RAW`, or the bits in hex.
fn sample_type_text(bits: u64) -> String {
    match bits {
        PERF_SAMPLE_RAW => "PERF_SAMPLE_RAW".into(),
        other => format!("{other:#x}"),
    }
}

/// `PERF_FLAG_FD_CLOEXEC`, or the bits in hex.
fn open_flags_text(flags: u64) -> String {
    match flags {
        PERF_FLAG_FD_CLOEXEC => "PERF_FLAG_FD_CLOEXEC".into(),
        other => format!("{other:#x}"),
    }
}

/// The syscall itself; the errno is translated by the callers, which know what
/// was being opened.
fn raw_perf_event_open(
    attr: &PerfEventAttr,
    pid: i32,
    cpu: i32,
    group_fd: i32,
    flags: u64,
    names: &AttrNames<'_>,
) -> Result<OwnedFd, Errno> {
    let flags = flags | PERF_FLAG_FD_CLOEXEC;
    // SAFETY: `attr` is a valid, initialised `struct perf_event_attr` whose `size`
    // field does not exceed its real size, so the kernel reads only memory we own;
    // any pointer stored in config1 is the caller's and outlives this call. The
    // other arguments are plain integers.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            attr as *const PerfEventAttr,
            pid,
            cpu,
            group_fd,
            flags as libc::c_ulong,
        )
    };
    let result = if ret < 0 { Err(Errno::last()) } else { Ok(ret) };
    explain::syscall(
        || {
            format!(
                "perf_event_open({}, pid={pid}, cpu={cpu}, group_fd={group_fd}, flags={})",
                describe_attr(attr, names),
                open_flags_text(flags)
            )
        },
        result.map(|fd| fd.to_string()).map_err(|e| e as i32),
    );
    let fd = i32::try_from(result?).map_err(|_| Errno::EOVERFLOW)?;
    // SAFETY: the kernel returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens an event described by `attr`, naming `target` in errors.
fn open_for(
    attr: &PerfEventAttr,
    pid: i32,
    cpu: i32,
    names: &AttrNames<'_>,
    target: impl FnOnce() -> PerfTarget,
) -> Result<OwnedFd, PerfError> {
    raw_perf_event_open(attr, pid, cpu, -1, 0, names).map_err(|errno| PerfError::from_open(errno, target()))
}

/// The sysfs directory of a PMU, or NoPmu for a name that is not one component.
fn pmu_dir(pmu: &str) -> Result<PathBuf, PerfError> {
    if pmu.is_empty() || pmu.contains('/') || pmu.contains('\0') || pmu == "." || pmu == ".." {
        return Err(PerfError::NoPmu(pmu.to_string()));
    }
    Ok(Path::new(EVENT_SOURCE_DEVICES).join(pmu))
}

thread_local! {
    /// The PMU files this thread has read: a PMU's type and format do not change
    /// while it runs, and a session opens many probes of one PMU. Per thread, so
    /// that each explained run (and each test) shows its own first read.
    static PMU_FILES: std::cell::RefCell<Vec<(PathBuf, String)>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Reads a sysfs file of `pmu` (once per thread); a missing PMU directory is NoPmu.
fn read_pmu_file(pmu: &str, file: &str) -> Result<(PathBuf, String), PerfError> {
    let dir = pmu_dir(pmu)?;
    let path = dir.join(file);
    let known = PMU_FILES.with(|f| f.borrow().iter().find(|(p, _)| *p == path).map(|(_, t)| t.clone()));
    if let Some(text) = known {
        return Ok((path, text));
    }
    let read = std::fs::read_to_string(&path);
    explain::read_file(&path, &read);
    match read {
        Ok(text) => {
            PMU_FILES.with(|f| f.borrow_mut().push((path.clone(), text.clone())));
            Ok((path, text))
        }
        Err(_) if !dir.is_dir() => Err(PerfError::NoPmu(pmu.to_string())),
        Err(err) => Err(PerfError::Io { path, err }),
    }
}

/// The dynamic type number of a PMU (`/sys/bus/event_source/devices/<pmu>/type`).
pub fn pmu_type(pmu: &str) -> Result<u32, PerfError> {
    let (path, text) = read_pmu_file(pmu, "type")?;
    text.trim().parse().map_err(|_| PerfError::PmuFormat { path, text })
}

/// The bit of `config` that makes a probe PMU event a return probe, from
/// `format/retprobe` (`config:0`).
pub fn pmu_retprobe_bit(pmu: &str) -> Result<u32, PerfError> {
    let (path, text) = read_pmu_file(pmu, "format/retprobe")?;
    parse_config_bit(&text).ok_or(PerfError::PmuFormat { path, text })
}

/// Parses a one-bit sysfs format spec `config:N` (N < 64).
pub fn parse_config_bit(text: &str) -> Option<u32> {
    let bit: u32 = text.trim().strip_prefix("config:")?.parse().ok()?;
    (bit < 64).then_some(bit)
}

/// A NUL-terminated copy of `bytes`, for config1.
fn c_string(bytes: &[u8], what: &str) -> Result<CString, PerfError> {
    if bytes.is_empty() {
        return Err(PerfError::InvalidArgument(format!("empty {what}")));
    }
    CString::new(bytes).map_err(|_| PerfError::InvalidArgument(format!("the {what} contains a NUL byte")))
}

/// The attr of a probe PMU event: `config1` points at `name`, `config2` is the offset.
/// Opened disabled, as every probe event is: it fires only once it is enabled,
/// after its program is set (see [`set_bpf_and_enable`]).
fn probe_attr(pmu: &str, name: &CString, offset: u64, retprobe: bool) -> Result<PerfEventAttr, PerfError> {
    let mut attr = PerfEventAttr::new(pmu_type(pmu)?, 0);
    attr.flags = AttrFlags::DISABLED;
    if retprobe {
        attr.config = 1 << pmu_retprobe_bit(pmu)?;
    }
    attr.config1 = name.as_ptr() as u64;
    attr.config2 = offset;
    Ok(attr)
}

/// A uprobe (or uretprobe) at `offset` bytes into the file `binary`. With a pid the
/// breakpoint is installed in that process only (use cpu -1); with pid -1, in every
/// process (use a cpu, e.g. 0).
pub fn open_uprobe(
    binary: &Path,
    offset: u64,
    retprobe: bool,
    pid: i32,
    cpu: i32,
) -> Result<OwnedFd, PerfError> {
    let path = c_string(binary.as_os_str().as_bytes(), "binary path")?;
    let attr = probe_attr("uprobe", &path, offset, retprobe)?;
    // `path` lives until the end of this function: config1 stays valid during the syscall.
    let names = AttrNames { pmu: Some("uprobe"), config1: Some(&path) };
    open_for(&attr, pid, cpu, &names, || PerfTarget::Uprobe { binary: binary.into(), offset, retprobe, pid })
}

/// A kprobe (or kretprobe) on kernel function `func` plus `offset`, for every task
/// (pid -1, cpu 0: a BPF program attached to it runs on every CPU).
pub fn open_kprobe(func: &str, offset: u64, retprobe: bool) -> Result<OwnedFd, PerfError> {
    let name = c_string(func.as_bytes(), "kernel function name")?;
    let attr = probe_attr("kprobe", &name, offset, retprobe)?;
    // `name` lives until the end of this function: config1 stays valid during the syscall.
    let names = AttrNames { pmu: Some("kprobe"), config1: Some(&name) };
    open_for(&attr, -1, 0, &names, || PerfTarget::Kprobe { func: func.into(), offset, retprobe })
}

/// A tracepoint by its tracefs id, opened disabled. For a BPF program use pid -1, cpu 0.
pub fn open_tracepoint(id: u32, pid: i32, cpu: i32) -> Result<OwnedFd, PerfError> {
    let mut attr = PerfEventAttr::new(PERF_TYPE_TRACEPOINT, u64::from(id));
    attr.flags = AttrFlags::DISABLED;
    open_for(&attr, pid, cpu, &AttrNames::default(), || PerfTarget::Tracepoint { id, pid })
}

/// The attr of the BPF-output event behind a per-CPU ring: every
/// bpf_perf_event_output() becomes one raw sample; the reader is woken after
/// `wakeup_watermark_bytes` bytes (or every sample when 0).
pub fn bpf_output_attr(wakeup_watermark_bytes: u32) -> PerfEventAttr {
    let mut attr = PerfEventAttr::new(PERF_TYPE_SOFTWARE, PERF_COUNT_SW_BPF_OUTPUT);
    attr.sample_type = PERF_SAMPLE_RAW;
    attr.sample_period = 1;
    if wakeup_watermark_bytes == 0 {
        attr.wakeup = 1;
    } else {
        attr.flags |= AttrFlags::WATERMARK;
        attr.wakeup = wakeup_watermark_bytes;
    }
    attr
}

/// Opens the BPF-output event of one CPU (pid -1).
pub fn open_bpf_output(cpu: u32, wakeup_watermark_bytes: u32) -> Result<OwnedFd, PerfError> {
    let cpu_arg =
        i32::try_from(cpu).map_err(|_| PerfError::InvalidArgument(format!("CPU {cpu} is out of range")))?;
    let attr = bpf_output_attr(wakeup_watermark_bytes);
    open_for(&attr, -1, cpu_arg, &AttrNames::default(), || PerfTarget::BpfOutput { cpu })
}

/// An ioctl on a perf event fd that takes an integer argument.
fn perf_ioctl(
    fd: BorrowedFd<'_>,
    request: libc::Ioctl,
    arg: libc::c_int,
    name: &'static str,
) -> Result<(), PerfError> {
    // SAFETY: `fd` is an open descriptor (it is borrowed), and the three requests
    // used here (ENABLE, DISABLE, SET_BPF) take an integer by value, not a pointer.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), request, arg) };
    let result = if rc == -1 { Err(Errno::last()) } else { Ok(rc) };
    explain::syscall(
        || format!("ioctl({}, {name}, {arg})", fd.as_raw_fd()),
        result.map(|rc| rc.to_string()).map_err(|e| e as i32),
    );
    result.map(|_| ()).map_err(|errno| PerfError::Ioctl { request: name, errno })
}

/// Starts counting/sampling (PERF_EVENT_IOC_ENABLE).
pub fn enable(fd: BorrowedFd<'_>) -> Result<(), PerfError> {
    perf_ioctl(fd, PERF_EVENT_IOC_ENABLE, 0, "PERF_EVENT_IOC_ENABLE")
}

/// Stops counting/sampling (PERF_EVENT_IOC_DISABLE).
pub fn disable(fd: BorrowedFd<'_>) -> Result<(), PerfError> {
    perf_ioctl(fd, PERF_EVENT_IOC_DISABLE, 0, "PERF_EVENT_IOC_DISABLE")
}

/// Attaches the BPF program `prog_fd` to the event `fd`, then enables the event.
pub fn set_bpf_and_enable(fd: BorrowedFd<'_>, prog_fd: BorrowedFd<'_>) -> Result<(), PerfError> {
    perf_ioctl(fd, PERF_EVENT_IOC_SET_BPF, prog_fd.as_raw_fd(), "PERF_EVENT_IOC_SET_BPF")?;
    enable(fd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::mem::offset_of;
    use std::os::fd::AsFd;

    #[test]
    fn attr_layout_matches_the_uapi_header() {
        assert_eq!(std::mem::size_of::<PerfEventAttr>(), PERF_ATTR_SIZE_VER8 as usize);
        assert_eq!(PerfEventAttr::new(1, 2).size, 136);
        let offsets = [
            (offset_of!(PerfEventAttr, type_), 0),
            (offset_of!(PerfEventAttr, size), 4),
            (offset_of!(PerfEventAttr, config), 8),
            (offset_of!(PerfEventAttr, sample_period), 16),
            (offset_of!(PerfEventAttr, sample_type), 24),
            (offset_of!(PerfEventAttr, read_format), 32),
            (offset_of!(PerfEventAttr, flags), 40),
            (offset_of!(PerfEventAttr, wakeup), 48),
            (offset_of!(PerfEventAttr, bp_type), 52),
            (offset_of!(PerfEventAttr, config1), 56),
            (offset_of!(PerfEventAttr, config2), 64),
            (offset_of!(PerfEventAttr, branch_sample_type), 72),
            (offset_of!(PerfEventAttr, sample_regs_user), 80),
            (offset_of!(PerfEventAttr, sample_stack_user), 88),
            (offset_of!(PerfEventAttr, clockid), 92),
            (offset_of!(PerfEventAttr, sample_regs_intr), 96),
            (offset_of!(PerfEventAttr, aux_watermark), 104),
            (offset_of!(PerfEventAttr, sample_max_stack), 108),
            (offset_of!(PerfEventAttr, aux_sample_size), 112),
            (offset_of!(PerfEventAttr, aux_action), 116),
            (offset_of!(PerfEventAttr, sig_data), 120),
            (offset_of!(PerfEventAttr, config3), 128),
        ];
        for (i, (got, want)) in offsets.iter().enumerate() {
            assert_eq!(got, want, "field #{i}");
        }
        assert!(offset_of!(PerfEventAttr, config2) + 8 <= PERF_ATTR_SIZE_VER1 as usize);
        assert!(offset_of!(PerfEventAttr, sample_max_stack) + 4 <= PERF_ATTR_SIZE_VER5 as usize);
    }

    #[test]
    fn flag_bits_match_the_uapi_header() {
        // Values printed by a C program setting each bit field in the header's struct.
        assert_eq!(AttrFlags::WATERMARK.bits(), 0x4000);
        assert_eq!(AttrFlags::USE_CLOCKID.bits(), 0x200_0000);
        assert_eq!(AttrFlags::SIGTRAP.bits(), 0x20_0000_0000);
        assert_eq!((AttrFlags::PRECISE_IP_LOW | AttrFlags::PRECISE_IP_HIGH).bits(), 0x1_8000);
        assert_eq!((AttrFlags::DISABLED | AttrFlags::INHERIT).bits(), 3);
        assert_eq!(AttrFlags::all().bits(), (1u64 << 38) - 1);
    }

    #[test]
    fn ioctl_numbers_match_the_ioc_macros() {
        // Computed independently with nix's _IO/_IOW encoders.
        assert_eq!(PERF_EVENT_IOC_ENABLE, nix::request_code_none!(b'$', 0));
        assert_eq!(PERF_EVENT_IOC_DISABLE, nix::request_code_none!(b'$', 1));
        assert_eq!(PERF_EVENT_IOC_SET_BPF, nix::request_code_write!(b'$', 8, std::mem::size_of::<u32>()));
    }

    #[test]
    fn bpf_output_attr_fields() {
        let a = bpf_output_attr(4096);
        assert_eq!((a.type_, a.config, a.sample_type, a.sample_period), (1, 10, 1 << 10, 1));
        assert_eq!((a.flags, a.wakeup), (AttrFlags::WATERMARK, 4096));
        let b = bpf_output_attr(0);
        assert_eq!((b.flags, b.wakeup), (AttrFlags::empty(), 1));
    }

    #[test]
    fn config_bits() {
        assert_eq!(parse_config_bit("config:0\n"), Some(0));
        assert_eq!(parse_config_bit("config:63"), Some(63));
        assert_eq!(parse_config_bit("config:64"), None);
        assert_eq!(parse_config_bit("config1:0"), None);
        assert_eq!(parse_config_bit("config:0-1"), None);
        assert_eq!(parse_config_bit(""), None);
        assert_eq!(parse_config_bit("config:99999999999999999999"), None);
    }

    #[test]
    fn pmus_on_this_machine() {
        let direct = std::fs::read_to_string("/sys/bus/event_source/devices/uprobe/type").unwrap();
        assert_eq!(pmu_type("uprobe").unwrap(), direct.trim().parse::<u32>().unwrap());
        // kernel/events/core.c declares the retprobe format of both probe PMUs as config:0.
        assert_eq!(pmu_retprobe_bit("uprobe").unwrap(), 0);
        assert_eq!(pmu_type("software").unwrap(), PERF_TYPE_SOFTWARE);
        assert_eq!(pmu_type("tracepoint").unwrap(), PERF_TYPE_TRACEPOINT);
        for bad in ["no_such_pmu", "", "..", "uprobe/format"] {
            assert!(matches!(pmu_type(bad), Err(PerfError::NoPmu(p)) if p == bad), "{bad}");
        }
        assert!(matches!(pmu_retprobe_bit("no_such_pmu"), Err(PerfError::NoPmu(_))));
        // The software PMU has no retprobe format: an Io error naming the file.
        match pmu_retprobe_bit("software") {
            Err(PerfError::Io { path, .. }) => {
                assert_eq!(path, Path::new("/sys/bus/event_source/devices/software/format/retprobe"))
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn kprobes_without_a_kprobe_pmu() {
        let has_pmu = Path::new("/sys/bus/event_source/devices/kprobe").is_dir();
        match open_kprobe("vfs_open", 0, false) {
            Err(PerfError::NoPmu(p)) => assert!(!has_pmu && p == "kprobe"),
            Ok(_) => assert!(has_pmu),
            Err(e) => panic!("unexpected {e}"),
        }
        if has_pmu {
            let err = open_kprobe("no_such_function_xyz", 0, false).unwrap_err();
            assert_eq!(err.errno(), Some(Errno::ENOENT), "{err}");
        }
        assert!(matches!(open_kprobe("", 0, false), Err(PerfError::InvalidArgument(_))));
    }

    #[test]
    fn uprobe_errors() {
        let missing = Path::new("/nonexistent/trace-test-binary");
        match open_uprobe(missing, 0, false, -1, 0) {
            Err(PerfError::NotFound(PerfTarget::Uprobe { binary, offset: 0, retprobe: false, pid: -1 })) => {
                assert_eq!(binary, missing)
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(
            open_uprobe(Path::new("/bin\0/ls"), 0, false, -1, 0),
            Err(PerfError::InvalidArgument(_))
        ));
        // A directory is not a regular file.
        let err = open_uprobe(Path::new("/"), 0, false, -1, 0).unwrap_err();
        assert!(matches!(err, PerfError::Open { errno: Errno::EINVAL, .. }), "{err}");
    }

    #[inline(never)]
    #[no_mangle]
    pub extern "C" fn trace_perf_test_uprobe_target(x: u64) -> u64 {
        std::hint::black_box(x.wrapping_mul(3).wrapping_add(1))
    }

    /// File offset of a function symbol of the running test binary.
    fn own_function_offset(name: &str) -> (PathBuf, u64) {
        let exe = std::env::current_exe().unwrap();
        let bytes = std::fs::read(&exe).unwrap();
        let elf = goblin::elf::Elf::parse(&bytes).unwrap();
        let sym = elf
            .syms
            .iter()
            .find(|s| elf.strtab.get_at(s.st_name) == Some(name))
            .unwrap_or_else(|| panic!("no symbol {name} in {}", exe.display()));
        let seg = elf
            .program_headers
            .iter()
            .find(|p| {
                p.p_type == goblin::elf::program_header::PT_LOAD
                    && p.is_executable()
                    && (p.p_vaddr..p.p_vaddr + p.p_memsz).contains(&sym.st_value)
            })
            .unwrap();
        (exe, sym.st_value - seg.p_vaddr + seg.p_offset)
    }

    fn read_count(fd: OwnedFd) -> u64 {
        let mut buf = [0u8; 8];
        std::fs::File::from(fd).read_exact(&mut buf).unwrap();
        u64::from_ne_bytes(buf)
    }

    /// A counting uprobe on this thread hits exactly as often as the function runs:
    /// proof that config1 (path) and config2 (offset) reach the kernel.
    #[test]
    fn uprobe_counts_calls_of_a_function() {
        let (exe, offset) = own_function_offset("trace_perf_test_uprobe_target");
        let entry = open_uprobe(&exe, offset, false, 0, -1).unwrap_or_else(|e| panic!("{e}"));
        let ret = open_uprobe(&exe, offset, true, 0, -1).unwrap_or_else(|e| panic!("{e}"));
        // Opened disabled: calls before the enable are not counted.
        assert_eq!(trace_perf_test_uprobe_target(1), 4);
        enable(entry.as_fd()).unwrap();
        enable(ret.as_fd()).unwrap();
        let mut sum = 0u64;
        for i in 0..17 {
            sum = sum.wrapping_add(trace_perf_test_uprobe_target(i));
        }
        assert_eq!(sum, (0..17).map(|i| i * 3 + 1).sum::<u64>());
        assert_eq!(read_count(entry), 17);
        assert_eq!(read_count(ret), 17);
    }

    #[test]
    fn tracepoint_and_bpf_ioctls() {
        let t = crate::tracefs::Tracefs::open().unwrap_or_else(|e| panic!("{e}"));
        let id = t.event_id("syscalls", "sys_enter_getpid").unwrap();
        let fd = open_tracepoint(id, -1, 0).unwrap_or_else(|e| panic!("{e}"));
        let not_a_prog = std::fs::File::open("/dev/null").unwrap();
        match set_bpf_and_enable(fd.as_fd(), not_a_prog.as_fd()) {
            Err(PerfError::Ioctl { request: "PERF_EVENT_IOC_SET_BPF", errno }) => {
                assert_eq!(errno, Errno::EINVAL)
            }
            other => panic!("unexpected {other:?}"),
        }
        enable(fd.as_fd()).unwrap();
        disable(fd.as_fd()).unwrap();
        // kernel/trace/trace_event_perf.c answers an unknown id with EINVAL.
        let err = open_tracepoint(u32::MAX - 1, -1, 0).unwrap_err();
        assert!(matches!(err, PerfError::Open { errno: Errno::EINVAL, .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "cannot open the tracepoint with id 4294967294: EINVAL: Invalid argument; no tracepoint has \
             this id (it comes from tracefs events/<category>/<name>/id)"
        );
    }

    #[test]
    fn bpf_output_opens_on_every_online_cpu() {
        for cpu in super::super::online_cpus().unwrap() {
            open_bpf_output(cpu, 4096).unwrap_or_else(|e| panic!("CPU {cpu}: {e}"));
        }
        let bad = super::super::possible_cpus().unwrap().last().unwrap() + 1000;
        let err = open_bpf_output(bad, 0).unwrap_err();
        assert_eq!(err.errno(), Some(Errno::EINVAL), "{err}");
    }

    #[test]
    fn calls_are_explained_with_their_errors() {
        // Read here, not with pmu_type: that would keep it for this thread, and the
        // recording below must show the read.
        let uprobe: u32 = std::fs::read_to_string("/sys/bus/event_source/devices/uprobe/type")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let rec = crate::explain::record();
        assert!(open_uprobe(Path::new("/"), 0x10, false, -1, 0).is_err());
        let t = crate::tracefs::Tracefs::open().unwrap_or_else(|e| panic!("{e}"));
        let id = t.event_id("syscalls", "sys_enter_getpid").unwrap();
        let fd = open_tracepoint(id, -1, 0).unwrap();
        let not_a_prog = std::fs::File::open("/dev/null").unwrap();
        assert!(set_bpf_and_enable(fd.as_fd(), not_a_prog.as_fd()).is_err());
        enable(fd.as_fd()).unwrap();
        crate::explain::disable();
        let (fd, null) = (fd.as_raw_fd(), not_a_prog.as_raw_fd());
        let id_path = t.root().join("events/syscalls/sys_enter_getpid/id");
        assert_eq!(
            rec.text(),
            format!(
                "read(\"/sys/bus/event_source/devices/uprobe/type\") = \"{uprobe}\\n\"\n\
                 perf_event_open({{type=uprobe({uprobe}), size=136, config=0 (entry), flags=DISABLED, config1=\"/\", config2=0x10}}, \
                 pid=-1, cpu=0, group_fd=-1, flags=PERF_FLAG_FD_CLOEXEC) = -1 EINVAL (Invalid argument)\n\
                 read(\"{}\") = \"{id}\\n\"\n\
                 perf_event_open({{type=PERF_TYPE_TRACEPOINT(2), size=136, config={id}, flags=DISABLED}}, pid=-1, cpu=0, \
                 group_fd=-1, flags=PERF_FLAG_FD_CLOEXEC) = {fd}\n\
                 ioctl({fd}, PERF_EVENT_IOC_SET_BPF, {null}) = -1 EINVAL (Invalid argument)\n\
                 ioctl({fd}, PERF_EVENT_IOC_ENABLE, 0) = 0\n",
                id_path.display()
            )
        );
    }

    #[test]
    fn attrs_are_described_field_by_field() {
        let path = CString::new("/bin/true").unwrap();
        let mut attr = PerfEventAttr::new(8, 1);
        attr.config1 = path.as_ptr() as u64;
        attr.config2 = 0x4a20;
        let names = AttrNames { pmu: Some("uprobe"), config1: Some(&path) };
        assert_eq!(
            describe_attr(&attr, &names),
            "{type=uprobe(8), size=136, config=0x1 (return probe: the retprobe bit), config1=\"/bin/true\", \
             config2=0x4a20}"
        );
        // Without the string, the pointer; without the PMU name, the numbers.
        assert_eq!(
            describe_attr(&attr, &AttrNames::default()),
            format!("{{type=8, size=136, config=1, config1={:#x}, config2=0x4a20}}", attr.config1)
        );
        assert_eq!(
            describe_attr(&bpf_output_attr(4096), &AttrNames::default()),
            "{type=PERF_TYPE_SOFTWARE(1), size=136, config=PERF_COUNT_SW_BPF_OUTPUT(10), sample_period=1, \
             sample_type=PERF_SAMPLE_RAW, flags=WATERMARK, wakeup_watermark=4096}"
        );
        assert_eq!(
            describe_attr(&bpf_output_attr(0), &AttrNames::default()),
            "{type=PERF_TYPE_SOFTWARE(1), size=136, config=PERF_COUNT_SW_BPF_OUTPUT(10), sample_period=1, \
             sample_type=PERF_SAMPLE_RAW, wakeup_events=1}"
        );
    }

    #[test]
    fn esrch_for_a_missing_process() {
        let (exe, offset) = own_function_offset("trace_perf_test_uprobe_target");
        // pid_max is at most 2^22: this pid cannot exist.
        let err = open_uprobe(&exe, offset, false, (1 << 22) + 1, -1).unwrap_err();
        assert!(matches!(err, PerfError::NoProcess { pid } if pid == (1 << 22) + 1), "{err}");
    }
}
