//! Opening an ELF file: map it, check every table against the file size, and
//! copy what the lookups need (segments, sections, function symbols with their
//! versions, the dynamic section) into owned tables.
//!
//! goblin parses the headers, the symbol tables and the GNU version sections;
//! each range is checked here first, so a truncated or corrupt file gives a
//! clear [`ElfError`] instead of a panic or a silently wrong table.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use goblin::container::{Container, Ctx, Endian};
use goblin::elf::dynamic::{DF_1_PIE, DT_FLAGS_1, DT_NEEDED, DT_NULL, DT_SONAME, DT_STRSZ, DT_STRTAB};
use goblin::elf::header::{
    self, EI_CLASS, EI_DATA, ELFCLASS32, ELFCLASS64, ELFDATA2LSB, ELFMAG, EM_X86_64, ET_CORE, ET_DYN,
    ET_EXEC, ET_REL, SELFMAG,
};
use goblin::elf::program_header::{ProgramHeader, PF_X, PT_DYNAMIC, PT_INTERP, PT_LOAD};
use goblin::elf::section_header::{
    SectionHeader, SHN_LORESERVE, SHN_UNDEF, SHN_XINDEX, SHT_DYNSYM, SHT_NOBITS, SHT_NULL, SHT_STRTAB,
    SHT_SYMTAB,
};
use goblin::elf::sym::{self, Symtab, STB_LOCAL, STT_FILE, STT_FUNC, STT_GNU_IFUNC};
use goblin::elf::symver::{VerdefSection, VerneedSection, VersymSection};
use goblin::elf::Elf;
use memmap2::Mmap;

use super::ElfError;

/// Size of an Elf64_Ehdr.
const EHDR_SIZE: u64 = 64;
/// Size of an Elf64_Phdr.
const PHDR_SIZE: u64 = 56;
/// Size of an Elf64_Shdr.
const SHDR_SIZE: u64 = 64;
/// Size of an Elf64_Sym.
const SYM_SIZE: u64 = 24;
/// Size of an Elf64_Dyn.
const DYN_SIZE: usize = 16;
/// Version index bits of a `.gnu.version` entry (the top bit marks hidden versions).
const VERSYM_INDEX: u16 = 0x7fff;
/// `.gnu.version` top bit: the version is not the default one (`name@VER`).
const VERSYM_HIDDEN: u16 = 0x8000;
/// Version indices 0 (local) and 1 (global, unversioned) name no version.
const VER_NDX_FIRST_NAMED: u16 = 2;
/// No file has more version definitions or needs than this; bounds the iterators.
const MAX_VERSIONS: usize = 1 << 16;

/// An ELF executable or shared library, mapped and indexed.
pub struct ElfFile {
    path: PathBuf,
    map: Contents,
    pub(super) t: Tables,
}

/// The file's bytes: mapped from disk by [`ElfFile::open`], or handed over by
/// [`ElfFile::from_bytes`].
enum Contents {
    Mapped(Mmap),
    Owned(Vec<u8>),
}

impl std::ops::Deref for Contents {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Contents::Mapped(m) => m,
            Contents::Owned(v) => v,
        }
    }
}

impl fmt::Debug for ElfFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ElfFile")
            .field("path", &self.path)
            .field("size", &self.map.len())
            .field("symbols", &self.t.syms.len())
            .finish()
    }
}

/// The owned tables every query works on.
pub(super) struct Tables {
    pub e_type: u16,
    pub entry: u64,
    pub segments: Vec<Segment>,
    pub sections: Vec<Section>,
    /// Function symbols (defined or not) and undefined symbols of both tables.
    pub syms: Vec<RawSym>,
    /// Names of the `STT_FILE` symbols of `.symtab` ([`RawSym::file`] indexes it).
    pub files: Vec<String>,
    /// Defined functions by address: indices into `syms`.
    pub by_addr: BTreeMap<u64, Vec<usize>>,
    pub has_symtab: bool,
    pub interp: Option<String>,
    pub needed: Vec<String>,
    pub soname: Option<String>,
    pub flags_1: u64,
}

