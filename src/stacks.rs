//! Stack traces as text, byte for byte as bpftrace 0.17 prints `kstack`,
//! `kstack(perf)`, `ustack`, `ustack(perf)` and their frame limits.
//!
//! A stack is what `bpf_get_stackid` stores in a `BPF_MAP_TYPE_STACK_TRACE` map:
//! u64 instruction pointers, innermost first, ended by the first 0 or by the
//! value size ([`frames`]). bpftrace (`BPFtrace::get_stack`) turns one into:
//!
//! ```text
//! "\n"                                          always, even for no frames
//! "        perf_syscall_enter+475\n"            bpftrace mode: 8 spaces, sym+offset (decimal)
//! "\tffffffff814c254b perf_syscall_enter+475\n" perf mode, kernel: tab, hex address, sym+offset
//! "\t5573e7d1f188 level2+9 (/tmp/fp_pie)\n"     perf mode, user: and the mapped file in parentheses
//! "ffffffff814c254b\n"                          raw mode (bpftrace 0.18; 0.17 rejects it)
//! ```
//!
//! An address without a symbol is printed `0x7ff39ca25b1d` (perf mode, user:
//! `0x7ff39ca25b1d ([unknown])`). `printf("%s", kstack)` prints this string
//! as is; `print(kstack)` adds one `"\n"`. When the stack id is an error (no
//! stack, e.g. `-EFAULT`), bpftrace prints the empty string instead.
//!
//! Symbols are looked up the way bpftrace's library (bcc 0.26) does, so that
//! the same names come out: [`KernelSymbols`] keeps every non-data symbol of
//! /proc/kallsyms, [`UserSymbols`] every named symbol of the mapped files and
//! of their separate debug files. Where several symbols share an address, bcc
//! shows whichever its `std::sort` (not a stable sort) leaves last; `cxx_sort`
//! repeats libstdc++'s algorithm to pick the same one.
//!
//! One difference on purpose: bpftrace reads a process's maps when it prints
//! the stack, so frames of a process that has exited by then print as
//! addresses; [`UserSymbols`] keeps the maps it read earlier and names them.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use goblin::elf::header::{ET_DYN, ET_EXEC};
use goblin::elf::section_header::{SHT_DYNSYM, SHT_NOBITS, SHT_SYMTAB};

use crate::elf::ElfFile;

/// How a stack is printed: `kstack(bpftrace)` (the default), `kstack(perf)`,
/// `kstack(raw)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StackMode {
    /// One frame a line: 8 spaces, `sym+offset`.
    Bpftrace,
    /// A tab, the hex address, a space, `sym+offset` (user frames: ` (file)`).
    Perf,
    /// The hex address alone (bpftrace 0.18's `raw`; 0.17 has no such mode).
    Raw,
}

/// The indentation of a frame in [`StackMode::Bpftrace`]: bpftrace passes 8 for
/// both `print` and `printf`.
const INDENT: &str = "        ";

/// The frames of a stack map value (native-endian u64s), up to the first 0.
pub fn frames(raw: &[u8]) -> Vec<u64> {
    raw.chunks_exact(8)
        .map_while(|c| <[u8; 8]>::try_from(c).ok().map(u64::from_ne_bytes))
        .take_while(|&addr| addr != 0)
        .collect()
}

/// A kernel stack as bpftrace prints it (see the module documentation).
/// `limit` keeps the innermost frames, as `kstack(5)` does.
pub fn format_kernel(frames: &[u64], mode: StackMode, limit: Option<u32>, syms: &KernelSymbols) -> String {
    format_stack(frames, mode, limit, |addr| match syms.lookup(addr) {
        Some((name, offset)) => format!("{}+{offset}", shown(name)),
        None => format!("{addr:#x}"),
    })
}

/// A user stack of process `pid` as bpftrace prints it; perf mode adds the
/// file each frame is in.
pub fn format_user(
    pid: u32,
    frames: &[u64],
    mode: StackMode,
    limit: Option<u32>,
    syms: &mut UserSymbols,
) -> String {
    let perf = mode == StackMode::Perf;
    format_stack(frames, mode, limit, |addr| match (syms.resolve(pid, addr), perf) {
        (Some(s), false) => format!("{}+{}", shown(&s.name), s.offset),
        (Some(s), true) => format!("{}+{} ({})", shown(&s.name), s.offset, shown(&s.module)),
        (None, false) => format!("{addr:#x}"),
        (None, true) => format!("{addr:#x} ([unknown])"),
    })
}

/// A symbol or file name of a frame, escaped as a script's strings are: it
/// comes from an ELF file or /proc/PID/maps.
fn shown(name: &str) -> std::borrow::Cow<'_, str> {
    crate::escape::escape_as(name.as_bytes(), crate::escape::Style::Utf8)
}

/// The text of a stack, with `symbol` naming one address.
fn format_stack(
    frames: &[u64],
    mode: StackMode,
    limit: Option<u32>,
    mut symbol: impl FnMut(u64) -> String,
) -> String {
    let shown = limit.map_or(frames.len(), |n| frames.len().min(n as usize));
    let mut out = String::from("\n");
    for &addr in &frames[..shown] {
        // Writing to a String cannot fail.
        let _ = match mode {
            StackMode::Bpftrace => writeln!(out, "{INDENT}{}", symbol(addr)),
            StackMode::Perf => writeln!(out, "\t{addr:x} {}", symbol(addr)),
            StackMode::Raw => writeln!(out, "{addr:x}"),
        };
    }
    out
}

// ---------------------------------------------------------------------------
// The kernel

/// Where the kernel lists its symbols (Documentation/filesystems/proc.rst).
const KALLSYMS: &str = "/proc/kallsyms";

/// bcc ignores kallsyms addresses below this one on x86_64: everything of the
/// kernel lies above (Documentation/arch/x86/x86_64/mm.rst), and the per-CPU
/// symbols listed near 0 are offsets, not addresses.
const KERNEL_SPACE_START: u64 = 0x00ff_ffff_ffff_ffff;

