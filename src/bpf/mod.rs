//! The bpf(2) loader: maps and programs, and (in [`link`]) uprobe links.
//!
//! Every bpf(2) call of the tracer goes through [`sys_bpf`], the one place that
//! touches the syscall.

use std::ffi::CStr;
use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use crate::bpf_asm::Insn;
use crate::explain;
use crate::kernel::KernelVersion;

// bpf(2) commands, enum bpf_cmd in include/uapi/linux/bpf.h.
const BPF_MAP_CREATE: u32 = 0;
const BPF_MAP_LOOKUP_ELEM: u32 = 1;
const BPF_MAP_UPDATE_ELEM: u32 = 2;
const BPF_MAP_DELETE_ELEM: u32 = 3;
const BPF_MAP_GET_NEXT_KEY: u32 = 4;
const BPF_PROG_LOAD: u32 = 5;
const BPF_OBJ_GET_INFO_BY_FD: u32 = 15;
const BPF_LINK_CREATE: u32 = 28;

pub mod link;

/// The name of a bpf(2) command (enum bpf_cmd), as strace prints it.
fn cmd_name(cmd: u32) -> String {
    match cmd {
        BPF_MAP_CREATE => "BPF_MAP_CREATE".into(),
        BPF_MAP_LOOKUP_ELEM => "BPF_MAP_LOOKUP_ELEM".into(),
        BPF_MAP_UPDATE_ELEM => "BPF_MAP_UPDATE_ELEM".into(),
        BPF_MAP_DELETE_ELEM => "BPF_MAP_DELETE_ELEM".into(),
        BPF_MAP_GET_NEXT_KEY => "BPF_MAP_GET_NEXT_KEY".into(),
        BPF_PROG_LOAD => "BPF_PROG_LOAD".into(),
        BPF_OBJ_GET_INFO_BY_FD => "BPF_OBJ_GET_INFO_BY_FD".into(),
        BPF_LINK_CREATE => "BPF_LINK_CREATE".into(),
        other => format!("{other} /* BPF_??? */"),
    }
}

/// BPF_ANY: create or update (include/uapi/linux/bpf.h).
pub const BPF_ANY: u64 = 0;
/// BPF_NOEXIST: create only (include/uapi/linux/bpf.h).
pub const BPF_NOEXIST: u64 = 1;
/// BPF_EXIST: update only (include/uapi/linux/bpf.h).
pub const BPF_EXIST: u64 = 2;

/// The license every program is loaded with: the helpers the programs call
/// (probe_read_user_str, perf_event_output) are GPL-only.
const LICENSE: &CStr = c"GPL";

/// enum bpf_map_type in include/uapi/linux/bpf.h (the ones the tracer uses).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum MapType {
    Hash = 1,
    Array = 2,
    PerfEventArray = 4,
    PercpuArray = 6,
    StackTrace = 7,
    /// BPF_MAP_TYPE_LRU_HASH (4.10+).
    LruHash = 9,
    /// BPF_MAP_TYPE_RINGBUF (5.8+): max_entries is the ring's size in bytes.
    Ringbuf = 27,
}

impl MapType {
    /// The type with this `enum bpf_map_type` value, if the tracer knows it.
    pub fn from_u32(v: u32) -> Option<MapType> {
        [
            MapType::Hash,
            MapType::Array,
            MapType::PerfEventArray,
            MapType::PercpuArray,
            MapType::StackTrace,
            MapType::LruHash,
            MapType::Ringbuf,
        ]
        .into_iter()
        .find(|t| *t as u32 == v)
    }