/// A program header, reduced to what offsets need.
pub(super) struct Segment {
    pub p_type: u32,
    pub flags: u32,
    pub offset: u64,
    pub vaddr: u64,
    pub filesz: u64,
}

/// A section header with its name.
pub(super) struct Section {
    pub name: String,
    pub sh_type: u32,
    pub flags: u64,
    pub addr: u64,
    pub offset: u64,
    pub size: u64,
}

/// One symbol table entry, with its name split from its version.
pub(super) struct RawSym {
    /// The name without `@VERSION`.
    pub base: String,
    /// The version (`GLIBC_2.2.5`), from the name in `.symtab` or from
    /// `.gnu.version` in `.dynsym`.
    pub version: Option<String>,
    /// `name@VER` (a non-default version) rather than `name@@VER` or unversioned.
    pub hidden: bool,
    pub value: u64,
    pub size: u64,
    pub shndx: usize,
    pub bind: u8,
    pub typ: u8,
    /// From `.dynsym` (false: from `.symtab`).
    pub dynamic: bool,
    /// For local `.symtab` symbols: the `STT_FILE` group they follow.
    pub file: Option<usize>,
    /// For imports with a needed version: the library (`vn_file`) that provides it.
    pub library: Option<String>,
}

impl RawSym {
    /// A function with code in this file: `STT_FUNC` or `STT_GNU_IFUNC`, not
    /// `SHN_UNDEF`, not a reserved index (`SHN_ABS`, `SHN_COMMON`, `SHN_XINDEX`...).
    pub fn is_defined_function(&self) -> bool {
        (self.typ == STT_FUNC || self.typ == STT_GNU_IFUNC)
            && self.shndx != SHN_UNDEF as usize
            && self.shndx < SHN_LORESERVE as usize
    }

    /// An undefined symbol: the file uses it, another object defines it.
    pub fn is_undefined(&self) -> bool {
        self.shndx == SHN_UNDEF as usize
    }

    /// The name as readelf shows it: `open@@GLIBC_2.2.5`, `memcpy@GLIBC_2.2.5`.
    pub fn full_name(&self) -> String {
        match &self.version {
            Some(v) if self.hidden => format!("{}@{v}", self.base),
            Some(v) => format!("{}@@{v}", self.base),
            None => self.base.clone(),
        }
    }
}