/// The kallsyms types of data (bss, data, read-only data), left out.
const DATA_TYPES: &[char] = &['b', 'B', 'd', 'D', 'r', 'R'];

/// The kernel's symbols from /proc/kallsyms, in address order, for naming the
/// frames of kernel stacks.
#[derive(Debug, Default)]
pub struct KernelSymbols {
    /// (address, name start, name end in `names`), sorted by address.
    syms: Vec<(u64, u32, u32)>,
    names: String,
}

impl KernelSymbols {
    /// Reads /proc/kallsyms. Without root (or with kptr_restrict) every address
    /// reads 0: the table is then empty and frames print as hex addresses, as
    /// bpftrace prints them.
    pub fn load() -> io::Result<Self> {
        let path = Path::new(KALLSYMS);
        let read = std::fs::read_to_string(path);
        crate::explain::read_file(path, &read);
        Ok(Self::parse(&read?))
    }

    /// Parses kallsyms text (`ffffffff8123 T vfs_open`, `... t f\t[ext4]`). Keeps
    /// what bcc keeps: every symbol but data (`b B d D r R`), with an address in
    /// kernel space; a module name is ignored.
    pub fn parse(text: &str) -> Self {
        let mut names = String::new();
        let mut unsorted = Vec::new();
        for line in text.lines() {
            let mut words = line.split_whitespace();
            let (Some(addr), Some(kind), Some(name)) = (words.next(), words.next(), words.next()) else {
                continue;
            };
            let addr = u64::from_str_radix(addr, 16).unwrap_or(0);
            if addr == u64::MAX || addr < KERNEL_SPACE_START || kind.starts_with(DATA_TYPES) {
                continue;
            }
            let start = names.len() as u32;
            names.push_str(name);
            unsorted.push((addr, start, names.len() as u32));
        }
        cxx_sort(&mut unsorted, |a, b| a.0 < b.0);
        KernelSymbols { syms: unsorted, names }
    }

    /// The symbol at or before `addr` and the distance from it; None before the
    /// first symbol. Of symbols at one address, the last in sorted order wins.
    pub fn lookup(&self, addr: u64) -> Option<(&str, u64)> {
        let after = self.syms.partition_point(|s| s.0 <= addr);
        let &(start, from, to) = self.syms.get(after.checked_sub(1)?)?;
        Some((self.names.get(from as usize..to as usize)?, addr - start))
    }

    /// How many symbols there are.
    pub fn len(&self) -> usize {
        self.syms.len()
    }

    /// Whether there are none (kallsyms unreadable or addresses hidden).
    pub fn is_empty(&self) -> bool {
        self.syms.is_empty()
    }
}

// ---------------------------------------------------------------------------
// User space

/// How long to trust a process's maps for an address they do not cover before
/// reading them again (a library loaded since).
const MAPS_FRESH: Duration = Duration::from_millis(100);

/// Where separate debug files are found by build id (`.build-id/ab/cdef.debug`)
/// and by debug link.
const DEBUG_ROOT: &str = "/usr/lib/debug";

/// A symbolised user address.
struct UserSymbol {
    name: String,
    offset: u64,
    /// The file as /proc/PID/maps names it.
    module: Rc<str>,
}

/// One executable, file-backed line of /proc/PID/maps.
#[derive(Clone, Debug)]
struct Mapping {
    start: u64,
    end: u64,
    file_offset: u64,
    /// The device and inode: which file, across mount namespaces.
    file: (String, u64),
    name: Rc<str>,
}

/// What is known of one process.
struct Process {
    mappings: Vec<Mapping>,
    read_at: Instant,
}

/// User-space symbols by process: the executable mappings of each process
/// (/proc/PID/maps) and, once per file, the symbols of the mapped ELF files.
/// A process's maps are kept after it exits, so call [`UserSymbols::remember`]
/// as soon as a process is seen; calling it again reads them again (e.g.
/// after an exec).
#[derive(Default)]
pub struct UserSymbols {
    processes: HashMap<u32, Process>,
    /// Symbols by file (device, inode, name); None for files that cannot be read.
    modules: HashMap<(String, u64, Rc<str>), Option<Rc<Module>>>,
}

impl UserSymbols {
    /// No processes known yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads the maps of `pid` now, so that its stacks can still be named after
    /// it exits. Keeps what was known when they cannot be read (it is gone).
    pub fn remember(&mut self, pid: u32) {
        let read = std::fs::read_to_string(format!("/proc/{pid}/maps"));
        match (read, self.processes.get_mut(&pid)) {
            (Ok(text), _) => {
                self.processes.insert(pid, Process { mappings: parse_maps(&text), read_at: Instant::now() });
            }
            (Err(_), Some(known)) => known.read_at = Instant::now(),
            (Err(_), None) => {
                self.processes.insert(pid, Process { mappings: Vec::new(), read_at: Instant::now() });
            }
        }
    }

    /// The function of process `pid` holding `addr` and the distance into it.
    pub fn lookup(&mut self, pid: u32, addr: u64) -> Option<(String, u64)> {
        self.resolve(pid, addr).map(|s| (s.name, s.offset))
    }

    /// [`UserSymbols::lookup`] with the file.
    fn resolve(&mut self, pid: u32, addr: u64) -> Option<UserSymbol> {
        let mapping = match self.mapping(pid, addr) {
            Some(m) => m,
            None if self.processes.get(&pid).is_none_or(|p| p.read_at.elapsed() > MAPS_FRESH) => {
                self.remember(pid);
                self.mapping(pid, addr)?
            }
            None => return None,
        };
        let module = self.module(pid, &mapping)?;
        let (name, offset) = module.find(module.offset_of(&mapping, addr))?;
        Some(UserSymbol { name: demangle(name).into_owned(), offset, module: mapping.name })
    }