    /// The name without `BPF_MAP_TYPE_`, e.g. `PERF_EVENT_ARRAY`.
    pub fn name(self) -> &'static str {
        match self {
            MapType::Hash => "HASH",
            MapType::Array => "ARRAY",
            MapType::PerfEventArray => "PERF_EVENT_ARRAY",
            MapType::PercpuArray => "PERCPU_ARRAY",
            MapType::LruHash => "LRU_HASH",
            MapType::StackTrace => "STACK_TRACE",
            MapType::Ringbuf => "RINGBUF",
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
    /// The type with this `enum bpf_prog_type` value, if the tracer knows it.
    pub fn from_u32(v: u32) -> Option<ProgType> {
        [ProgType::Kprobe, ProgType::Tracepoint].into_iter().find(|t| *t as u32 == v)
    }

    /// The name without `BPF_PROG_TYPE_`, e.g. `KPROBE`.
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

/// The `BPF_OBJ_GET_INFO_BY_FD` part of union bpf_attr.
#[repr(C)]
#[derive(Default)]
struct InfoAttr {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
}

/// `struct bpf_prog_info` (include/uapi/linux/bpf.h) through `name`: the kernel
/// fills at most `info_len` bytes, so the fields after it may be left out. The
/// zeroed lengths and pointers ask for no instruction or map id copies.
#[repr(C)]
#[derive(Default)]
struct ProgInfoRaw {
    prog_type: u32,
    id: u32,
    tag: [u8; 8],
    jited_prog_len: u32,
    xlated_prog_len: u32,
    jited_prog_insns: u64,
    xlated_prog_insns: u64,
    load_time: u64,
    created_by_uid: u32,
    nr_map_ids: u32,
    map_ids: u64,
    name: [u8; 16],
}

/// `struct bpf_map_info` (include/uapi/linux/bpf.h) through `name`.
#[repr(C)]
#[derive(Default)]
struct MapInfoRaw {
    map_type: u32,
    id: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    name: [u8; 16],
}

/// `PERF_EVENT_ARRAY`, or the number of a type the tracer does not use.
fn map_type_text(v: u32) -> String {
    MapType::from_u32(v).map_or_else(|| v.to_string(), |t| t.name().to_string())
}

/// `KPROBE`, or the number of a type the tracer does not use.
fn prog_type_text(v: u32) -> String {
    ProgType::from_u32(v).map_or_else(|| v.to_string(), |t| t.name().to_string())
}

/// `BPF_ANY`, `BPF_NOEXIST`, `BPF_EXIST`, or the number.
fn elem_flags_text(flags: u64) -> String {
    match flags {
        BPF_ANY => "BPF_ANY".into(),
        BPF_NOEXIST => "BPF_NOEXIST".into(),
        BPF_EXIST => "BPF_EXIST".into(),
        other => format!("{other:#x}"),
    }
}

/// A map key or value for the explanation: `(u32)9`, `(u64)0x...`, or its bytes.
fn bytes_text(b: &[u8]) -> String {
    match b.len() {
        4 => format!("(u32){}", u32::from_ne_bytes(b.try_into().expect("4 bytes"))),
        8 => format!("(u64){:#x}", u64::from_ne_bytes(b.try_into().expect("8 bytes"))),
        _ => format!("{b:02x?}"),
    }
}

impl MapCreateAttr {
    /// `{map_type=HASH, key_size=4, value_size=4, max_entries=4096, map_name="tgids"}`;
    /// fields left zero are not shown.
    fn describe(&self) -> String {
        let mut s = format!(
            "{{map_type={}, key_size={}, value_size={}, max_entries={}",
            map_type_text(self.map_type),
            self.key_size,
            self.value_size,
            self.max_entries
        );
        for (name, v) in [
            ("map_flags", self.map_flags),
            ("inner_map_fd", self.inner_map_fd),
            ("numa_node", self.numa_node),
        ] {
            if v != 0 {
                s.push_str(&format!(", {name}={v:#x}"));
            }
        }
        s.push_str(&format!(", map_name={}}}", explain::quote_name(&self.map_name)));
        s
    }
}

impl ProgLoadAttr {
    /// `{prog_type=KPROBE, insn_cnt=23, license="GPL", prog_name="uprobe_native"}`,
    /// with the log fields when a verifier log is asked for.
    fn describe(&self) -> String {
        let license = if self.license == LICENSE.as_ptr() as u64 {
            explain::quote(LICENSE.to_bytes())
        } else {
            format!("{:#x}", self.license)
        };
        let mut s = format!(
            "{{prog_type={}, insn_cnt={}, license={license}",
            prog_type_text(self.prog_type),
            self.insn_cnt
        );
        if self.log_level != 0 {
            s.push_str(&format!(", log_level={}, log_size={}", self.log_level, self.log_size));
        }
        if self.kern_version != 0 {
            let v = self.kern_version;
            s.push_str(&format!(
                ", kern_version=KERNEL_VERSION({}, {}, {})",
                v >> 16,
                (v >> 8) & 0xff,
                v & 0xff
            ));
        }
        if self.prog_flags != 0 {
            s.push_str(&format!(", prog_flags={:#x}", self.prog_flags));
        }
        s.push_str(&format!(", prog_name={}", explain::quote_name(&self.prog_name)));
        match self.expected_attach_type {
            0 => {}
            link::BPF_TRACE_UPROBE_MULTI => s.push_str(&format!(
                ", expected_attach_type=BPF_TRACE_UPROBE_MULTI({})",
                link::BPF_TRACE_UPROBE_MULTI
            )),
            t => s.push_str(&format!(", expected_attach_type={t}")),
        }
        s.push('}');
        s
    }
}

impl InfoAttr {
    /// `{info={bpf_fd=7, info_len=80}}`.
    fn describe(&self) -> String {
        format!("{{info={{bpf_fd={}, info_len={}}}}}", self.bpf_fd, self.info_len)
    }
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
                    Some(libc::EMFILE) => write!(
                        f,
                        "\n  trace is out of file descriptors: each probe holds a few (its program, its \
                         perf event or link) and so does each map and ring. Raise the limit \
                         (`ulimit -n 4096`) or trace fewer probes."
                    ),
                    Some(libc::ENFILE) => {
                        write!(f, "\n  the whole system is out of file descriptors (/proc/sys/fs/file-max)")
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

/// The single bpf(2) entry point. With `--explain` the call is recorded, its
/// attr decoded by `describe` after the call (so outputs are included).
fn sys_bpf<T>(cmd: u32, attr: &mut T, describe: impl FnOnce(&T) -> String) -> io::Result<i64> {
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
    let result = if ret < 0 { Err(io::Error::last_os_error()) } else { Ok(ret) };
    explain::syscall(
        || format!("bpf({}, {})", cmd_name(cmd), describe(attr)),
        match &result {
            Ok(v) => Ok(v.to_string()),
            Err(e) => Err(e.raw_os_error().unwrap_or(0)),
        },
    );
    result
}

/// BPF_OBJ_GET_INFO_BY_FD into `info`, a #[repr(C)] prefix of a `bpf_*_info` struct.
fn obj_info<I>(fd: BorrowedFd<'_>, info: &mut I, what: &str) -> Result<(), BpfError> {
    let mut attr = InfoAttr {
        bpf_fd: fd.as_raw_fd() as u32,
        info_len: std::mem::size_of::<I>() as u32,
        info: info as *mut I as u64,
    };
    // `info` lives across the call and is `info_len` bytes long: the kernel
    // writes no more than that.
    sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr, InfoAttr::describe)
        .map(|_| ())
        .map_err(|err| BpfError::Syscall { what: format!("asking the kernel about {what}"), err })
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
        let ret = sys_bpf(BPF_MAP_CREATE, &mut attr, MapCreateAttr::describe).map_err(|err| {
            BpfError::Syscall { what: format!("creating the BPF map `{name}` (bpf BPF_MAP_CREATE)"), err }
        })?;
        Ok(Map { fd: owned_fd(ret), map_type, key_size, value_size, max_entries, name: name.to_string() })
    }

    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// What the kernel says about this map: its id, the number bpftool shows.
    pub fn info(&self) -> Result<MapInfo, BpfError> {
        let mut raw = MapInfoRaw::default();
        obj_info(self.fd.as_fd(), &mut raw, &format!("the BPF map `{}`", self.name))?;
        Ok(MapInfo { id: raw.id, name: name_text(&raw.name) })
    }

    /// One BPF_MAP_*_ELEM command. `value` is the address of the value buffer;
    /// `shown` is the value for the explanation (None: no value, or an output).
    fn elem(
        &self,
        cmd: u32,
        key: &[u8],
        value: u64,
        shown: Option<&[u8]>,
        flags: u64,
        what: &str,
    ) -> Result<(), BpfError> {
        assert_eq!(key.len(), self.key_size as usize, "key size of map {}", self.name);
        let mut attr = MapElemAttr {
            map_fd: self.fd.as_raw_fd() as u32,
            key: key.as_ptr() as u64,
            value,
            flags,
            ..Default::default()
        };
        let describe = |a: &MapElemAttr| {
            let value = match (cmd, shown) {
                (BPF_MAP_DELETE_ELEM, _) => String::new(),
                (_, Some(v)) => format!(", value={}", bytes_text(v)),
                (_, None) => format!(", value={:#x}", a.value),
            };
            format!(
                "{{map_fd={}, key={}{value}, flags={}}}",
                a.map_fd,
                bytes_text(key),
                elem_flags_text(a.flags)
            )
        };
        sys_bpf(cmd, &mut attr, describe)
            .map(|_| ())
            .map_err(|err| BpfError::Syscall { what: format!("{what} in the BPF map `{}`", self.name), err })
    }

    /// BPF_MAP_UPDATE_ELEM.
    pub fn update(&self, key: &[u8], value: &[u8], flags: u64) -> Result<(), BpfError> {
        assert_eq!(value.len(), self.value_size as usize, "value size of map {}", self.name);
        self.elem(BPF_MAP_UPDATE_ELEM, key, value.as_ptr() as u64, Some(value), flags, "updating an element")
    }

    /// BPF_MAP_DELETE_ELEM; a missing key is not an error.
    pub fn delete(&self, key: &[u8]) -> Result<(), BpfError> {
        match self.elem(BPF_MAP_DELETE_ELEM, key, 0, None, 0, "deleting an element") {
            Err(BpfError::Syscall { err, .. }) if err.raw_os_error() == Some(libc::ENOENT) => Ok(()),
            other => other,
        }
    }

    /// Every key, in the kernel's order (BPF_MAP_GET_NEXT_KEY from no key
    /// until ENOENT).
    pub fn keys(&self) -> Result<Vec<Vec<u8>>, BpfError> {
        let mut keys: Vec<Vec<u8>> = Vec::new();
        loop {
            let mut next = vec![0u8; self.key_size as usize];
            let mut attr = MapElemAttr {
                map_fd: self.fd.as_raw_fd() as u32,
                // No key: the first one.
                key: keys.last().map_or(0, |k| k.as_ptr() as u64),
                value: next.as_mut_ptr() as u64,
                ..Default::default()
            };
            let describe = |a: &MapElemAttr| {
                format!("{{map_fd={}, key={:#x}, next_key={:#x}}}", a.map_fd, a.key, a.value)
            };
            match sys_bpf(BPF_MAP_GET_NEXT_KEY, &mut attr, describe) {
                Ok(_) => keys.push(next),
                Err(err) if err.raw_os_error() == Some(libc::ENOENT) => return Ok(keys),
                Err(err) => {
                    return Err(BpfError::Syscall {
                        what: format!("listing the keys of the BPF map `{}`", self.name),
                        err,
                    })
                }
            }
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
        let ptr = value.as_mut_ptr() as u64;
        match self.elem(BPF_MAP_LOOKUP_ELEM, key, ptr, None, 0, "looking up an element") {
            Ok(()) => Ok(Some(value)),
            Err(BpfError::Syscall { err, .. }) if err.raw_os_error() == Some(libc::ENOENT) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// A NUL-padded name field as a string.
fn name_text(field: &[u8]) -> String {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    String::from_utf8_lossy(&field[..end]).into_owned()
}

/// What BPF_OBJ_GET_INFO_BY_FD tells about a map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapInfo {
    /// The kernel's id of the map (`bpftool map show id N`).
    pub id: u32,
    /// Its name as the kernel keeps it (at most 15 bytes).
    pub name: String,
}

/// What BPF_OBJ_GET_INFO_BY_FD tells about a loaded program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgInfo {
    /// The kernel's id of the program (`bpftool prog dump xlated id N`).
    pub id: u32,
    /// The program's tag: a hash of its instructions, as bpftool shows it.
    pub tag: [u8; 8],
    /// Bytes of the program after the verifier's rewrites.
    pub xlated_len: u32,
    /// Bytes of machine code the JIT made (0 without a JIT).
    pub jited_len: u32,
    /// How many maps the program uses.
    pub nr_map_ids: u32,
    /// Its name as the kernel keeps it (at most 15 bytes).
    pub name: String,
}

impl ProgInfo {
    /// The tag in hex, as bpftool prints it.
    pub fn tag_hex(&self) -> String {
        self.tag.iter().map(|b| format!("{b:02x}")).collect()
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

    /// What the kernel says about the loaded program: its id, tag and sizes.
    pub fn info(&self) -> Result<ProgInfo, BpfError> {
        let mut raw = ProgInfoRaw::default();
        obj_info(self.fd.as_fd(), &mut raw, "a loaded program")?;
        Ok(ProgInfo {
            id: raw.id,
            tag: raw.tag,
            xlated_len: raw.xlated_prog_len,
            jited_len: raw.jited_prog_len,
            nr_map_ids: raw.nr_map_ids,
            name: name_text(&raw.name),
        })
    }
}

/// Verifier log buffer: first size, and the most we grow it to on ENOSPC.
const LOG_SIZE_START: usize = 1 << 20;
const LOG_SIZE_MAX: usize = 1 << 26;
/// log_level 1: the verifier's instruction-by-instruction log.
const LOG_LEVEL_VERBOSE: u32 = 1;

/// BPF_PROG_LOAD of a program attached through a perf event. See [`load_program_for`].
pub fn load_program(
    prog_type: ProgType,
    insns: &[Insn],
    name: &str,
    kernel: KernelVersion,
) -> Result<LoadedProgram, BpfError> {
    load_program_for(prog_type, None, insns, name, kernel)
}

/// BPF_PROG_LOAD; `attach_type`: the expected_attach_type the kernel needs to know at
/// load for some attachments (enum bpf_attach_type, e.g. [`link::BPF_TRACE_UPROBE_MULTI`]).
/// Loads without a log first (cheap); on failure loads again with a log, growing the
/// buffer on ENOSPC, so a rejection carries the verifier's words.
pub fn load_program_for(
    prog_type: ProgType,
    attach_type: Option<u32>,
    insns: &[Insn],
    name: &str,
    kernel: KernelVersion,
) -> Result<LoadedProgram, BpfError> {
    let bytes = crate::bpf_asm::encode(insns);
    let kern_version = if kernel.needs_kern_version() { kernel.code() } else { 0 };
    let attempt = |log: Option<&mut Vec<u8>>| {
        let mut attr = ProgLoadAttr {
            prog_type: prog_type as u32,
            insn_cnt: insns.len() as u32,
            insns: bytes.as_ptr() as u64,
            license: LICENSE.as_ptr() as u64,
            kern_version,
            prog_name: name16(name),
            expected_attach_type: attach_type.unwrap_or(0),
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
            match sys_bpf(BPF_PROG_LOAD, &mut attr, ProgLoadAttr::describe) {
                Err(e) if e.raw_os_error() == Some(libc::EAGAIN) && tries < 5 => tries += 1,
                other => return other,
            }
        }
    };
    let first = match attempt(None) {
        Ok(fd) => return Ok(LoadedProgram { fd: owned_fd(fd) }),
        Err(e) => e,
    };
    // Refusals that are not the verifier's: no permission, no BPF, and no file
    // descriptor left for the program (the verifier passed it, but the
    // process is at its `ulimit -n`).
    if matches!(
        first.raw_os_error(),
        Some(libc::EPERM) | Some(libc::ENOSYS) | Some(libc::EMFILE) | Some(libc::ENFILE)
    ) {
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
    let errno = io::Error::last_os_error().raw_os_error().unwrap_or(0);
    explain::syscall(
        || "setrlimit(RLIMIT_MEMLOCK, {rlim_cur=RLIM_INFINITY, rlim_max=RLIM_INFINITY})".into(),
        if ret == 0 { Ok("0".into()) } else { Err(errno) },
    );
    if ret == 0 {
        None
    } else {
        Some(format!(
            "could not raise RLIMIT_MEMLOCK ({}); kernel {kernel} charges BPF maps to it, \
             so loading may fail with EPERM",
            io::Error::from_raw_os_error(errno)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bpf_asm::{Asm, Reg};

    #[test]
    fn map_calls_are_explained_and_the_kernel_knows_the_map() {
        let rec = explain::record();
        let map = Map::create(MapType::Hash, 4, 4, 8, "t_explain").unwrap();
        map.update(&7u32.to_ne_bytes(), &9u32.to_ne_bytes(), BPF_ANY).unwrap();
        assert_eq!(map.lookup(&7u32.to_ne_bytes()).unwrap(), Some(9u32.to_ne_bytes().to_vec()));
        assert_eq!(map.lookup(&8u32.to_ne_bytes()).unwrap(), None);
        map.delete(&7u32.to_ne_bytes()).unwrap();
        let info = map.info().unwrap();
        explain::disable();
        assert!(info.id > 0);
        assert_eq!(info.name, "t_explain");
        let fd = map.raw_fd();
        let lines: Vec<String> = rec.text().lines().map(str::to_string).collect();
        let value_at = |l: &str| l.split("value=").nth(1).unwrap().split(',').next().unwrap().to_string();
        assert_eq!(
            lines,
            [
                format!(
                    "bpf(BPF_MAP_CREATE, {{map_type=HASH, key_size=4, value_size=4, max_entries=8, \
                     map_name=\"t_explain\"}}) = {fd}"
                ),
                format!("bpf(BPF_MAP_UPDATE_ELEM, {{map_fd={fd}, key=(u32)7, value=(u32)9, flags=BPF_ANY}}) = 0"),
                // A lookup's value is an output: its buffer's address is shown.
                format!(
                    "bpf(BPF_MAP_LOOKUP_ELEM, {{map_fd={fd}, key=(u32)7, value={}, flags=BPF_ANY}}) = 0",
                    value_at(&lines[2])
                ),
                format!(
                    "bpf(BPF_MAP_LOOKUP_ELEM, {{map_fd={fd}, key=(u32)8, value={}, flags=BPF_ANY}}) = -1 ENOENT \
                     (No such file or directory)",
                    value_at(&lines[3])
                ),
                format!("bpf(BPF_MAP_DELETE_ELEM, {{map_fd={fd}, key=(u32)7, flags=BPF_ANY}}) = 0"),
                format!("bpf(BPF_OBJ_GET_INFO_BY_FD, {{info={{bpf_fd={fd}, info_len=40}}}}) = 0"),
            ]
        );
        assert!(value_at(&lines[2]).starts_with("0x"));
    }

    #[test]
    fn program_loads_are_explained_and_the_kernel_knows_the_program() {
        let mut a = Asm::new();
        a.mov64(Reg::R0, 0).exit();
        let prog = a.link().unwrap();
        let rec = explain::record();
        let loaded = load_program(ProgType::Kprobe, &prog.insns, "t_prog", KernelVersion::current()).unwrap();
        let info = loaded.info().unwrap();
        explain::disable();
        assert!(info.id > 0);
        assert_eq!((info.name.as_str(), info.xlated_len, info.nr_map_ids), ("t_prog", 16, 0));
        assert_eq!(info.tag_hex().len(), 16);
        let fd = loaded.raw_fd();
        let kern = KernelVersion::current();
        let version = if kern.needs_kern_version() {
            let v = kern.code();
            format!(", kern_version=KERNEL_VERSION({}, {}, {})", v >> 16, (v >> 8) & 0xff, v & 0xff)
        } else {
            String::new()
        };
        assert_eq!(
            rec.text(),
            format!(
                "bpf(BPF_PROG_LOAD, {{prog_type=KPROBE, insn_cnt=2, license=\"GPL\"{version}, \
                 prog_name=\"t_prog\"}}) = {fd}\n\
                 bpf(BPF_OBJ_GET_INFO_BY_FD, {{info={{bpf_fd={fd}, info_len=80}}}}) = 0\n"
            )
        );
    }

    #[test]
    fn a_rejected_program_is_explained_with_both_attempts() {
        // `exit` without setting r0: the verifier refuses (r0 !read_ok).
        let mut a = Asm::new();
        a.exit();
        let prog = a.link().unwrap();
        let rec = explain::record();
        let err = load_program(ProgType::Kprobe, &prog.insns, "t_bad", KernelVersion::current()).unwrap_err();
        explain::disable();
        assert!(matches!(err, BpfError::Verifier { .. }), "{err}");
        let text = rec.text();
        let lines: Vec<&str> = text.lines().map(|l| l.split(", prog_name").next().unwrap()).collect();
        let version = if KernelVersion::current().needs_kern_version() { ", kern_version" } else { "" };
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].starts_with("bpf(BPF_PROG_LOAD, {prog_type=KPROBE, insn_cnt=1, license=\"GPL\""));
        assert!(
            lines[1].starts_with(&format!(
                "bpf(BPF_PROG_LOAD, {{prog_type=KPROBE, insn_cnt=1, license=\"GPL\", log_level=1, log_size=1048576{version}"
            )),
            "{lines:?}"
        );
        assert!(text.lines().all(|l| l.ends_with(") = -1 EACCES (Permission denied)")), "{text}");
    }
}