impl ElfFile {
    /// Opens, maps and indexes `path`.
    ///
    /// Errors (never panics) when the file is missing or unreadable, not a regular
    /// file, empty, not ELF, not a little-endian x86-64 executable or shared
    /// library, truncated, or internally inconsistent.
    pub fn open(path: &Path) -> Result<ElfFile, ElfError> {
        let io = |source| ElfError::Io { path: path.to_path_buf(), source };
        let not_a_file = || ElfError::NotAFile { path: path.to_path_buf() };
        // Looked at before it is opened: opening a FIFO waits for a writer.
        if !std::fs::metadata(path).map_err(io)?.is_file() {
            return Err(not_a_file());
        }
        // O_NONBLOCK: should a FIFO take the file's place meanwhile, the open
        // does not wait either (a regular file's reads ignore the flag).
        let mut file =
            std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path).map_err(io)?;
        let meta = file.metadata().map_err(io)?;
        if !meta.is_file() {
            return Err(not_a_file());
        }
        if meta.len() < EHDR_SIZE {
            // Too short to map usefully: classify the few bytes there are.
            let mut head = Vec::new();
            file.read_to_end(&mut head).map_err(io)?;
            return Err(short_file_error(path, &head));
        }
        let map = map_file(&file).map_err(io)?;
        let t = read_tables(path, &map)?;
        Ok(ElfFile { path: path.to_path_buf(), map: Contents::Mapped(map), t })
    }

    /// Indexes the bytes of an ELF file already in memory; `path` is only the
    /// name errors and [`ElfFile::path`] show. Checks and errors are those of
    /// [`ElfFile::open`] once the file is read (the fuzz targets use it).
    pub fn from_bytes(path: &Path, bytes: Vec<u8>) -> Result<ElfFile, ElfError> {
        if (bytes.len() as u64) < EHDR_SIZE {
            return Err(short_file_error(path, &bytes));
        }
        let t = read_tables(path, &bytes)?;
        Ok(ElfFile { path: path.to_path_buf(), map: Contents::Owned(bytes), t })
    }

    /// The path the file was opened with.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The whole file, as mapped.
    pub fn bytes(&self) -> &[u8] {
        &self.map
    }

    /// The `len` bytes at file offset `offset` (e.g. the first instruction bytes
    /// of a function), or None past the end of the file.
    pub fn bytes_at(&self, offset: u64, len: usize) -> Option<&[u8]> {
        let start = usize::try_from(offset).ok()?;
        self.map.get(start..start.checked_add(len)?)
    }

    /// A shared library (`ET_DYN` that is not a PIE): has a `DT_SONAME`, or needs
    /// other libraries without asking for an interpreter. glibc's `libc.so.6` has
    /// a `PT_INTERP` (it can be run) but is still a library.
    pub fn is_shared_library(&self) -> bool {
        self.t.e_type == ET_DYN
            && self.t.flags_1 & DF_1_PIE == 0
            && (self.t.soname.is_some() || (self.t.interp.is_none() && !self.t.needed.is_empty()))
    }

    /// Statically linked: no `PT_INTERP` (no dynamic loader runs first), covering
    /// static-pie too. Shared libraries are never static.
    pub fn is_static(&self) -> bool {
        self.t.interp.is_none() && !self.is_shared_library()
    }

    /// Position independent executable: an `ET_DYN` that is not a shared library
    /// (a PIE with `PT_INTERP`, or a static-pie).
    pub fn is_pie(&self) -> bool {
        self.t.e_type == ET_DYN && !self.is_shared_library()
    }

    /// The `DT_NEEDED` entries (sonames such as `libc.so.6`), in order.
    pub fn needed(&self) -> Vec<String> {
        self.t.needed.clone()
    }

    /// `DT_SONAME`, for a shared library.
    pub fn soname(&self) -> Option<String> {
        self.t.soname.clone()
    }

    /// The dynamic loader named by `PT_INTERP`.
    pub fn interpreter(&self) -> Option<String> {
        self.t.interp.clone()
    }

    /// The file has a `.symtab` (false when stripped).
    pub fn has_symtab(&self) -> bool {
        self.t.has_symtab
    }

    /// `e_entry`, the address where the program starts.
    pub fn entry(&self) -> u64 {
        self.t.entry
    }
}

/// Maps the whole file read-only.
fn map_file(file: &File) -> std::io::Result<Mmap> {
    // SAFETY: the mapping is private to this process and read-only. memmap2 marks
    // it unsafe because another process could truncate or rewrite the file while
    // it is mapped (changed bytes, or SIGBUS). Programs and libraries are not
    // rewritten in place while they are traced (the kernel refuses writes to
    // running executables), and every table is copied out during `open`.
    unsafe { Mmap::map(file) }
}

/// The error for a file shorter than an ELF header.
fn short_file_error(path: &Path, head: &[u8]) -> ElfError {
    let path = path.to_path_buf();
    if head.is_empty() {
        ElfError::Empty { path }
    } else if head.len() < SELFMAG || &head[..SELFMAG] != ELFMAG {
        ElfError::NotElf { path }
    } else {
        ElfError::Truncated { path, what: "ELF header".into(), end: EHDR_SIZE, size: head.len() as u64 }
    }
}

/// Parses every table of `bytes` (at least [`EHDR_SIZE`] long).
fn read_tables(path: &Path, bytes: &[u8]) -> Result<Tables, ElfError> {
    let p = Parser { path, bytes, ctx: Ctx::new(Container::Big, Endian::Little) };
    let hdr = p.header()?;
    let segments = p.segments(&hdr)?;
    let shdrs = p.section_headers(&hdr)?;
    let sections = p.sections(&hdr, &shdrs)?;
    let (mut syms, files, has_symtab) = p.symtab(&shdrs)?;
    syms.extend(p.dynsym(&shdrs)?);
    let dynamic = p.dynamic(&segments)?;
    let interp = p.interp(&segments)?;
    let by_addr = index_by_address(&syms);
    Ok(Tables {
        e_type: hdr.e_type,
        entry: hdr.e_entry,
        segments,
        sections,
        syms,
        files,
        by_addr,
        has_symtab,
        interp,
        needed: dynamic.needed,
        soname: dynamic.soname,
        flags_1: dynamic.flags_1,
    })
}