    /// The known mapping of `pid` holding `addr`.
    fn mapping(&self, pid: u32, addr: u64) -> Option<Mapping> {
        let process = self.processes.get(&pid)?;
        process.mappings.iter().find(|m| m.start <= addr && addr < m.end).cloned()
    }

    /// The symbols of a mapped file, read on first use.
    fn module(&mut self, pid: u32, m: &Mapping) -> Option<Rc<Module>> {
        let key = (m.file.0.clone(), m.file.1, m.name.clone());
        self.modules.entry(key).or_insert_with(|| Module::open(pid, &m.name).map(Rc::new)).clone()
    }
}

/// The executable, file-backed mappings of a /proc/PID/maps text, as bcc keeps
/// them: permissions with `x`, a name that is not anonymous memory, the heap,
/// a stack or `[vsyscall]`.
fn parse_maps(text: &str) -> Vec<Mapping> {
    text.lines().filter_map(parse_maps_line).collect()
}

/// One line: `start-end perms offset dev inode   name`.
fn parse_maps_line(line: &str) -> Option<Mapping> {
    let mut rest = line;
    let mut field = || {
        let t = rest.trim_start();
        let end = t.find(char::is_whitespace).unwrap_or(t.len());
        rest = &t[end..];
        &t[..end]
    };
    let (range, perms, offset, dev, inode) = (field(), field(), field(), field(), field());
    let name = rest.trim_start();
    let (start, end) = range.split_once('-')?;
    let hex = |s: &str| u64::from_str_radix(s, 16).ok();
    if perms.as_bytes().get(2) != Some(&b'x') || !is_file_backed(name) {
        return None;
    }
    Some(Mapping {
        start: hex(start)?,
        end: hex(end)?,
        file_offset: hex(offset)?,
        file: (dev.to_string(), inode.parse().ok()?),
        name: Rc::from(name),
    })
}

/// bcc's test of a mapping's name for a file to read symbols from.
fn is_file_backed(name: &str) -> bool {
    const NOT_FILES: &[&str] =
        &["//anon", "/dev/zero", "/anon_hugepage", "[stack", "/SYSV", "[heap]", "[vsyscall]"];
    !name.is_empty() && !NOT_FILES.iter().any(|p| name.starts_with(p))
}

/// How addresses of a mapping translate into the file's symbol values.
#[derive(Debug, PartialEq, Eq)]
enum ModuleKind {
    /// `ET_EXEC`: symbol values are the addresses.
    Exec,
    /// `ET_DYN` (libraries, PIE programs): the file offset moved
    /// by `.text`'s `sh_addr - sh_offset`.
    Shared { text_addr: u64, text_offset: u64 },
}

/// The symbols of one mapped file, sorted as bcc sorts them.
#[derive(Debug)]
struct Module {
    kind: ModuleKind,
    /// (value, size, name start, name end in `names`).
    syms: Vec<(u64, u64, u32, u32)>,
    names: String,
}

impl Module {
    /// The file `name` of process `pid`, seen through the process's root
    /// directory while it lives, else directly. None for a file that cannot be
    /// read or is not an executable or shared object, and for `[vdso]`: bcc
    /// 0.26 looks for it as the file `/proc/PID/root[vdso]`, finds nothing, and
    /// bpftrace 0.17 prints vDSO frames as addresses (checked with `usym()` on
    /// `__vdso_clock_gettime`).
    fn open(pid: u32, name: &str) -> Option<Module> {
        if !name.starts_with('/') {
            return None;
        }
        let inside = Path::new(&format!("/proc/{pid}/root")).join(name.trim_start_matches('/'));
        let file = ElfFile::open(&inside).or_else(|_| ElfFile::open(Path::new(name))).ok()?;
        let view = ElfView::parse(file.bytes())?;
        let kind = match view.e_type {
            ET_EXEC => ModuleKind::Exec,
            ET_DYN => {
                let text = view.section(".text");
                ModuleKind::Shared {
                    text_addr: text.map_or(0, |s| s.addr),
                    text_offset: text.map_or(0, |s| s.offset),
                }
            }
            _ => return None,
        };
        let mut module = Module { kind, syms: Vec::new(), names: String::new() };
        if let Some(debug) = debug_file(&view, file.path()) {
            if let Some(debug_view) = ElfView::parse(debug.bytes()) {
                module.add_symbols(&debug_view);
            }
        }
        module.add_symbols(&view);
        cxx_sort(&mut module.syms, |a, b| a.0 < b.0);
        Some(module)
    }

    /// Appends the symbols bcc lists: of every `SHT_SYMTAB` and `SHT_DYNSYM`
    /// section in section order, those with a name and a nonzero value.
    fn add_symbols(&mut self, view: &ElfView) {
        view.for_each_symbol(|name, value, size| {
            let start = self.names.len() as u32;
            self.names.push_str(&String::from_utf8_lossy(name));
            self.syms.push((value, size, start, self.names.len() as u32));
        });
    }

    /// The symbol value `addr` of mapping `m` stands for.
    fn offset_of(&self, m: &Mapping, addr: u64) -> u64 {
        match self.kind {
            ModuleKind::Exec => addr,
            ModuleKind::Shared { text_addr, text_offset } => addr
                .wrapping_sub(m.start)
                .wrapping_add(m.file_offset)
                .wrapping_add(text_addr)
                .wrapping_sub(text_offset),
        }
    }

    /// The symbol whose `[value, value + size)` holds `offset`, looking back
    /// from the last symbol at or before it past nested symbols, as bcc does;
    /// a symbol of size 0 holds nothing.
    fn find(&self, offset: u64) -> Option<(&str, u64)> {
        let mut i = self.syms.partition_point(|s| s.0 <= offset).checked_sub(1)?;
        let limit = self.syms[i].0;
        while offset >= self.syms[i].0 {
            let (value, size, from, to) = self.syms[i];
            if offset < value.saturating_add(size) {
                return Some((self.names.get(from as usize..to as usize)?, offset - value));
            }
            if limit > value.saturating_add(size) || i == 0 {
                break;
            }
            i -= 1;
        }
        None
    }
}

