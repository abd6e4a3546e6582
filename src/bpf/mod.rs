//! The bpf(2) loader: maps and programs, nothing else.
//!
//! Every bpf(2) call of the tracer goes through [`sys_bpf`], the one place that
//! touches the syscall.

use std::ffi::CString;
use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use crate::bpf_asm::Insn;
use crate::kernel::KernelVersion;

// bpf(2) commands, enum bpf_cmd in include/uapi/linux/bpf.h.
const BPF_MAP_CREATE: u32 = 0;
const BPF_MAP_LOOKUP_ELEM: u32 = 1;
const BPF_MAP_UPDATE_ELEM: u32 = 2;
const BPF_MAP_DELETE_ELEM: u32 = 3;
const BPF_PROG_LOAD: u32 = 5;

/// BPF_ANY: create or update (include/uapi/linux/bpf.h).
pub const BPF_ANY: u64 = 0;

/// enum bpf_map_type in include/uapi/linux/bpf.h (the ones the tracer uses).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum MapType {
    Hash = 1,
    Array = 2,
    PerfEventArray = 4,
    PercpuArray = 6,
    StackTrace = 7,
}

impl MapType {
    pub fn name(self) -> &'static str {
        match self {
            MapType::Hash => "HASH",
            MapType::Array => "ARRAY",
            MapType::PerfEventArray => "PERF_EVENT_ARRAY",
            MapType::PercpuArray => "PERCPU_ARRAY",
            MapType::StackTrace => "STACK_TRACE",
        }
    }
}

/// enum bpf_prog_type in include/uapi/linux/bpf.h. KPROBE serves kprobes and uprobes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum ProgType {
    Kprobe = 2,
    Tracepoint = 5,
}

impl ProgType {
    pub fn name(self) -> &'static str {
        match self {
            ProgType::Kprobe => "KPROBE",
            ProgType::Tracepoint => "TRACEPOINT",
        }
    }
}

/// The `BPF_MAP_CREATE` part of union bpf_attr (include/uapi/linux/bpf.h).
#[repr(C)]
#[derive(Default)]
struct MapCreateAttr {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    inner_map_fd: u32,
    numa_node: u32,
    map_name: [u8; 16],
}

/// The `BPF_MAP_*_ELEM` part of union bpf_attr.
#[repr(C)]
#[derive(Default)]
struct MapElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

/// The `BPF_PROG_LOAD` part of union bpf_attr, up to expected_attach_type.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// Errors of the loader.
#[derive(Debug)]
pub enum BpfError {
    /// A bpf(2) command failed.
    Syscall { what: String, err: io::Error },
    /// The verifier refused a program; the log says why.
    Verifier { program: String, err: io::Error, log: String },
}

impl fmt::Display for BpfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BpfError::Syscall { what, err } => {
                write!(f, "{what} failed: {err}")?;
                match err.raw_os_error() {
                    Some(libc::EPERM) | Some(libc::EACCES) => write!(
                        f,
                        "\n  bpf(2) needs root (or CAP_BPF and CAP_PERFMON): run trace with sudo. \
                         If you are root, check /proc/sys/kernel/unprivileged_bpf_disabled and \
                         kernel lockdown (/sys/kernel/security/lockdown)."
                    ),
                    Some(libc::ENOSYS) => {
                        write!(f, "\n  this kernel was built without BPF (CONFIG_BPF_SYSCALL)")
                    }
                    _ => Ok(()),
                }
            }
            BpfError::Verifier { program, err, log } => write!(
                f,
                "the kernel's verifier rejected the program for {program} ({err}).\n\
                 This is a bug in trace, not in what you typed; please report it with this log:\n{log}"
            ),
        }
    }
}

impl std::error::Error for BpfError {}