/// Defined functions grouped by address.
fn index_by_address(syms: &[RawSym]) -> BTreeMap<u64, Vec<usize>> {
    let mut by_addr: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
    for (i, s) in syms.iter().enumerate().filter(|(_, s)| s.is_defined_function()) {
        by_addr.entry(s.value).or_default().push(i);
    }
    by_addr
}

/// What the dynamic section says.
#[derive(Default)]
struct DynamicInfo {
    needed: Vec<String>,
    soname: Option<String>,
    flags_1: u64,
}

/// The bytes being parsed, with the path for error messages.
struct Parser<'a> {
    path: &'a Path,
    bytes: &'a [u8],
    ctx: Ctx,
}

impl<'a> Parser<'a> {
    fn malformed(&self, detail: impl Into<String>) -> ElfError {
        ElfError::Malformed { path: self.path.to_path_buf(), detail: detail.into() }
    }

    fn unsupported(&self, what: impl Into<String>) -> ElfError {
        ElfError::Unsupported { path: self.path.to_path_buf(), what: what.into() }
    }

    /// The bytes `[offset, offset + len)`, or a Truncated error naming `what`.
    fn range(&self, what: &str, offset: u64, len: u64) -> Result<&'a [u8], ElfError> {
        let size = self.bytes.len() as u64;
        let end = offset.checked_add(len).ok_or_else(|| {
            self.malformed(format!("the {what} at offset {offset:#x} has an impossible size {len:#x}"))
        })?;
        if end > size {
            return Err(ElfError::Truncated { path: self.path.to_path_buf(), what: what.into(), end, size });
        }
        Ok(&self.bytes[offset as usize..end as usize])
    }

    /// A table of `count` entries of `entsize` bytes at `offset`.
    fn table(&self, what: &str, offset: u64, count: u64, entsize: u64) -> Result<&'a [u8], ElfError> {
        let len = count
            .checked_mul(entsize)
            .ok_or_else(|| self.malformed(format!("the {what} has an impossible count {count}")))?;
        self.range(what, offset, len)
    }

    /// The ELF header, after checking it describes a little-endian x86-64
    /// executable or shared library.
    fn header(&self) -> Result<header::Header, ElfError> {
        let b = self.bytes;
        if &b[..SELFMAG] != ELFMAG {
            return Err(ElfError::NotElf { path: self.path.to_path_buf() });
        }
        if b[EI_CLASS] != ELFCLASS64 {
            let what =
                if b[EI_CLASS] == ELFCLASS32 { "a 32-bit ELF file" } else { "an ELF file of unknown class" };
            return Err(self.unsupported(what));
        }
        if b[EI_DATA] != ELFDATA2LSB {
            return Err(self.unsupported("a big-endian ELF file"));
        }
        let hdr = Elf::parse_header(b).map_err(|e| self.malformed(format!("bad ELF header: {e}")))?;
        if hdr.e_machine != EM_X86_64 {
            let m = hdr.e_machine;
            return Err(
                self.unsupported(format!("an ELF file for {} (e_machine {m})", header::machine_to_str(m)))
            );
        }
        match hdr.e_type {
            ET_EXEC | ET_DYN => Ok(hdr),
            ET_REL => {
                Err(self.unsupported("a relocatable object file (ET_REL); link it into a program first"))
            }
            ET_CORE => Err(self.unsupported("a core dump (ET_CORE)")),
            t => Err(self.unsupported(format!("an ELF file of unknown type e_type {t}"))),
        }
    }

    fn segments(&self, hdr: &header::Header) -> Result<Vec<Segment>, ElfError> {
        let count = u64::from(hdr.e_phnum);
        if count == 0 {
            return Ok(Vec::new());
        }
        if u64::from(hdr.e_phentsize) != PHDR_SIZE {
            return Err(self.malformed(format!("e_phentsize is {}, not {PHDR_SIZE}", hdr.e_phentsize)));
        }
        self.table("program header table", hdr.e_phoff, count, PHDR_SIZE)?;
        let phdrs = ProgramHeader::parse(self.bytes, hdr.e_phoff as usize, count as usize, self.ctx)
            .map_err(|e| self.malformed(format!("bad program headers: {e}")))?;
        Ok(phdrs
            .iter()
            .map(|ph| Segment {
                p_type: ph.p_type,
                flags: ph.p_flags,
                offset: ph.p_offset,
                vaddr: ph.p_vaddr,
                filesz: ph.p_filesz,
            })
            .collect())
    }

    /// The section headers (empty when `e_shoff` is 0), checked to be a real table.
    fn section_headers(&self, hdr: &header::Header) -> Result<Vec<SectionHeader>, ElfError> {
        if hdr.e_shoff == 0 {
            return Ok(Vec::new());
        }
        if u64::from(hdr.e_shentsize) != SHDR_SIZE {
            return Err(self.malformed(format!("e_shentsize is {}, not {SHDR_SIZE}", hdr.e_shentsize)));
        }
        // With e_shnum 0 the count is in the first header's sh_size; goblin reads
        // it from there and bounds it by the file size.
        let count = u64::from(hdr.e_shnum).max(1);
        self.table("section header table", hdr.e_shoff, count, SHDR_SIZE)?;
        let shdrs =
            SectionHeader::parse(self.bytes, hdr.e_shoff as usize, usize::from(hdr.e_shnum), self.ctx)
                .map_err(|e| {
                    self.malformed(format!("bad section header table at e_shoff {:#x}: {e}", hdr.e_shoff))
                })?;
        match shdrs.first() {
            Some(first) if first.sh_type == SHT_NULL => Ok(shdrs),
            _ => Err(self.malformed(format!(
                "the section header table at e_shoff {:#x} does not start with the null section",
                hdr.e_shoff
            ))),
        }
    }

    /// The bytes of a section (empty for SHT_NOBITS).
    fn section_bytes(&self, sh: &SectionHeader, what: &str) -> Result<&'a [u8], ElfError> {
        if sh.sh_type == SHT_NOBITS {
            return Ok(&[]);
        }
        self.range(what, sh.sh_offset, sh.sh_size)
    }

    fn sections(&self, hdr: &header::Header, shdrs: &[SectionHeader]) -> Result<Vec<Section>, ElfError> {
        let names = self.section_names(hdr, shdrs)?;
        Ok(shdrs
            .iter()
            .map(|sh| Section {
                name: names.and_then(|n| cstr(n, sh.sh_name)).unwrap_or_default(),
                sh_type: sh.sh_type,
                flags: sh.sh_flags,
                addr: sh.sh_addr,
                offset: sh.sh_offset,
                size: sh.sh_size,
            })
            .collect())
    }

    /// The section name string table (`e_shstrndx`), if the file has one.
    fn section_names(
        &self,
        hdr: &header::Header,
        shdrs: &[SectionHeader],
    ) -> Result<Option<&'a [u8]>, ElfError> {
        let mut index = usize::from(hdr.e_shstrndx);
        if index == SHN_XINDEX as usize {
            index = shdrs.first().map_or(0, |s| s.sh_link as usize);
        }
        if index == SHN_UNDEF as usize || shdrs.is_empty() {
            return Ok(None);
        }
        match shdrs.get(index) {
            Some(sh) if sh.sh_type == SHT_STRTAB => Ok(Some(self.section_bytes(sh, "section name table")?)),
            _ => Err(self.malformed(format!("e_shstrndx {index} is not a string table section"))),
        }
    }

    /// A symbol table section and its string table, parsed by goblin.
    fn symbols_of(
        &self,
        shdrs: &[SectionHeader],
        sh: &SectionHeader,
        what: &str,
    ) -> Result<(Symtab<'a>, &'a [u8]), ElfError> {
        if sh.sh_entsize != SYM_SIZE {
            return Err(self.malformed(format!("{what} has sh_entsize {}, not {SYM_SIZE}", sh.sh_entsize)));
        }
        let count = sh.sh_size / SYM_SIZE;
        self.table(what, sh.sh_offset, count, SYM_SIZE)?;
        let strtab = match shdrs.get(sh.sh_link as usize) {
            Some(s) if s.sh_type == SHT_STRTAB => {
                self.section_bytes(s, &format!("string table of {what}"))?
            }
            _ => {
                return Err(
                    self.malformed(format!("{what} links to section {}, not a string table", sh.sh_link))
                )
            }
        };
        let table = Symtab::parse(self.bytes, sh.sh_offset as usize, count as usize, self.ctx)
            .map_err(|e| self.malformed(format!("bad {what}: {e}")))?;
        Ok((table, strtab))
    }

    /// The function and undefined symbols of `.symtab`, the `STT_FILE` names, and
    /// whether there is a `.symtab` at all.
    fn symtab(&self, shdrs: &[SectionHeader]) -> Result<(Vec<RawSym>, Vec<String>, bool), ElfError> {
        let Some(sh) = shdrs.iter().find(|s| s.sh_type == SHT_SYMTAB) else {
            return Ok((Vec::new(), Vec::new(), false));
        };
        let (table, strtab) = self.symbols_of(shdrs, sh, ".symtab")?;
        let (mut out, mut files) = (Vec::new(), Vec::new());
        let mut current_file = None;
        for s in table.iter().skip(1) {
            let raw = cstr(strtab, s.st_name).unwrap_or_default();
            if s.st_type() == STT_FILE {
                files.push(raw);
                current_file = Some(files.len() - 1);
                continue;
            }
            let (base, version, hidden) = split_version(&raw);
            let mut r = raw_sym(&s, base, false);
            (r.version, r.hidden) = (version, hidden);
            r.file = if s.st_bind() == STB_LOCAL { current_file } else { None };
            if keep(&r) {
                out.push(r);
            }
        }
        Ok((out, files, true))
    }

    /// The function and undefined symbols of `.dynsym`, with their versions.
    fn dynsym(&self, shdrs: &[SectionHeader]) -> Result<Vec<RawSym>, ElfError> {
        let Some(sh) = shdrs.iter().find(|s| s.sh_type == SHT_DYNSYM) else {
            return Ok(Vec::new());
        };
        let (table, strtab) = self.symbols_of(shdrs, sh, ".dynsym")?;
        let versions = self.versions(shdrs, strtab)?;
        let mut out = Vec::new();
        for (i, s) in table.iter().enumerate().skip(1) {
            let mut r = raw_sym(&s, cstr(strtab, s.st_name).unwrap_or_default(), true);
            if !keep(&r) {
                continue;
            }
            if let Some(vs) = versions.versym.as_ref().and_then(|v| v.get_at(i)) {
                versions.apply(&mut r, vs.vs_val);
            }
            out.push(r);
        }
        Ok(out)
    }

    /// `.gnu.version`, with the names of `.gnu.version_d` and `.gnu.version_r`.
    fn versions(&self, shdrs: &[SectionHeader], dynstr: &'a [u8]) -> Result<Versions<'a>, ElfError> {
        let bad = |what: &str, e: goblin::error::Error| self.malformed(format!("bad {what}: {e}"));
        let versym = VersymSection::parse(self.bytes, shdrs, self.ctx).map_err(|e| bad(".gnu.version", e))?;
        let mut defined = HashMap::new();
        if let Some(verdef) =
            VerdefSection::parse(self.bytes, shdrs, self.ctx).map_err(|e| bad(".gnu.version_d", e))?
        {
            for def in verdef.iter().take(MAX_VERSIONS) {
                if let Some(name) = def.iter().next().and_then(|aux| cstr(dynstr, aux.vda_name)) {
                    defined.insert(def.vd_ndx, name);
                }
            }
        }
        let mut needed = HashMap::new();
        if let Some(verneed) =
            VerneedSection::parse(self.bytes, shdrs, self.ctx).map_err(|e| bad(".gnu.version_r", e))?
        {
            for need in verneed.iter().take(MAX_VERSIONS) {
                let file = cstr(dynstr, need.vn_file);
                for aux in need.iter().take(MAX_VERSIONS) {
                    if let Some(name) = cstr(dynstr, aux.vna_name) {
                        needed.insert(aux.vna_other, (name, file.clone()));
                    }
                }
            }
        }
        Ok(Versions { versym, defined, needed })
    }

    /// `DT_NEEDED`, `DT_SONAME` and `DT_FLAGS_1` from the `PT_DYNAMIC` segment.
    fn dynamic(&self, segments: &[Segment]) -> Result<DynamicInfo, ElfError> {
        let Some(seg) = segments.iter().find(|s| s.p_type == PT_DYNAMIC) else {
            return Ok(DynamicInfo::default());
        };
        let bytes = self.range("dynamic section (PT_DYNAMIC)", seg.offset, seg.filesz)?;
        let (mut needed, mut soname, mut info) = (Vec::new(), None, DynamicInfo::default());
        let (mut strtab, mut strsz) = (None, 0);
        for entry in bytes.chunks_exact(DYN_SIZE) {
            let (tag, val) = (le_u64(&entry[..8]), le_u64(&entry[8..]));
            match tag {
                DT_NULL => break,
                DT_NEEDED => needed.push(val),
                DT_SONAME => soname = Some(val),
                DT_STRTAB => strtab = Some(val),
                DT_STRSZ => strsz = val,
                DT_FLAGS_1 => info.flags_1 = val,
                _ => {}
            }
        }
        if needed.is_empty() && soname.is_none() {
            return Ok(info);
        }
        let strings = self.dynamic_strings(segments, strtab, strsz)?;
        info.needed = needed.iter().filter_map(|&o| cstr(strings, o as usize)).collect();
        info.soname = soname.and_then(|o| cstr(strings, o as usize));
        Ok(info)
    }

    /// The dynamic string table, found through the `PT_LOAD` holding `DT_STRTAB`.
    fn dynamic_strings(
        &self,
        segments: &[Segment],
        strtab: Option<u64>,
        strsz: u64,
    ) -> Result<&'a [u8], ElfError> {
        let addr = strtab
            .ok_or_else(|| self.malformed("the dynamic section names libraries but has no DT_STRTAB"))?;
        let offset = segments
            .iter()
            .filter(|s| s.p_type == PT_LOAD)
            .find_map(|s| vaddr_to_offset(s, addr))
            .ok_or_else(|| {
            self.malformed(format!("DT_STRTAB {addr:#x} is outside every PT_LOAD segment"))
        })?;
        self.range("dynamic string table (DT_STRTAB)", offset, strsz)
    }

    /// The path in `PT_INTERP`.
    fn interp(&self, segments: &[Segment]) -> Result<Option<String>, ElfError> {
        match segments.iter().find(|s| s.p_type == PT_INTERP) {
            Some(seg) => Ok(cstr(self.range("interpreter path (PT_INTERP)", seg.offset, seg.filesz)?, 0)),
            None => Ok(None),
        }
    }
}