/// The separate debug file of `view` (read from `path`), found as bcc finds it:
/// by build id under [`DEBUG_ROOT`], then by `.gnu_debuglink` (next to the file,
/// in its `.debug` directory, or under [`DEBUG_ROOT`]) with a matching CRC.
fn debug_file(view: &ElfView, path: &Path) -> Option<ElfFile> {
    if let Some(id) = view.build_id() {
        let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
        if hex.len() > 2 {
            let by_id = PathBuf::from(format!("{DEBUG_ROOT}/.build-id/{}/{}.debug", &hex[..2], &hex[2..]));
            if let Ok(f) = ElfFile::open(&by_id) {
                return Some(f);
            }
        }
    }
    let (name, crc) = view.debug_link()?;
    let dir = path.parent().unwrap_or(Path::new("/"));
    let candidates = [
        dir.join(&name),
        dir.join(".debug").join(&name),
        PathBuf::from(format!("{DEBUG_ROOT}{}", dir.display())).join(&name),
    ];
    candidates.iter().enumerate().find_map(|(i, candidate)| {
        let same = i == 0 && same_file(candidate, path);
        let f = if same { None } else { ElfFile::open(candidate).ok() }?;
        (debuglink_crc32(f.bytes()) == crc).then_some(f)
    })
}

/// Whether two paths name one file.
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

/// The CRC-32 of `.gnu_debuglink` (the zlib one: reflected polynomial
/// 0xEDB88320, inverted before and after).
fn debuglink_crc32(bytes: &[u8]) -> u32 {
    let table: [u32; 256] = std::array::from_fn(|n| {
        (0..8).fold(n as u32, |c, _| if c & 1 == 1 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 })
    });
    !bytes.iter().fold(!0u32, |c, &b| table[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8))
}

/// A section header, the fields used here.
struct Section {
    name: u32,
    sh_type: u32,
    addr: u64,
    offset: u64,
    size: u64,
    link: u32,
    entsize: u64,
}

/// A 64-bit little-endian ELF image read just enough for symbols: the header
/// and section headers, every access bounds-checked.
struct ElfView<'a> {
    bytes: &'a [u8],
    e_type: u16,
    sections: Vec<Section>,
    shstrndx: usize,
}

/// `Elf64_Ehdr` and `Elf64_Shdr` layout (the ELF gABI; include/uapi/linux/elf.h).
const ELF_MAGIC: &[u8] = b"\x7fELF";
const EI_CLASS_64: (usize, u8) = (4, 2);
const EI_DATA_LE: (usize, u8) = (5, 1);
const E_TYPE: usize = 16;
const E_SHOFF: usize = 0x28;
const E_SHNUM: usize = 0x3c;
const E_SHSTRNDX: usize = 0x3e;
const SHDR_SIZE: usize = 64;
/// `e_shstrndx` value meaning "in the first section header's `sh_link`".
const SHN_XINDEX: u16 = 0xffff;
/// `Elf64_Sym` size.
const SYM_SIZE: usize = 24;

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at.checked_add(2)?)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at.checked_add(4)?)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at.checked_add(8)?)?.try_into().ok()?))
}

/// The NUL-terminated bytes at `at` (None when unterminated or out of range).
fn cstr_at(b: &[u8], at: usize) -> Option<&[u8]> {
    let tail = b.get(at..)?;
    Some(&tail[..tail.iter().position(|&c| c == 0)?])
}

impl<'a> ElfView<'a> {
    fn parse(bytes: &'a [u8]) -> Option<ElfView<'a>> {
        let ident_ok = bytes.starts_with(ELF_MAGIC)
            && bytes.get(EI_CLASS_64.0) == Some(&EI_CLASS_64.1)
            && bytes.get(EI_DATA_LE.0) == Some(&EI_DATA_LE.1);
        if !ident_ok {
            return None;
        }
        let shoff = usize::try_from(u64_at(bytes, E_SHOFF)?).ok()?;
        let read = |at: usize| {
            let h = bytes.get(at..at.checked_add(SHDR_SIZE)?)?;
            Some(Section {
                name: u32_at(h, 0)?,
                sh_type: u32_at(h, 4)?,
                addr: u64_at(h, 16)?,
                offset: u64_at(h, 24)?,
                size: u64_at(h, 32)?,
                link: u32_at(h, 40)?,
                entsize: u64_at(h, 56)?,
            })
        };
        let first = if shoff == 0 { None } else { read(shoff) };
        let count = match (u16_at(bytes, E_SHNUM)?, &first) {
            (0, Some(f)) => usize::try_from(f.size).ok()?,
            (n, _) => usize::from(n),
        };
        let shstrndx = match (u16_at(bytes, E_SHSTRNDX)?, &first) {
            (SHN_XINDEX, Some(f)) => f.link as usize,
            (n, _) => usize::from(n),
        };
        let count = if shoff == 0 { 0 } else { count.min(bytes.len() / SHDR_SIZE) };
        let sections = (0..count).map_while(|i| read(shoff.checked_add(i * SHDR_SIZE)?)).collect();
        Some(ElfView { bytes, e_type: u16_at(bytes, E_TYPE)?, sections, shstrndx })
    }

    /// A section's bytes (none for `SHT_NOBITS`).
    fn data(&self, s: &Section) -> Option<&'a [u8]> {
        if s.sh_type == SHT_NOBITS {
            return None;
        }
        let start = usize::try_from(s.offset).ok()?;
        self.bytes.get(start..start.checked_add(usize::try_from(s.size).ok()?)?)
    }

    /// The first section called `name`.
    fn section(&self, name: &str) -> Option<&Section> {
        let names = self.data(self.sections.get(self.shstrndx)?)?;
        self.sections.iter().find(|s| cstr_at(names, s.name as usize) == Some(name.as_bytes()))
    }