/// The single bpf(2) entry point.
fn sys_bpf<T>(cmd: u32, attr: &mut T) -> io::Result<i64> {
    // SAFETY: `attr` is a live, initialised #[repr(C)] value of the layout the
    // command expects (see the attr structs above), and we pass its exact size, so
    // the kernel reads and writes only within it. Pointers stored inside it are
    // kept alive by the callers for the duration of the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd as libc::c_long,
            attr as *mut T as *mut libc::c_void,
            std::mem::size_of::<T>() as libc::c_long,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Wraps a file descriptor returned by bpf(2).
fn owned_fd(ret: i64) -> OwnedFd {
    // SAFETY: bpf(2) returned a new descriptor that nothing else owns.
    unsafe { OwnedFd::from_raw_fd(ret as RawFd) }
}

fn name16(name: &str) -> [u8; 16] {
    // The kernel accepts [A-Za-z0-9_.] and needs a NUL: keep 15 bytes.
    let mut out = [0u8; 16];
    for (o, c) in out.iter_mut().zip(name.bytes().take(15)) {
        *o = if c.is_ascii_alphanumeric() || c == b'.' { c } else { b'_' };
    }
    out
}

/// A BPF map; closing it (drop) frees it once no program uses it.
#[derive(Debug)]
pub struct Map {
    fd: OwnedFd,
    pub map_type: MapType,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub name: String,
}

impl Map {
    /// BPF_MAP_CREATE.
    pub fn create(
        map_type: MapType,
        key_size: u32,
        value_size: u32,
        max_entries: u32,
        name: &str,
    ) -> Result<Map, BpfError> {
        let mut attr = MapCreateAttr {
            map_type: map_type as u32,
            key_size,
            value_size,
            max_entries,
            map_name: name16(name),
            ..Default::default()
        };
        let ret = sys_bpf(BPF_MAP_CREATE, &mut attr).map_err(|err| BpfError::Syscall {
            what: format!("creating the BPF map `{name}` (bpf BPF_MAP_CREATE)"),
            err,
        })?;
        Ok(Map { fd: owned_fd(ret), map_type, key_size, value_size, max_entries, name: name.to_string() })
    }

    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    fn elem(&self, cmd: u32, key: &[u8], value: u64, flags: u64, what: &str) -> Result<(), BpfError> {
        assert_eq!(key.len(), self.key_size as usize, "key size of map {}", self.name);
        let mut attr = MapElemAttr {
            map_fd: self.fd.as_raw_fd() as u32,
            key: key.as_ptr() as u64,
            value,
            flags,
            ..Default::default()
        };
        sys_bpf(cmd, &mut attr)
            .map(|_| ())
            .map_err(|err| BpfError::Syscall { what: format!("{what} in the BPF map `{}`", self.name), err })
    }

    /// BPF_MAP_UPDATE_ELEM.
    pub fn update(&self, key: &[u8], value: &[u8], flags: u64) -> Result<(), BpfError> {
        assert_eq!(value.len(), self.value_size as usize, "value size of map {}", self.name);
        self.elem(BPF_MAP_UPDATE_ELEM, key, value.as_ptr() as u64, flags, "updating an element")
    }

    /// BPF_MAP_DELETE_ELEM; a missing key is not an error.
    pub fn delete(&self, key: &[u8]) -> Result<(), BpfError> {
        match self.elem(BPF_MAP_DELETE_ELEM, key, 0, 0, "deleting an element") {
            Err(BpfError::Syscall { err, .. }) if err.raw_os_error() == Some(libc::ENOENT) => Ok(()),
            other => other,
        }
    }

    /// BPF_MAP_LOOKUP_ELEM: Some(value) or None when the key is absent.
    pub fn lookup(&self, key: &[u8]) -> Result<Option<Vec<u8>>, BpfError> {
        self.lookup_sized(key, self.value_size as usize)
    }

    /// BPF_MAP_LOOKUP_ELEM on a per-CPU map: one value (padded to 8 bytes) per
    /// possible CPU, concatenated, as the kernel copies them out.
    pub fn lookup_percpu(&self, key: &[u8], possible_cpus: usize) -> Result<Option<Vec<u8>>, BpfError> {
        self.lookup_sized(key, (self.value_size as usize).next_multiple_of(8) * possible_cpus)
    }

    fn lookup_sized(&self, key: &[u8], size: usize) -> Result<Option<Vec<u8>>, BpfError> {
        let mut value = vec![0u8; size];
        match self.elem(BPF_MAP_LOOKUP_ELEM, key, value.as_mut_ptr() as u64, 0, "looking up an element") {
            Ok(()) => Ok(Some(value)),
            Err(BpfError::Syscall { err, .. }) if err.raw_os_error() == Some(libc::ENOENT) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl AsFd for Map {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// A loaded program; dropping it unloads it once nothing is attached.
#[derive(Debug)]
pub struct LoadedProgram {
    fd: OwnedFd,
}

impl AsFd for LoadedProgram {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl LoadedProgram {
    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Verifier log buffer: first size, and the most we grow it to on ENOSPC.
const LOG_SIZE_START: usize = 1 << 20;
const LOG_SIZE_MAX: usize = 1 << 26;
/// log_level 1: the verifier's instruction-by-instruction log.
const LOG_LEVEL_VERBOSE: u32 = 1;

/// BPF_PROG_LOAD. Loads without a log first (cheap); on failure loads again with
/// a log, growing the buffer on ENOSPC, so a rejection carries the verifier's words.
pub fn load_program(
    prog_type: ProgType,
    insns: &[Insn],
    name: &str,
    kernel: KernelVersion,
) -> Result<LoadedProgram, BpfError> {
    let bytes = crate::bpf_asm::encode(insns);
    let license = CString::new("GPL").expect("no NUL");
    let kern_version = if kernel.needs_kern_version() { kernel.code() } else { 0 };
    let attempt = |log: Option<&mut Vec<u8>>| {
        let mut attr = ProgLoadAttr {
            prog_type: prog_type as u32,
            insn_cnt: insns.len() as u32,
            insns: bytes.as_ptr() as u64,
            license: license.as_ptr() as u64,
            kern_version,
            prog_name: name16(name),
            ..Default::default()
        };
        if let Some(buf) = log {
            attr.log_level = LOG_LEVEL_VERBOSE;
            attr.log_size = buf.len() as u32;
            attr.log_buf = buf.as_mut_ptr() as u64;
        }
        // EAGAIN: the verifier was interrupted; try a few times.
        let mut tries = 0;
        loop {
            match sys_bpf(BPF_PROG_LOAD, &mut attr) {
                Err(e) if e.raw_os_error() == Some(libc::EAGAIN) && tries < 5 => tries += 1,
                other => return other,
            }
        }
    };
    let first = match attempt(None) {
        Ok(fd) => return Ok(LoadedProgram { fd: owned_fd(fd) }),
        Err(e) => e,
    };
    if matches!(first.raw_os_error(), Some(libc::EPERM) | Some(libc::ENOSYS)) {
        return Err(BpfError::Syscall { what: format!("loading the program for {name}"), err: first });
    }
    let mut size = LOG_SIZE_START;
    loop {
        let mut log = vec![0u8; size];
        match attempt(Some(&mut log)) {
            Ok(fd) => return Ok(LoadedProgram { fd: owned_fd(fd) }),
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) && size < LOG_SIZE_MAX => size *= 4,
            Err(err) => {
                let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
                let log = String::from_utf8_lossy(&log[..end]).into_owned();
                return Err(BpfError::Verifier { program: name.to_string(), err, log });
            }
        }
    }
}

/// Before 5.11 BPF memory counts against RLIMIT_MEMLOCK: raise it there. From
/// 5.11 the memory cgroup is charged instead and nothing is needed. A refusal
/// (EPERM without CAP_SYS_RESOURCE) is not fatal: small tracers fit the default.
/// Returns a warning to show, if any.
pub fn raise_memlock(kernel: KernelVersion) -> Option<String> {
    if !kernel.charges_memlock() {
        return None;
    }
    let unlimited = libc::rlimit { rlim_cur: libc::RLIM_INFINITY, rlim_max: libc::RLIM_INFINITY };
    // SAFETY: setrlimit reads a valid rlimit struct that lives across the call.
    let ret = unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &unlimited) };
    if ret == 0 {
        None
    } else {
        Some(format!(
            "could not raise RLIMIT_MEMLOCK ({}); kernel {kernel} charges BPF maps to it, \
             so loading may fail with EPERM",
            io::Error::last_os_error()
        ))
    }
}