/// Version tables of `.dynsym`.
struct Versions<'a> {
    versym: Option<VersymSection<'a>>,
    /// `vd_ndx` -> version name.
    defined: HashMap<u16, String>,
    /// `vna_other` -> (version name, library providing it).
    needed: HashMap<u16, (String, Option<String>)>,
}

impl Versions<'_> {
    /// Fills in the version of `r` from its `.gnu.version` entry `vs`.
    fn apply(&self, r: &mut RawSym, vs: u16) {
        let index = vs & VERSYM_INDEX;
        if index < VER_NDX_FIRST_NAMED {
            return;
        }
        if r.is_undefined() {
            if let Some((name, file)) = self.needed.get(&index) {
                (r.version, r.hidden, r.library) = (Some(name.clone()), true, file.clone());
            }
        } else if let Some(name) = self.defined.get(&index) {
            (r.version, r.hidden) = (Some(name.clone()), vs & VERSYM_HIDDEN != 0);
        }
    }
}

/// Symbols worth keeping: defined functions and imports.
fn keep(r: &RawSym) -> bool {
    !r.base.is_empty() && (r.is_defined_function() || r.is_undefined())
}

fn raw_sym(s: &sym::Sym, base: String, dynamic: bool) -> RawSym {
    RawSym {
        base,
        version: None,
        hidden: false,
        value: s.st_value,
        size: s.st_size,
        shndx: s.st_shndx,
        bind: s.st_bind(),
        typ: s.st_type(),
        dynamic,
        file: None,
        library: None,
    }
}