    /// `.note.gnu.build-id`'s id: the bytes after the 16 of the note header
    /// and its "GNU\0" name.
    fn build_id(&self) -> Option<&'a [u8]> {
        let note = self.data(self.section(".note.gnu.build-id")?)?;
        (note.len() > 16 && cstr_at(note, 12) == Some(b"GNU")).then(|| &note[16..])
    }

    /// `.gnu_debuglink`: the debug file's name and the CRC in its last 4 bytes.
    fn debug_link(&self) -> Option<(String, u32)> {
        let link = self.data(self.section(".gnu_debuglink")?)?;
        if link.len() <= 5 {
            return None;
        }
        let name = String::from_utf8_lossy(cstr_at(link, 0)?).into_owned();
        Some((name, u32_at(link, link.len() - 4)?))
    }

    /// Calls `f(name, value, size)` for each symbol of each `SHT_SYMTAB` and
    /// `SHT_DYNSYM` section, in file order, skipping those without a name or
    /// with value 0. A table whose size is not a whole number of entries ends
    /// the listing, as in bcc.
    fn for_each_symbol(&self, mut f: impl FnMut(&[u8], u64, u64)) {
        for s in self.sections.iter().filter(|s| s.sh_type == SHT_SYMTAB || s.sh_type == SHT_DYNSYM) {
            let (Some(table), Some(strings)) =
                (self.data(s), self.sections.get(s.link as usize).and_then(|t| self.data(t)))
            else {
                continue;
            };
            if s.entsize != SYM_SIZE as u64 || table.len() % SYM_SIZE != 0 {
                return;
            }
            for sym in table.chunks_exact(SYM_SIZE) {
                let (Some(name_at), Some(value), Some(size)) =
                    (u32_at(sym, 0), u64_at(sym, 8), u64_at(sym, 16))
                else {
                    continue;
                };
                match cstr_at(strings, name_at as usize) {
                    Some(name) if !name.is_empty() && value != 0 => f(name, value, size),
                    _ => {}
                }
            }
        }
    }
}

/// C++ names as bcc shows them (it demangles names starting `_Z` with
/// `__cxa_demangle`). Handled: a name of identifiers only, `_ZN3foo3barE` ->
/// `foo::bar` (Rust's legacy mangling has that form) and `_Z3foo` -> `foo`;
/// anything else is shown as it is.
fn demangle(name: &str) -> Cow<'_, str> {
    let parts = if let Some(nested) = name.strip_prefix("_ZN") {
        nested.strip_suffix('E').and_then(identifiers)
    } else {
        name.strip_prefix("_Z").and_then(identifiers).filter(|p| p.len() == 1)
    };
    match parts {
        Some(p) if !p.is_empty() => Cow::Owned(p.join("::")),
        _ => Cow::Borrowed(name),
    }
}

/// `3foo3bar` -> ["foo", "bar"]; None unless the text is exactly such a list.
fn identifiers(mut text: &str) -> Option<Vec<&str>> {
    let mut out = Vec::new();
    while !text.is_empty() {
        let digits = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
        let len: usize = text[..digits].parse().ok().filter(|&n| n > 0)?;
        let ident = text.get(digits..digits.checked_add(len)?)?;
        out.push(ident);
        text = &text[digits + len..];
    }
    Some(out)
}

// ---------------------------------------------------------------------------
// libstdc++'s std::sort

/// libstdc++'s `std::sort` (GCC 12): introsort with median-of-three pivots,
/// heapsort past `2 * floor(log2(n))` levels, runs of 16 or fewer left to a
/// final insertion sort. It is not stable: elements that compare equal end in
/// an order that only this algorithm reproduces, and bcc shows the last of the
/// symbols sharing an address.
fn cxx_sort<T: Copy>(v: &mut [T], less: impl Fn(&T, &T) -> bool) {
    if v.len() > 1 {
        let depth = 2 * v.len().ilog2();
        introsort_loop(v, 0, v.len(), depth, &less);
        final_insertion_sort(v, &less);
    }
}

/// Runs shorter than this are left to the final insertion sort.
const SORT_THRESHOLD: usize = 16;

fn introsort_loop<T: Copy>(
    v: &mut [T],
    first: usize,
    mut last: usize,
    mut depth: u32,
    less: &impl Fn(&T, &T) -> bool,
) {
    while last - first > SORT_THRESHOLD {
        if depth == 0 {
            heap_sort(&mut v[first..last], less);
            return;
        }
        depth -= 1;
        let mid = first + (last - first) / 2;
        move_median_to_first(v, first, first + 1, mid, last - 1, less);
        let cut = unguarded_partition(v, first + 1, last, first, less);
        introsort_loop(v, cut, last, depth, less);
        last = cut;
    }
}

/// Swaps the median of `a`, `b`, `c` into `result`.
fn move_median_to_first<T: Copy>(
    v: &mut [T],
    result: usize,
    a: usize,
    b: usize,
    c: usize,
    less: &impl Fn(&T, &T) -> bool,
) {
    let median = if less(&v[a], &v[b]) {
        if less(&v[b], &v[c]) {
            b
        } else if less(&v[a], &v[c]) {
            c
        } else {
            a
        }
    } else if less(&v[a], &v[c]) {
        a
    } else if less(&v[b], &v[c]) {
        c
    } else {
        b
    };
    v.swap(result, median);
}

/// Hoare partition of `[first, last)` around the element at `pivot`.
fn unguarded_partition<T: Copy>(
    v: &mut [T],
    mut first: usize,
    mut last: usize,
    pivot: usize,
    less: &impl Fn(&T, &T) -> bool,
) -> usize {
    loop {
        while less(&v[first], &v[pivot]) {
            first += 1;
        }
        last -= 1;
        while less(&v[pivot], &v[last]) {
            last -= 1;
        }
        if first >= last {
            return first;
        }
        v.swap(first, last);
        first += 1;
    }
}

/// `std::partial_sort(first, last, last)`: make a max-heap, then pop it.
fn heap_sort<T: Copy>(v: &mut [T], less: &impl Fn(&T, &T) -> bool) {
    let len = v.len();
    if len >= 2 {
        let mut parent = (len - 2) / 2;
        loop {
            let value = v[parent];
            adjust_heap(v, parent, len, value, less);
            if parent == 0 {
                break;
            }
            parent -= 1;
        }
    }
    let mut last = len;
    while last > 1 {
        last -= 1;
        let value = v[last];
        v[last] = v[0];
        adjust_heap(v, 0, last, value, less);
    }
}

/// Sifts the hole at `hole` down to a leaf, then `value` up from there.
fn adjust_heap<T: Copy>(v: &mut [T], mut hole: usize, len: usize, value: T, less: &impl Fn(&T, &T) -> bool) {
    let top = hole;
    let mut child = hole;
    while child < (len - 1) / 2 {
        child = 2 * (child + 1);
        if less(&v[child], &v[child - 1]) {
            child -= 1;
        }
        v[hole] = v[child];
        hole = child;
    }
    if len.is_multiple_of(2) && child == (len - 2) / 2 {
        child = 2 * (child + 1);
        v[hole] = v[child - 1];
        hole = child - 1;
    }
    while hole > top {
        let parent = (hole - 1) / 2;
        if !less(&v[parent], &value) {
            break;
        }
        v[hole] = v[parent];
        hole = parent;
    }
    v[hole] = value;
}

fn final_insertion_sort<T: Copy>(v: &mut [T], less: &impl Fn(&T, &T) -> bool) {
    let n = v.len().min(SORT_THRESHOLD);
    for i in 1..n {
        if less(&v[i], &v[0]) {
            v[..=i].rotate_right(1);
        } else {
            linear_insert(v, i, less);
        }
    }
    for i in n..v.len() {
        linear_insert(v, i, less);
    }
}