/// Splits `open@@GLIBC_2.2.5` into (`open`, `GLIBC_2.2.5`, hidden = false) and
/// `memcpy@GLIBC_2.2.5` into (`memcpy`, `GLIBC_2.2.5`, hidden = true).
pub(super) fn split_version(name: &str) -> (String, Option<String>, bool) {
    match name.find('@') {
        Some(at) if at > 0 => {
            let rest = &name[at + 1..];
            match rest.strip_prefix('@') {
                Some(v) => (name[..at].to_string(), Some(v.to_string()), false),
                None => (name[..at].to_string(), Some(rest.to_string()), true),
            }
        }
        _ => (name.to_string(), None, false),
    }
}

/// The NUL-terminated string at `offset` of a string table (lossy UTF-8).
fn cstr(table: &[u8], offset: usize) -> Option<String> {
    let rest = table.get(offset..)?;
    let end = rest.iter().position(|&b| b == 0)?;
    Some(String::from_utf8_lossy(&rest[..end]).into_owned())
}

/// A little-endian u64 from 8 bytes.
fn le_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

/// The file offset of `addr` if segment `s` holds it in its file bytes.
pub(super) fn vaddr_to_offset(s: &Segment, addr: u64) -> Option<u64> {
    let delta = addr.checked_sub(s.vaddr)?;
    (delta < s.filesz).then(|| s.offset.checked_add(delta)).flatten()
}