/// Moves the element at `i` down past the larger ones before it.
fn linear_insert<T: Copy>(v: &mut [T], mut i: usize, less: &impl Fn(&T, &T) -> bool) {
    let value = v[i];
    while i > 0 && less(&value, &v[i - 1]) {
        v[i] = v[i - 1];
        i -= 1;
    }
    v[i] = value;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A kallsyms excerpt: two names at one address, data and per-CPU symbols
    /// to leave out, a module function.
    const KALLSYMS_TEXT: &str = "\
0000000000000000 A fixed_percpu_data
0000000000001000 A cpu_number
ffffffff81000000 T _stext
ffffffff81000000 T _text
ffffffff81000080 T entry_SYSCALL_64
ffffffff810000ba T entry_SYSCALL_64_after_hwframe
ffffffff81423b10 T syscall_trace_enter
ffffffff814c2370 t perf_syscall_enter
ffffffff814c2800 D some_data
ffffffff8225a650 T do_syscall_64
ffffffff8225a900 r some_rodata
ffffffffc0001000 t ext4_file_open\t[ext4]
";

    /// The frames bpftrace 0.17 showed for `tracepoint:syscalls:sys_enter_openat`
    /// on the project's VM, for the same kernel.
    const FRAMES: [u64; 4] = [0xffffffff814c254b, 0xffffffff81423c90, 0xffffffff8225a85f, 0xffffffff81000130];

    fn kernel() -> KernelSymbols {
        KernelSymbols::parse(KALLSYMS_TEXT)
    }

    #[test]
    fn kallsyms_keeps_kernel_text_and_drops_data_and_per_cpu() {
        let k = kernel();
        assert_eq!(k.len(), 8);
        assert_eq!(k.lookup(0xffffffff81000000), Some(("_text", 0)));
        assert_eq!(k.lookup(0xffffffff810000b9), Some(("entry_SYSCALL_64", 57)));
        // Data in between is no symbol: the function before it is named.
        assert_eq!(k.lookup(0xffffffff814c2810), Some(("perf_syscall_enter", 0x4a0)));
        assert_eq!(k.lookup(0xffffffff8225a910), Some(("do_syscall_64", 0x2c0)));
        assert_eq!(k.lookup(0xffffffffc0001005), Some(("ext4_file_open", 5)));
        assert_eq!(k.lookup(0xffffffff80ffffff), None);
        assert_eq!(k.lookup(0x1000), None);
    }

    #[test]
    fn kallsyms_without_addresses_gives_no_symbols() {
        let k = KernelSymbols::parse("0000000000000000 T _stext\n0000000000000000 t vfs_open\n");
        assert!(k.is_empty());
        assert_eq!(
            format_kernel(&FRAMES[..1], StackMode::Bpftrace, None, &k),
            "\n        0xffffffff814c254b\n"
        );
    }

    #[test]
    fn kernel_stack_in_bpftrace_mode() {
        // `printf("[%s]\n", kstack)` printed "[" then exactly this, then "]\n".
        assert_eq!(
            format_kernel(&FRAMES, StackMode::Bpftrace, None, &kernel()),
            "\n        perf_syscall_enter+475\n        syscall_trace_enter+384\n        do_syscall_64+527\n        entry_SYSCALL_64_after_hwframe+118\n"
        );
    }

    #[test]
    fn kernel_stack_in_perf_mode() {
        assert_eq!(
            format_kernel(&FRAMES, StackMode::Perf, None, &kernel()),
            "\n\tffffffff814c254b perf_syscall_enter+475\n\tffffffff81423c90 syscall_trace_enter+384\n\tffffffff8225a85f do_syscall_64+527\n\tffffffff81000130 entry_SYSCALL_64_after_hwframe+118\n"
        );
    }

    #[test]
    fn kernel_stack_in_raw_mode() {
        assert_eq!(
            format_kernel(&FRAMES, StackMode::Raw, None, &kernel()),
            "\nffffffff814c254b\nffffffff81423c90\nffffffff8225a85f\nffffffff81000130\n"
        );
    }

    #[test]
    fn kernel_stack_with_a_limit() {
        let k = kernel();
        assert_eq!(
            format_kernel(&FRAMES, StackMode::Bpftrace, Some(3), &k),
            "\n        perf_syscall_enter+475\n        syscall_trace_enter+384\n        do_syscall_64+527\n"
        );
        assert_eq!(
            format_kernel(&FRAMES, StackMode::Perf, Some(2), &k),
            "\n\tffffffff814c254b perf_syscall_enter+475\n\tffffffff81423c90 syscall_trace_enter+384\n"
        );
        assert_eq!(format_kernel(&FRAMES, StackMode::Bpftrace, Some(9), &k).lines().count(), 5);
        assert_eq!(format_kernel(&[], StackMode::Bpftrace, None, &k), "\n");
    }

    #[test]
    fn kernel_addresses_without_a_symbol_are_hex() {
        let frames = [0xffffffff80000010, 0xffffffff81000002];
        assert_eq!(
            format_kernel(&frames, StackMode::Bpftrace, None, &kernel()),
            "\n        0xffffffff80000010\n        _text+2\n"
        );
        assert_eq!(
            format_kernel(&frames, StackMode::Perf, None, &kernel()),
            "\n\tffffffff80000010 0xffffffff80000010\n\tffffffff81000002 _text+2\n"
        );
    }

    #[test]
    fn frames_end_at_the_first_zero_or_the_value_size() {
        let mut raw = Vec::new();
        for a in [0xffffffff814c254bu64, 0x7ff39ca25b1d, 0, 0x1234] {
            raw.extend_from_slice(&a.to_ne_bytes());
        }
        assert_eq!(frames(&raw), vec![0xffffffff814c254b, 0x7ff39ca25b1d]);
        assert_eq!(frames(&raw[..8]), vec![0xffffffff814c254b]);
        assert_eq!(frames(&raw[..12]), vec![0xffffffff814c254b]);
        assert_eq!(frames(&[]), Vec::<u64>::new());
    }

    /// The keys and the order libstdc++ (GCC 12) `std::sort` left them in,
    /// printed by a C++ program sorting `{key, index}` pairs by key.
    const SORT_KEYS: [u64; 40] = [
        0, 0, 0, 3, 0, 5, 6, 3, 3, 5, 2, 0, 1, 6, 3, 0, 0, 5, 5, 1, 5, 0, 5, 6, 5, 0, 5, 1, 1, 6, 6, 0, 2, 1,
        4, 4, 5, 1, 0, 6,
    ];

    fn sorted_indices(sort: impl Fn(&mut [(u64, usize)])) -> Vec<usize> {
        let mut v: Vec<(u64, usize)> = SORT_KEYS.iter().copied().zip(0..).collect();
        sort(&mut v);
        v.iter().map(|e| e.1).collect()
    }

    #[test]
    fn sort_leaves_equal_keys_where_libstdcxx_does() {
        assert_eq!(
            sorted_indices(|v| cxx_sort(v, |a, b| a.0 < b.0)),
            [
                1, 2, 25, 4, 38, 31, 21, 0, 11, 16, 15, 27, 28, 19, 33, 12, 37, 10, 32, 14, 8, 7, 3, 35, 34,
                36, 20, 26, 24, 22, 18, 17, 9, 5, 29, 30, 23, 13, 6, 39
            ]
        );
    }

    #[test]
    fn heap_sort_leaves_equal_keys_where_libstdcxx_partial_sort_does() {
        assert_eq!(
            sorted_indices(|v| heap_sort(v, &|a: &(u64, usize), b: &(u64, usize)| a.0 < b.0)),
            [
                15, 38, 25, 21, 11, 2, 4, 16, 31, 1, 0, 27, 37, 33, 12, 19, 28, 32, 10, 7, 8, 3, 14, 34, 35,
                17, 36, 18, 9, 20, 22, 5, 24, 26, 39, 23, 13, 6, 29, 30
            ]
        );
    }

    #[test]
    fn sort_sorts_long_inputs() {
        let mut x = 0x9e3779b97f4a7c15u64;
        let mut v: Vec<u64> = (0..5000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x % 1000
            })
            .collect();
        let mut expected = v.clone();
        expected.sort();
        cxx_sort(&mut v, |a, b| a < b);
        assert_eq!(v, expected);
        let mut h = v.iter().rev().copied().collect::<Vec<_>>();
        heap_sort(&mut h, &|a: &u64, b: &u64| a < b);
        assert_eq!(h, expected);
    }

    #[test]
    fn maps_lines_keep_executable_files_only() {
        let text = "\
55a2d36f1000-55a2d36f6000 r-xp 00002000 fe:00 247030                     /usr/bin/cat
55a2fc47d000-55a2fc49e000 rw-p 00000000 00:00 0                          [heap]
7f982b5de000-7f982b6a2000 rw-p 00000000 00:00 0 
7f982b728000-7f982b87e000 r-xp 00026000 fe:00 326279                     /usr/lib/x86_64-linux-gnu/libc.so.6
7f982b900000-7f982b901000 r-xp 00000000 00:00 0 
7f982b8f8000-7f982b8fa000 r-xp 00000000 00:00 0                          [vdso]
7f982b9f8000-7f982b9fa000 r-xp 00000000 00:05 1234                       /memfd:jit code (deleted)
ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]
";
        let maps = parse_maps(text);
        let shown: Vec<(u64, u64, u64, &str, &str, u64)> = maps
            .iter()
            .map(|m| (m.start, m.end, m.file_offset, &*m.name, m.file.0.as_str(), m.file.1))
            .collect();
        assert_eq!(
            shown,
            [
                (0x55a2d36f1000, 0x55a2d36f6000, 0x2000, "/usr/bin/cat", "fe:00", 247030),
                (
                    0x7f982b728000,
                    0x7f982b87e000,
                    0x26000,
                    "/usr/lib/x86_64-linux-gnu/libc.so.6",
                    "fe:00",
                    326279
                ),
                (0x7f982b8f8000, 0x7f982b8fa000, 0, "[vdso]", "00:00", 0),
                (0x7f982b9f8000, 0x7f982b9fa000, 0, "/memfd:jit code (deleted)", "00:05", 1234),
            ]
        );
    }

    #[test]
    fn demangles_plain_names_only() {
        assert_eq!(
            demangle("_ZN5trace6stacks5tests6marker17h0123456789abcdefE"),
            "trace::stacks::tests::marker::h0123456789abcdef"
        );
        assert_eq!(
            demangle("_ZN3std2rt10lang_start17h4a9e2c1b3d5f6e7aE"),
            "std::rt::lang_start::h4a9e2c1b3d5f6e7a"
        );
        assert_eq!(demangle("_Z6globalv"), "_Z6globalv");
        assert_eq!(demangle("_Z6global"), "global");
        assert_eq!(demangle("_ZN3foo3barEi"), "_ZN3foo3barEi");
        assert_eq!(demangle("_ZN3fooE"), "foo");
        assert_eq!(demangle("_ZNE"), "_ZNE");
        assert_eq!(demangle("_ZN10truncatedE"), "_ZN10truncatedE");
        assert_eq!(demangle("getppid"), "getppid");
    }

    #[test]
    fn debuglink_crc_is_zlib_crc32() {
        assert_eq!(debuglink_crc32(b""), 0);
        assert_eq!(debuglink_crc32(b"123456789"), 0xCBF4_3926);
    }

    /// A function of this test binary with a known name and some length.
    #[no_mangle]
    #[inline(never)]
    pub extern "C" fn stacks_test_marker(n: u64) -> u64 {
        let mut acc = std::hint::black_box(n);
        for i in 0..std::hint::black_box(n) {
            acc = acc.wrapping_mul(31).wrapping_add(i);
        }
        acc
    }

    fn marker_addr() -> u64 {
        stacks_test_marker as *const () as usize as u64
    }

    #[test]
    fn names_a_function_of_this_process() {
        let pid = std::process::id();
        let mut syms = UserSymbols::new();
        syms.remember(pid);
        let addr = marker_addr();
        assert_eq!(syms.lookup(pid, addr + 3), Some(("stacks_test_marker".to_string(), 3)));
        assert_eq!(syms.lookup(pid, addr), Some(("stacks_test_marker".to_string(), 0)));
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        let exe = exe.to_str().unwrap();
        let frames = [addr + 3, 0x10];
        assert_eq!(
            format_user(pid, &frames, StackMode::Bpftrace, None, &mut syms),
            "\n        stacks_test_marker+3\n        0x10\n"
        );
        assert_eq!(
            format_user(pid, &frames, StackMode::Perf, None, &mut syms),
            format!("\n\t{:x} stacks_test_marker+3 ({exe})\n\t10 0x10 ([unknown])\n", addr + 3)
        );
        assert_eq!(
            format_user(pid, &frames, StackMode::Raw, Some(1), &mut syms),
            format!("\n{:x}\n", addr + 3)
        );
    }

    #[test]
    fn leaves_vdso_frames_unnamed_as_bpftrace_does() {
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let Some(vdso) = parse_maps(&maps).into_iter().find(|m| &*m.name == "[vdso]") else {
            return; // booted with vdso=0
        };
        let mut syms = UserSymbols::new();
        let pid = std::process::id();
        assert_eq!(syms.lookup(pid, vdso.start + 0x10), None);
        assert_eq!(
            format_user(pid, &[vdso.start + 0x10], StackMode::Perf, None, &mut syms),
            format!("\n\t{:x} {:#x} ([unknown])\n", vdso.start + 0x10, vdso.start + 0x10)
        );
    }

    #[test]
    fn names_without_remember_and_for_unknown_processes() {
        let mut syms = UserSymbols::new();
        let pid = std::process::id();
        assert_eq!(syms.lookup(pid, marker_addr() + 1), Some(("stacks_test_marker".to_string(), 1)));
        // Pid numbers stop below 2^22 (include/linux/threads.h PID_MAX_LIMIT).
        assert_eq!(syms.lookup(u32::MAX, marker_addr()), None);
    }

    #[test]
    #[ignore = "the child process of names_functions_of_an_exited_process"]
    fn sleeping_child() {
        if std::env::var_os(CHILD_ENV).is_some() {
            std::thread::sleep(Duration::from_secs(20));
        }
    }

    /// Set for the child only: run alone with `--ignored`, `sleeping_child` returns at once.
    const CHILD_ENV: &str = "TRACE_STACKS_SLEEPING_CHILD";

    #[test]
    fn names_functions_of_an_exited_process() {
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        let mut child = std::process::Command::new(&exe)
            .args(["--ignored", "--exact", "stacks::tests::sleeping_child", "--test-threads=1"])
            .env(CHILD_ENV, "1")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        // The child's maps, once its executable is mapped (right after exec).
        let mut syms = UserSymbols::new();
        let ours = parse_maps(&std::fs::read_to_string("/proc/self/maps").unwrap());
        let mine = ours.iter().find(|m| m.start <= marker_addr() && marker_addr() < m.end).unwrap().clone();
        let file_offset = marker_addr() - mine.start + mine.file_offset;
        let deadline = Instant::now() + Duration::from_secs(10);
        let theirs = loop {
            syms.remember(pid);
            let found = syms.processes[&pid].mappings.iter().find(|m| {
                m.file == mine.file
                    && m.file_offset <= file_offset
                    && file_offset < m.file_offset + (m.end - m.start)
            });
            if let Some(m) = found {
                break m.clone();
            }
            assert!(Instant::now() < deadline, "the child never mapped {}", exe.display());
            std::thread::sleep(Duration::from_millis(5));
        };
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!Path::new(&format!("/proc/{pid}/maps")).exists());
        let addr = theirs.start + (file_offset - theirs.file_offset);
        assert_eq!(syms.lookup(pid, addr + 7), Some(("stacks_test_marker".to_string(), 7)));
    }
}