/// An executable `PT_LOAD` segment.
pub(super) fn is_exec_load(s: &Segment) -> bool {
    s.p_type == PT_LOAD && s.flags & PF_X != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_split_from_names() {
        assert_eq!(split_version("open@@GLIBC_2.2.5"), ("open".into(), Some("GLIBC_2.2.5".into()), false));
        assert_eq!(split_version("memcpy@GLIBC_2.2.5"), ("memcpy".into(), Some("GLIBC_2.2.5".into()), true));
        assert_eq!(split_version("native"), ("native".into(), None, false));
        assert_eq!(split_version("@odd"), ("@odd".into(), None, false));
    }

    #[test]
    fn strings_stop_at_nul_and_at_the_end() {
        let t = b"\0open\0open64\0tail";
        assert_eq!(cstr(t, 1).as_deref(), Some("open"));
        assert_eq!(cstr(t, 6).as_deref(), Some("open64"));
        assert_eq!(cstr(t, 8).as_deref(), Some("en64"));
        assert_eq!(cstr(t, 0).as_deref(), Some(""));
        assert_eq!(cstr(t, 13), None, "no NUL before the end");
        assert_eq!(cstr(t, 100), None);
    }

    #[test]
    fn segment_offsets() {
        let s = Segment { p_type: PT_LOAD, flags: PF_X, offset: 0x1000, vaddr: 0x401000, filesz: 0x200 };
        assert_eq!(vaddr_to_offset(&s, 0x401000), Some(0x1000));
        assert_eq!(vaddr_to_offset(&s, 0x4011ff), Some(0x11ff));
        assert_eq!(vaddr_to_offset(&s, 0x401200), None);
        assert_eq!(vaddr_to_offset(&s, 0x400fff), None);
        assert!(is_exec_load(&s));
    }
}
