//! Tests against real files: the fixture program built by gcc at test time in
//! several ways, and the system's libc. The expected values come from an
//! independent oracle, binutils' readelf, parsed here.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use super::*;

/// The fixture's C source.
const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/elf/prog.c");
const LIBC: &str = "/lib/x86_64-linux-gnu/libc.so.6";
const LIBM: &str = "/lib/x86_64-linux-gnu/libm.so.6";
/// The fixture's own functions.
const OWN: [&str; 3] = ["native", "with_syscall", "with_asm"];
/// Prefix of the per-process fixture directories in the temp dir.
const DIR_PREFIX: &str = "trace-elf-fixtures-";

// ---------------------------------------------------------------- fixtures

/// The fixture built in every way the tests need.
struct Fixtures {
    dir: PathBuf,
    pie: PathBuf,
    nopie: PathBuf,
    static_: PathBuf,
    static_pie: PathBuf,
    /// `-s`: no .symtab.
    stripped: PathBuf,
    /// `-s -rdynamic`: no .symtab, but the program's functions in .dynsym.
    exported: PathBuf,
    /// `-c`: a relocatable object.
    object: PathBuf,
}

fn fixtures() -> &'static Fixtures {
    static F: OnceLock<Fixtures> = OnceLock::new();
    F.get_or_init(build_fixtures)
}

fn build_fixtures() -> Fixtures {
    remove_stale_dirs();
    let dir = std::env::temp_dir().join(format!("{DIR_PREFIX}{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create the fixture directory");
    let builds: [(&str, &[&str]); 7] = [
        ("pie", &[]),
        ("nopie", &["-no-pie", "-fno-pie"]),
        ("static", &["-static"]),
        ("static-pie", &["-static-pie"]),
        ("stripped", &["-s"]),
        ("exported", &["-s", "-rdynamic"]),
        ("prog.o", &["-c"]),
    ];
    std::thread::scope(|s| {
        for (name, flags) in builds {
            let out = dir.join(name);
            s.spawn(move || gcc(&out, flags));
        }
    });
    let p = |n: &str| dir.join(n);
    Fixtures {
        pie: p("pie"),
        nopie: p("nopie"),
        static_: p("static"),
        static_pie: p("static-pie"),
        stripped: p("stripped"),
        exported: p("exported"),
        object: p("prog.o"),
        dir,
    }
}

fn gcc(out: &Path, flags: &[&str]) {
    let mut cmd = Command::new("gcc");
    cmd.args(["-O2", "-Wall"]).args(flags).arg("-o").arg(out).arg(FIXTURE);
    if !flags.contains(&"-c") {
        cmd.arg("-lm");
    }
    let result = cmd.output().expect("run gcc (is it installed?)");
    assert!(result.status.success(), "gcc {flags:?} failed: {}", String::from_utf8_lossy(&result.stderr));
}

/// Removes fixture directories of test processes that no longer run.
fn remove_stale_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix(DIR_PREFIX) else {
            continue;
        };
        if !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

fn open(p: &Path) -> ElfFile {
    ElfFile::open(p).unwrap_or_else(|e| panic!("open {}: {e}", p.display()))
}

/// A scratch file in the fixture directory.
fn scratch(name: &str, bytes: &[u8]) -> PathBuf {
    let p = fixtures().dir.join(name);
    std::fs::write(&p, bytes).expect("write a scratch file");
    p
}

// ---------------------------------------------------------------- readelf oracle

/// One line of `readelf -sW`.
#[derive(Clone, Debug)]
struct OSym {
    table: String,
    value: u64,
    size: u64,
    typ: String,
    bind: String,
    ndx: String,
    /// As readelf prints it: `open@@GLIBC_2.2.5`.
    name: String,
}

impl OSym {
    fn base(&self) -> &str {
        self.name.split('@').next().unwrap_or("")
    }

    fn is_defined_function(&self) -> bool {
        (self.typ == "FUNC" || self.typ == "IFUNC") && self.ndx.parse::<u64>().is_ok_and(|n| n > 0)
    }
}

/// One line of `readelf -SW`.
#[derive(Clone, Debug)]
struct OSection {
    name: String,
    addr: u64,
    off: u64,
    size: u64,
}

/// One LOAD line of `readelf -lW`.
#[derive(Clone, Debug)]
struct OLoad {
    offset: u64,
    vaddr: u64,
    filesz: u64,
    exec: bool,
}

struct Oracle {
    syms: Vec<OSym>,
    sections: Vec<OSection>,
    loads: Vec<OLoad>,
    entry: u64,
    interp: Option<String>,
    needed: Vec<String>,
}

fn readelf(args: &[&str], file: &Path) -> String {
    let out = Command::new("readelf").args(args).arg(file).output().expect("run readelf (binutils)");
    assert!(out.status.success(), "readelf {args:?} {}", file.display());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn num(s: &str) -> u64 {
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16),
        None => s.parse(),
    }
    .unwrap_or_else(|_| panic!("readelf number {s:?}"))
}

fn hex(s: &str) -> u64 {
    u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap_or_else(|_| panic!("readelf hex {s:?}"))
}

fn oracle(file: &Path) -> Oracle {
    Oracle {
        syms: oracle_syms(&readelf(&["-sW"], file)),
        sections: oracle_sections(&readelf(&["-SW"], file)),
        loads: oracle_loads(&readelf(&["-lW"], file)),
        entry: oracle_entry(&readelf(&["-hW"], file)),
        interp: oracle_interp(&readelf(&["-lW"], file)),
        needed: oracle_needed(&readelf(&["-dW"], file)),
    }
}

fn oracle_syms(text: &str) -> Vec<OSym> {
    let mut table = String::new();
    let mut out = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("Symbol table '") {
            table = rest.split('\'').next().unwrap_or("").to_string();
            continue;
        }
        let t: Vec<&str> = line.split_whitespace().collect();
        if t.len() < 8 || !t[0].ends_with(':') || t[0].trim_end_matches(':').parse::<u64>().is_err() {
            continue;
        }
        out.push(OSym {
            table: table.clone(),
            value: hex(t[1]),
            size: num(t[2]),
            typ: t[3].into(),
            bind: t[4].into(),
            ndx: t[6].into(),
            name: t[7].into(),
        });
    }
    out
}

fn oracle_sections(text: &str) -> Vec<OSection> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((index, rest)) = line.trim_start().strip_prefix('[').and_then(|l| l.split_once(']')) else {
            continue;
        };
        let Ok(index) = index.trim().parse::<usize>() else {
            continue;
        };
        let t: Vec<&str> = rest.split_whitespace().collect();
        // Section 0 has an empty name: its first column is the type.
        let t = if index == 0 { [&[""][..], &t[..]].concat() } else { t };
        assert_eq!(out.len(), index, "readelf -S in order");
        out.push(OSection { name: t[0].into(), addr: hex(t[2]), off: hex(t[3]), size: hex(t[4]) });
    }
    out
}

fn oracle_loads(text: &str) -> Vec<OLoad> {
    let mut out = Vec::new();
    for line in text.lines() {
        let t: Vec<&str> = line.split_whitespace().collect();
        if t.first() != Some(&"LOAD") {
            continue;
        }
        // LOAD Offset VirtAddr PhysAddr FileSiz MemSiz Flg... Align
        let flags = &t[6..t.len() - 1];
        out.push(OLoad {
            offset: hex(t[1]),
            vaddr: hex(t[2]),
            filesz: hex(t[4]),
            exec: flags.iter().any(|f| f.contains('E')),
        });
    }
    out
}

fn oracle_entry(text: &str) -> u64 {
    let line = text.lines().find(|l| l.contains("Entry point address:")).expect("readelf -h entry");
    hex(line.split_whitespace().last().unwrap_or(""))
}

fn oracle_interp(text: &str) -> Option<String> {
    let line = text.lines().find(|l| l.contains("Requesting program interpreter:"))?;
    Some(line.split(": ").nth(1)?.trim_end_matches(']').to_string())
}

fn oracle_needed(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.contains("(NEEDED)"))
        .map(|l| l.split('[').nth(1).unwrap_or("").trim_end_matches(']').to_string())
        .collect()
}

/// What the oracle expects for a defined function address.
#[derive(Debug, PartialEq, Eq)]
struct Expected {
    addr: u64,
    offset: u64,
    section: String,
    sh_addr: u64,
    sh_offset: u64,
}

impl Oracle {
    /// The section formula, after checking the PT_LOAD formula agrees.
    fn expect(&self, s: &OSym) -> Expected {
        let sec = &self.sections[s.ndx.parse::<usize>().expect("numeric Ndx")];
        let offset = s.value - sec.addr + sec.off;
        let load = self
            .loads
            .iter()
            .find(|l| l.exec && l.vaddr <= s.value && s.value < l.vaddr + l.filesz)
            .unwrap_or_else(|| panic!("{} in no executable LOAD", s.name));
        assert_eq!(s.value - load.vaddr + load.offset, offset, "PT_LOAD formula for {}", s.name);
        Expected { addr: s.value, offset, section: sec.name.clone(), sh_addr: sec.addr, sh_offset: sec.off }
    }

    /// The one address of the defined functions named `name` (base name, or
    /// the full versioned name when it has an `@`).
    fn function(&self, name: &str) -> Expected {
        let hits: Vec<&OSym> = self
            .syms
            .iter()
            .filter(|s| s.is_defined_function())
            .filter(|s| if name.contains('@') { s.name == name } else { s.base() == name })
            .collect();
        let addrs: BTreeSet<u64> = hits.iter().map(|s| s.value).collect();
        assert_eq!(addrs.len(), 1, "readelf: {name} at {addrs:x?}");
        self.expect(hits[0])
    }

    /// Every defined function address, with the names found there.
    fn addresses(&self) -> BTreeMap<u64, BTreeSet<String>> {
        let mut out: BTreeMap<u64, BTreeSet<String>> = BTreeMap::new();
        for s in self.syms.iter().filter(|s| s.is_defined_function()) {
            out.entry(s.value).or_default().insert(s.base().to_string());
        }
        out
    }
}

fn placed(s: &Symbol) -> Expected {
    Expected {
        addr: s.addr,
        offset: s.offset,
        section: s.section.clone(),
        sh_addr: s.sh_addr,
        sh_offset: s.sh_offset,
    }
}

/// resolve(name) in `file` agrees with readelf on every field it can check.
fn check_resolve(file: &Path, o: &Oracle, name: &str) -> Symbol {
    let sym = open(file).resolve(name).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    assert_eq!(placed(&sym), o.function(name), "{name} in {}", file.display());
    let base = name.split('@').next().unwrap_or(name);
    let sizes: BTreeSet<u64> = o
        .syms
        .iter()
        .filter(|s| s.is_defined_function() && s.value == sym.addr && s.base() == base)
        .map(|s| s.size)
        .collect();
    assert_eq!(Some(&sym.size), sizes.iter().max(), "size of {name}");
    assert_eq!(sym.name, base);
    assert_eq!(sym.kind, SymKind::Func);
    sym
}

// ---------------------------------------------------------------- resolve

#[test]
fn resolve_agrees_with_readelf_in_every_build() {
    let f = fixtures();
    for file in [&f.pie, &f.nopie, &f.static_, &f.static_pie] {
        let o = oracle(file);
        for name in OWN.iter().chain(&["main", "_start"]) {
            check_resolve(file, &o, name);
        }
    }
    for file in [&f.static_, &f.static_pie] {
        let o = oracle(file);
        for name in ["open", "write", "cbrt", "syscall"] {
            check_resolve(file, &o, name);
        }
    }
}

#[test]
fn non_pie_and_pie_offsets_differ_from_addresses_as_expected() {
    let f = fixtures();
    let nopie = open(&f.nopie).resolve("native").unwrap();
    let pie = open(&f.pie).resolve("native").unwrap();
    // Non-PIE code is linked at 0x400000 and up, but offsets stay small.
    assert!(nopie.addr >= 0x400000 && nopie.offset < 0x400000, "{nopie:?}");
    assert!(pie.addr < 0x400000, "{pie:?}");
    assert_eq!(
        nopie.formula(),
        format!(
            "st_value {:#x} - sh_addr {:#x} + sh_offset {:#x} (.text) = {:#x}",
            nopie.addr, nopie.sh_addr, nopie.sh_offset, nopie.offset
        )
    );
}

#[test]
fn libc_functions_agree_with_readelf() {
    let o = oracle(Path::new(LIBC));
    for name in ["open", "open64", "__open", "read", "write", "close", "malloc", "printf", "syscall"] {
        check_resolve(Path::new(LIBC), &o, name);
    }
}

#[test]
fn open_and_its_aliases_are_one_function_in_libc() {
    let libc = open(Path::new(LIBC));
    let o = oracle(Path::new(LIBC));
    let open_ = libc.resolve("open").unwrap();
    for alias in ["open64", "__open", "open@@GLIBC_2.2.5", "open@GLIBC_2.2.5"] {
        let s = libc.resolve(alias).unwrap();
        assert_eq!((s.addr, s.offset), (open_.addr, open_.offset), "{alias}");
    }
    assert!(open_.weak, "open is a weak symbol in libc");
    let names_there: BTreeSet<String> =
        o.addresses()[&open_.addr].iter().filter(|n| *n != "open").cloned().collect();
    assert_eq!(open_.aliases.iter().cloned().collect::<BTreeSet<_>>(), names_there);
    assert!(open_.aliases.contains(&"open64".to_string()) && open_.aliases.contains(&"__open".to_string()));
}

#[test]
fn versions_select_the_right_memcpy() {
    let libc = open(Path::new(LIBC));
    let o = oracle(Path::new(LIBC));
    // The old version is a plain function; the default one is an ifunc.
    let old = check_resolve(Path::new(LIBC), &o, "memcpy@GLIBC_2.2.5");
    assert_eq!(old.name, "memcpy");
    match libc.resolve("memcpy") {
        Err(ResolveError::Ifunc { name, file, resolver }) => {
            assert_eq!((name.as_str(), file.as_path()), ("memcpy", Path::new(LIBC)));
            assert_eq!(placed(&resolver), o.function("memcpy@@GLIBC_2.14"));
            assert_eq!(resolver.kind, SymKind::Ifunc);
            assert_ne!(resolver.addr, old.addr);
        }
        other => panic!("memcpy: {other:?}"),
    }
    match libc.resolve("memcpy@GLIBC_9.9") {
        Err(ResolveError::NotFound { close_matches, .. }) => {
            assert_eq!(close_matches, vec!["memcpy@@GLIBC_2.14", "memcpy@GLIBC_2.2.5"]);
        }
        other => panic!("memcpy@GLIBC_9.9: {other:?}"),
    }
}

#[test]
fn strlen_is_an_ifunc() {
    let libc = open(Path::new(LIBC));
    let o = oracle(Path::new(LIBC));
    let Err(ResolveError::Ifunc { resolver, .. }) = libc.resolve("strlen") else {
        panic!("strlen is not an ifunc")
    };
    assert_eq!(placed(&resolver), o.function("strlen"));
    let message = libc.resolve("strlen").unwrap_err().to_string();
    assert!(
        message.starts_with("`strlen` in /lib/x86_64-linux-gnu/libc.so.6 is an indirect function"),
        "{message}"
    );
}

#[test]
fn imports_name_their_library() {
    let f = fixtures();
    for file in [&f.pie, &f.nopie, &f.stripped] {
        let elf = open(file);
        for (func, lib) in [("open", "libc.so.6"), ("cbrt", "libm.so.6")] {
            match elf.resolve(func) {
                Err(ResolveError::Import { name, file: at, library }) => {
                    assert_eq!(
                        (name.as_str(), at.as_path(), library.as_deref()),
                        (func, file.as_path(), Some(lib))
                    );
                }
                other => panic!("{func} in {}: {other:?}", file.display()),
            }
        }
    }
    let e = open(&f.pie).resolve("open").unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "`open` is not defined in {}: it is imported from libc.so.6; trace it as a library \
             function (`-L open` or `-L libc.so.6:open`)",
            f.pie.display()
        )
    );
}

#[test]
fn stripped_binaries_only_offer_dynsym() {
    let f = fixtures();
    let stripped = open(&f.stripped);
    assert!(!stripped.has_symtab());
    assert!(open(&f.pie).has_symtab());
    match stripped.resolve("native") {
        Err(ResolveError::NotFound { name, stripped: true, close_matches, .. }) => {
            assert_eq!(name, "native");
            assert!(close_matches.is_empty(), "{close_matches:?}");
        }
        other => panic!("native in a stripped binary: {other:?}"),
    }
    assert!(stripped.program_functions().is_empty());
    // The same binary exporting its functions (-rdynamic) keeps them in .dynsym.
    let o = oracle(&f.exported);
    assert!(o.syms.iter().all(|s| s.table == ".dynsym"), "no .symtab left");
    for name in OWN {
        check_resolve(&f.exported, &o, name);
    }
}

#[test]
fn typos_get_suggestions() {
    let f = fixtures();
    let e = open(&f.pie).resolve("nativ").unwrap_err();
    let ResolveError::NotFound { close_matches, stripped: false, .. } = &e else { panic!("{e:?}") };
    assert_eq!(close_matches.first().map(String::as_str), Some("native"));
    assert_eq!(e.to_string(), format!("no function `nativ` in {}; did you mean `native`?", f.pie.display()));
    let e = open(&f.pie).resolve("zzzzzzzz").unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("no function `zzzzzzzz` in {0}; `trace -l {0}` lists its functions", f.pie.display())
    );
}

#[test]
fn entry_symbol_is_start() {
    let f = fixtures();
    for file in [&f.pie, &f.nopie, &f.static_] {
        let o = oracle(file);
        let s = open(file).entry_symbol().unwrap();
        assert_eq!((s.name.as_str(), placed(&s)), ("_start", o.function("_start")));
        assert_eq!(s.addr, o.entry);
    }
    // Stripped: no name, same place.
    let s = open(&f.stripped).entry_symbol().unwrap();
    let o = oracle(&f.stripped);
    let sec = o
        .sections
        .iter()
        .find(|x| x.addr <= o.entry && o.entry < x.addr + x.size && x.name == ".text")
        .unwrap();
    assert_eq!((s.name.as_str(), s.offset), ("(entry)", o.entry - sec.addr + sec.off));
}

// ---------------------------------------------------------------- lists

/// functions() has one entry per defined function address of readelf, with the
/// readelf offset and one of the names readelf shows there.
fn check_functions(file: &Path) {
    let o = oracle(file);
    let expected = o.addresses();
    let got = open(file).functions();
    let got_addrs: Vec<u64> = got.iter().map(|s| s.addr).collect();
    assert_eq!(got_addrs, expected.keys().copied().collect::<Vec<_>>(), "{}", file.display());
    for s in &got {
        assert!(expected[&s.addr].contains(&s.name), "{} at {:#x}", s.name, s.addr);
        let one = o.syms.iter().find(|x| x.is_defined_function() && x.value == s.addr).unwrap();
        assert_eq!(placed(s), o.expect(one), "{} in {}", s.name, file.display());
        let ifunc = o.syms.iter().any(|x| x.is_defined_function() && x.value == s.addr && x.typ == "IFUNC");
        assert_eq!(s.kind == SymKind::Ifunc, ifunc, "{}", s.name);
    }
}

#[test]
fn functions_agree_with_readelf() {
    let f = fixtures();
    for file in [&f.pie, &f.nopie, &f.static_, &f.static_pie, &f.stripped, &f.exported] {
        check_functions(file);
    }
    check_functions(Path::new(LIBC));
    check_functions(Path::new(LIBM));
}

#[test]
fn functions_prefer_non_weak_then_short_plain_names() {
    let libc = open(Path::new(LIBC));
    let open_ = libc.resolve("open").unwrap();
    let shown = libc.functions().into_iter().find(|s| s.addr == open_.addr).unwrap();
    // open, open64, __open, __open64: all weak; the shortest plain one is shown.
    assert_eq!(shown.name, "open");
    let f = fixtures();
    let st = open(&f.static_);
    let write = st.resolve("write").unwrap();
    let o = oracle(&f.static_);
    let at_write: Vec<&OSym> =
        o.syms.iter().filter(|s| s.is_defined_function() && s.value == write.addr).collect();
    let globals: BTreeSet<&str> = at_write.iter().filter(|s| s.bind == "GLOBAL").map(|s| s.base()).collect();
    let shown = st.functions().into_iter().find(|s| s.addr == write.addr).unwrap();
    if !globals.is_empty() {
        assert!(globals.contains(shown.name.as_str()), "{} not among {globals:?}", shown.name);
    }
}

/// The fixture's own functions in address order, per readelf.
fn own_in_address_order(o: &Oracle) -> Vec<String> {
    let mut own: Vec<(u64, &str)> = OWN.iter().map(|n| (o.function(n).addr, *n)).collect();
    own.sort();
    own.into_iter().map(|(_, n)| n.to_string()).collect()
}

#[test]
fn program_functions_are_the_programs_own() {
    let f = fixtures();
    for file in [&f.pie, &f.nopie, &f.static_, &f.static_pie] {
        let o = oracle(file);
        let got = open(file).program_functions();
        let names: Vec<String> = got.iter().map(|s| s.name.clone()).collect();
        assert_eq!(names, own_in_address_order(&o), "{}", file.display());
        for s in &got {
            assert_eq!(placed(s), o.function(&s.name));
        }
    }
}

/// Builds `src` (C source) with gcc and `flags` into the fixture directory
/// (with libm, which the fixture uses).
fn build(name: &str, src: &str, flags: &[&str]) -> PathBuf {
    let c = scratch(&format!("{name}.c"), src.as_bytes());
    let out = fixtures().dir.join(name);
    let result =
        Command::new("gcc").args(flags).arg("-o").arg(&out).arg(&c).arg("-lm").output().expect("run gcc");
    assert!(result.status.success(), "gcc {flags:?}: {}", String::from_utf8_lossy(&result.stderr));
    out
}

fn names(syms: &[Symbol]) -> Vec<&str> {
    syms.iter().map(|s| s.name.as_str()).collect()
}

/// Static programs: the program's functions are told from the program itself,
/// through its DWARF compile units when built with -g (DWARF 5 and 4, and
/// static-pie), through the link order otherwise (the fixtures above, and -gz:
/// compressed debug sections are not read). The C library of the machine is
/// never consulted: see also tests/lab.rs, which runs trace where there is none.
#[test]
fn static_programs_own_functions_come_from_the_program() {
    let src = std::fs::read_to_string(FIXTURE).unwrap();
    let cases: [(&str, &[&str], bool); 5] = [
        ("g5-static", &["-O2", "-g", "-static"], true),
        ("g4-static", &["-O2", "-gdwarf-4", "-static"], true),
        ("g5-static-pie", &["-O2", "-g", "-static-pie"], true),
        ("g0-static", &["-O0", "-g", "-static"], true),
        ("gz-static", &["-O2", "-g", "-gz", "-static"], false),
    ];
    for (name, flags, dwarf) in cases {
        let file = build(name, &src, flags);
        let elf = open(&file);
        assert_eq!(elf.own_compile_units().is_some(), dwarf, "{name}");
        assert_eq!(names(&elf.program_functions()), own_in_address_order(&oracle(&file)), "{name}");
    }
    for file in [&fixtures().static_, &fixtures().static_pie] {
        assert!(open(file).own_compile_units().is_none(), "{}", file.display());
    }
}

/// A program's own `static` function: with -g its compile unit shows it is the
/// program's, as in a dynamic build; without, only global functions count, and
/// those placed after it still do.
#[test]
fn static_functions_of_static_programs() {
    let src = "static __attribute__((noinline)) int helper(int x) { return x * 3; }\n\
               __attribute__((noinline)) int after(int x) { return helper(x) + 1; }\n\
               int main(int c, char **v) { (void)v; return after(c); }\n";
    let g = open(&build("local-g", src, &["-O0", "-g", "-static"]));
    assert_eq!(names(&g.program_functions()), ["helper", "after"]);
    let plain = open(&build("local", src, &["-O0", "-static"]));
    assert_eq!(names(&plain.program_functions()), ["after"]);
}

/// A C library built with debug information, as Rust's musl target ships
/// one: its compile units (compiled in its own build directory, with
/// `__libc_start_main`'s) are left out. Skipped where that libc.a is missing.
#[test]
fn a_c_library_with_debug_information_is_left_out() {
    let home = std::env::var("HOME").unwrap_or_default();
    let Some(musl) = std::fs::read_dir(Path::new(&home).join(".rustup/toolchains")).ok().and_then(|d| {
        d.flatten()
            .map(|e| e.path().join("lib/rustlib/x86_64-unknown-linux-musl/lib/self-contained"))
            .find(|p| p.join("libc.a").is_file())
    }) else {
        eprintln!("skipped: no musl libc.a of a Rust toolchain");
        return;
    };
    let obj = fixtures().dir.join("musl-prog.o");
    let c = Command::new("gcc").args(["-O2", "-g", "-c", "-o"]).arg(&obj).arg(FIXTURE).output().unwrap();
    assert!(c.status.success(), "{}", String::from_utf8_lossy(&c.stderr));
    let out = fixtures().dir.join("musl-static");
    let crt = |f: &str| musl.join(f);
    let libgcc = Command::new("gcc").arg("-print-libgcc-file-name").output().unwrap();
    let libgcc = String::from_utf8_lossy(&libgcc.stdout).trim().to_string();
    let l = Command::new("gcc")
        .args(["-static", "-nostdlib", "-o"])
        .arg(&out)
        .args([crt("crt1.o"), crt("crti.o"), crt("crtbegin.o"), obj.clone(), crt("libc.a")])
        .arg(&libgcc)
        .args([crt("crtend.o"), crt("crtn.o")])
        .output()
        .unwrap();
    assert!(l.status.success(), "{}", String::from_utf8_lossy(&l.stderr));
    let elf = open(&out);
    assert!(elf.own_compile_units().is_some());
    let all = readelf(&["--debug-dump=info"], &out);
    assert!(all.matches("DW_TAG_compile_unit").count() > 10, "the C library has compile units of its own");
    assert_eq!(names(&elf.program_functions()), own_in_address_order(&oracle(&out)));
}

#[test]
fn static_builds_really_contain_the_c_library() {
    // Guards the previous test: the static symbol tables hold thousands of libc
    // and libm functions that program_functions must leave out.
    let f = fixtures();
    for file in [&f.static_, &f.static_pie] {
        let elf = open(file);
        assert!(elf.functions().len() > 500, "{}", file.display());
        assert!(
            elf.resolve("cbrt").is_ok() && elf.resolve("open").is_ok() && elf.resolve("frame_dummy").is_ok()
        );
    }
}

#[test]
fn file_kinds_agree_with_readelf() {
    let f = fixtures();
    // (file, is_static, is_pie, is_shared_library)
    let cases = [
        (f.pie.clone(), false, true, false),
        (f.nopie.clone(), false, false, false),
        (f.static_.clone(), true, false, false),
        (f.static_pie.clone(), true, true, false),
        (f.stripped.clone(), false, true, false),
        (PathBuf::from(LIBC), false, false, true),
        (PathBuf::from(LIBM), false, false, true),
    ];
    for (file, is_static, is_pie, is_lib) in cases {
        let elf = open(&file);
        let o = oracle(&file);
        assert_eq!(
            (elf.is_static(), elf.is_pie(), elf.is_shared_library()),
            (is_static, is_pie, is_lib),
            "{}",
            file.display()
        );
        assert_eq!(elf.needed(), o.needed, "{}", file.display());
        assert_eq!(elf.interpreter(), o.interp, "{}", file.display());
        assert_eq!(elf.entry(), o.entry);
    }
    assert_eq!(open(&f.pie).needed(), vec!["libm.so.6", "libc.so.6"]);
    assert_eq!(open(Path::new(LIBC)).soname().as_deref(), Some("libc.so.6"));
}

// ---------------------------------------------------------------- libraries

#[test]
fn library_functions_through_needed_libraries() {
    let f = fixtures();
    let pie = open(&f.pie);
    let libc_open = oracle(Path::new(LIBC)).function("open");
    let libm_cbrt = oracle(Path::new(LIBM)).function("cbrt");
    let (path, sym) = resolve_library_function(&pie, None, "open", None).unwrap();
    assert_eq!((path.as_path(), placed(&sym)), (Path::new(LIBC), libc_open));
    let (path, sym) = resolve_library_function(&pie, None, "cbrt", None).unwrap();
    assert_eq!((path.as_path(), placed(&sym)), (Path::new(LIBM), libm_cbrt));
    // Named libraries.
    for lib in ["libc", "c", "libc.so.6", LIBC] {
        let (path, sym) = resolve_library_function(&pie, None, "open", Some(lib)).unwrap();
        assert_eq!(
            (path.as_path(), sym.offset),
            (Path::new(LIBC), oracle(Path::new(LIBC)).function("open").offset),
            "{lib}"
        );
    }
    let (path, _) = resolve_library_function(&pie, None, "cbrt", Some("m")).unwrap();
    assert_eq!(path, Path::new(LIBM));
}

#[test]
fn library_function_errors() {
    let f = fixtures();
    let pie = open(&f.pie);
    let ld = ld_cache_lookup("ld-linux-x86-64.so.2").unwrap();
    match resolve_library_function(&pie, None, "no_such_function_xyz", None) {
        Err(LibError::NotFound { func, target, searched, .. }) => {
            assert_eq!(func, "no_such_function_xyz");
            assert_eq!(target, f.pie);
            // DT_NEEDED breadth-first: the program's two, then libc's loader.
            assert_eq!(searched, vec![PathBuf::from(LIBM), PathBuf::from(LIBC), ld]);
        }
        other => panic!("{other:?}"),
    }
    match resolve_library_function(&pie, None, "opn", None) {
        Err(e @ LibError::NotFound { .. }) => {
            let LibError::NotFound { close_matches, .. } = &e else { unreachable!() };
            assert_eq!(close_matches.first().map(String::as_str), Some("open"), "{close_matches:?}");
            assert!(e.to_string().contains("`-L LIBRARY:opn`"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    match resolve_library_function(&pie, None, "memcpy", None) {
        Err(LibError::Resolve { library, source: ResolveError::Ifunc { .. } }) => {
            assert_eq!(library, Path::new(LIBC))
        }
        other => panic!("{other:?}"),
    }
    match resolve_library_function(&pie, None, "open", Some("libnosuchthing")) {
        Err(LibError::NoSuchLibrary { lib, func, .. }) => {
            assert_eq!((lib.as_str(), func.as_str()), ("libnosuchthing", "open"))
        }
        other => panic!("{other:?}"),
    }
    match resolve_library_function(&pie, None, "open", Some("/nonexistent/libx.so")) {
        Err(LibError::Open { source: ElfError::Io { .. }, .. }) => {}
        other => panic!("{other:?}"),
    }
    match resolve_library_function(&pie, Some(u32::MAX), "open", None) {
        Err(LibError::Maps { pid, .. }) => assert_eq!(pid, u32::MAX),
        other => panic!("{other:?}"),
    }
}

#[test]
fn static_programs_resolve_library_functions_in_themselves() {
    let f = fixtures();
    let st = open(&f.static_);
    let (path, sym) = resolve_library_function(&st, None, "open", None).unwrap();
    assert_eq!((path.as_path(), placed(&sym)), (f.static_.as_path(), oracle(&f.static_).function("open")));
}

#[test]
fn static_programs_refuse_library_names() {
    let f = fixtures();
    let st = open(&f.static_);
    match resolve_library_function(&st, None, "open", Some("libc")) {
        Err(e @ LibError::StaticTarget { .. }) => assert_eq!(
            e.to_string(),
            format!(
                "{} is statically linked: it loads no shared library, so `libc` is never used; \
                 its own copy of `open` is traced with `-L open` (or give a library path if the \
                 program dlopens one)",
                f.static_.display()
            )
        ),
        other => panic!("{other:?}"),
    }
    // A path is taken as given.
    let (path, _) = resolve_library_function(&st, None, "open", Some(LIBC)).unwrap();
    assert_eq!(path, Path::new(LIBC));
}

/// The pie fixture, started with `wait`, stopped once it prints "ready".
struct Running(std::process::Child);

impl Running {
    fn start(path: &Path) -> Running {
        let mut child = Command::new(path)
            .arg("wait")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the fixture");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
        assert_eq!(line, "ready\n");
        Running(child)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        let _ = self.0.wait();
    }
}

#[test]
fn library_functions_of_a_running_process() {
    let f = fixtures();
    let run = Running::start(&f.pie);
    let pid = run.0.id();
    let maps = parse_proc_maps(&std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap());
    let canon = |p: &Path| std::fs::canonicalize(p).unwrap();
    let mapped_libc = maps.iter().find(|p| canon(p) == canon(Path::new(LIBC))).expect("libc mapped").clone();
    let pie = open(&f.pie);
    let (path, sym) = resolve_library_function(&pie, Some(pid), "open", None).unwrap();
    assert_eq!(path, mapped_libc, "the path the process maps");
    assert_eq!(sym.offset, oracle(Path::new(LIBC)).function("open").offset);
    let (path, _) = resolve_library_function(&pie, Some(pid), "cbrt", None).unwrap();
    assert_eq!(canon(&path), canon(Path::new(LIBM)));
    // Searched in the dynamic linker's order, as the process maps them.
    let ld = ld_cache_lookup("ld-linux-x86-64.so.2").unwrap();
    match resolve_library_function(&pie, Some(pid), "no_such_function_xyz", None) {
        Err(LibError::NotFound { searched, .. }) => {
            assert!(searched.iter().all(|p| maps.contains(p)), "{searched:?}");
            let order: Vec<PathBuf> = searched.iter().map(|p| canon(p)).collect();
            assert_eq!(order, vec![canon(Path::new(LIBM)), canon(Path::new(LIBC)), canon(&ld)]);
        }
        other => panic!("{other:?}"),
    }
    let mut stdin = run.0.stdin.as_ref().unwrap();
    stdin.write_all(b"x").unwrap();
}

// ---------------------------------------------------------------- ld.so.cache

#[test]
fn the_real_ld_cache_matches_ldconfig() {
    let bytes = std::fs::read(LD_SO_CACHE).unwrap();
    let entries = parse_ld_cache(&bytes).unwrap();
    assert!(entries
        .iter()
        .any(|(s, p, fl)| s == "libc.so.6" && p == Path::new(LIBC) && is_x86_64_libc6(*fl)));
    assert_eq!(ld_cache_lookup("libc.so.6").as_deref(), Some(Path::new(LIBC)));
    assert_eq!(ld_cache_lookup("libm.so.6").as_deref(), Some(Path::new(LIBM)));
    assert_eq!(ld_cache_lookup("libdoes-not-exist.so.9"), None);

    let out = Command::new("ldconfig")
        .arg("-p")
        .output()
        .or_else(|_| Command::new("/sbin/ldconfig").arg("-p").output());
    let text = String::from_utf8(out.expect("ldconfig -p").stdout).unwrap();
    let count: usize = text.lines().next().unwrap().split_whitespace().next().unwrap().parse().unwrap();
    assert_eq!(entries.len(), count, "ldconfig -p says {count} libs");
    let x86_64 = |desc: &str| desc.starts_with("libc6,x86-64");
    let listed: BTreeSet<(String, PathBuf)> = text
        .lines()
        .skip(1)
        .filter_map(|l| {
            let (left, path) = l.trim().split_once(" => ")?;
            let (soname, desc) = left.split_once(" (")?;
            x86_64(desc).then(|| (soname.to_string(), PathBuf::from(path)))
        })
        .collect();
    let ours: BTreeSet<(String, PathBuf)> =
        entries.into_iter().filter(|e| is_x86_64_libc6(e.2)).map(|(s, p, _)| (s, p)).collect();
    assert_eq!(ours, listed);
}

// ---------------------------------------------------------------- bad input

fn expect_err(path: &Path, what: &str) -> ElfError {
    match ElfFile::open(path) {
        Ok(_) => panic!("{what}: opened without error"),
        Err(e) => e,
    }
}

#[test]
fn missing_unreadable_and_non_elf_files() {
    let f = fixtures();
    let e = expect_err(Path::new("/nonexistent/prog"), "missing");
    assert!(matches!(&e, ElfError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound));
    assert_eq!(e.to_string(), "/nonexistent/prog: no such file; check the path");
    assert!(matches!(expect_err(&f.dir, "directory"), ElfError::NotAFile { .. }));
    assert!(matches!(expect_err(&scratch("empty", b""), "empty"), ElfError::Empty { .. }));
    let script = scratch("script.sh", b"#!/bin/sh\necho this is a shell script, not a program\n");
    assert!(matches!(expect_err(&script, "script"), ElfError::NotElf { .. }));
    let mut rng = XorShift(0x9e3779b97f4a7c15);
    let random: Vec<u8> = (0..4096).map(|_| rng.next() as u8).collect();
    assert!(matches!(expect_err(&scratch("random", &random), "random"), ElfError::NotElf { .. }));
}

#[test]
fn other_kinds_of_elf_are_refused() {
    let f = fixtures();
    let good = std::fs::read(&f.pie).unwrap();
    let patched = |name: &str, at: usize, bytes: &[u8]| {
        let mut b = good.clone();
        b[at..at + bytes.len()].copy_from_slice(bytes);
        scratch(name, &b)
    };
    let e = expect_err(&patched("class32", 4, &[1]), "32-bit");
    assert!(matches!(&e, ElfError::Unsupported { what, .. } if what == "a 32-bit ELF file"), "{e}");
    let e = expect_err(&patched("bigendian", 5, &[2]), "big-endian");
    assert!(matches!(&e, ElfError::Unsupported { what, .. } if what == "a big-endian ELF file"), "{e}");
    let e = expect_err(&patched("aarch64", 18, &183u16.to_le_bytes()), "aarch64");
    assert!(matches!(&e, ElfError::Unsupported { what, .. } if what.contains("e_machine 183")), "{e}");
    let e = expect_err(&f.object, "object file");
    assert!(matches!(&e, ElfError::Unsupported { what, .. } if what.contains("ET_REL")), "{e}");
}

#[test]
fn truncated_copies_are_errors() {
    let f = fixtures();
    for file in [&f.pie, &f.static_] {
        let good = std::fs::read(file).unwrap();
        let n = good.len();
        for len in [1, 3, 4, 16, 63, 64, 65, 200, 0x1000, n / 4, n / 2, n * 3 / 4, n - 64, n - 1] {
            let e = expect_err(&scratch("truncated", &good[..len]), &format!("truncated to {len}"));
            match (len, &e) {
                (0..=3, ElfError::NotElf { .. }) => {}
                (4..=63, ElfError::Truncated { what, end: 64, .. }) if what == "ELF header" => {}
                (64.., ElfError::Truncated { size, .. }) => assert_eq!(*size, len as u64),
                _ => panic!("truncated to {len}: {e:?}"),
            }
        }
    }
}

#[test]
fn bytes_in_memory_index_like_the_file() {
    let f = fixtures();
    for file in [&f.pie, &f.static_, &f.exported] {
        let mapped = open(file);
        let owned = ElfFile::from_bytes(file, std::fs::read(file).unwrap()).unwrap();
        assert_eq!(owned.path(), file.as_path());
        assert_eq!(owned.bytes(), mapped.bytes());
        assert_eq!(owned.functions(), mapped.functions(), "{}", file.display());
        assert_eq!(owned.program_functions(), mapped.program_functions());
        assert_eq!(owned.entry_symbol().unwrap(), mapped.entry_symbol().unwrap());
        assert_eq!(owned.resolve("with_asm").unwrap(), mapped.resolve("with_asm").unwrap());
        assert_eq!(
            (owned.is_pie(), owned.is_static(), owned.needed()),
            (mapped.is_pie(), mapped.is_static(), mapped.needed())
        );
    }
    let name = Path::new("in-memory");
    let good = std::fs::read(&f.pie).unwrap();
    let err = |bytes: &[u8]| ElfFile::from_bytes(name, bytes.to_vec()).unwrap_err();
    assert!(matches!(err(b""), ElfError::Empty { path } if path == name));
    assert!(matches!(err(b"#!/bin/sh\n"), ElfError::NotElf { .. }));
    assert!(matches!(err(&good[..10]), ElfError::Truncated { end: 64, size: 10, .. }));
    assert!(matches!(
        err(&good[..good.len() / 2]),
        ElfError::Truncated { size, .. } if size == good.len() as u64 / 2
    ));
}

#[test]
fn bogus_section_header_offsets_are_errors() {
    let f = fixtures();
    let good = std::fs::read(&f.pie).unwrap();
    let n = good.len() as u64;
    // e_shoff is at byte 40 of the ELF header.
    for shoff in [n, n - 10, 1 << 40, u64::MAX - 8, 64, 1, 0x10] {
        let mut b = good.clone();
        b[40..48].copy_from_slice(&shoff.to_le_bytes());
        let e = expect_err(&scratch("bogus-shoff", &b), &format!("e_shoff {shoff:#x}"));
        assert!(
            matches!(e, ElfError::Truncated { .. } | ElfError::Malformed { .. }),
            "e_shoff {shoff:#x}: {e:?}"
        );
    }
}

/// Byte ranges worth corrupting: the headers and the tables the parser reads.
fn interesting_ranges(file: &Path) -> Vec<(usize, usize)> {
    let o = oracle(file);
    let mut out = vec![(0, 64 + 56 * 16)];
    let shoff = readelf(&["-hW"], file)
        .lines()
        .find(|l| l.contains("Start of section headers:"))
        .and_then(|l| l.split_whitespace().nth(4).map(|s| s.parse::<usize>().unwrap()))
        .unwrap();
    out.push((shoff, std::fs::metadata(file).unwrap().len() as usize));
    for s in &o.sections {
        if [".symtab", ".dynsym", ".dynamic", ".gnu.version", ".gnu.version_d", ".gnu.version_r", ".interp"]
            .contains(&s.name.as_str())
        {
            out.push((s.off as usize, (s.off + s.size) as usize));
        }
    }
    out
}

#[test]
fn corrupted_files_never_panic() {
    let f = fixtures();
    let mut rng = XorShift(0x2545f4914f6cdd1d);
    let (mut opened, mut refused) = (0, 0);
    for file in [&f.pie, &f.stripped] {
        let good = std::fs::read(file).unwrap();
        let ranges = interesting_ranges(file);
        for round in 0..300 {
            let mut b = good.clone();
            for _ in 0..1 + rng.next() % 8 {
                let (lo, hi) = ranges[(rng.next() as usize) % ranges.len()];
                let at = lo + (rng.next() as usize) % (hi - lo).max(1);
                if at < b.len() {
                    b[at] = rng.next() as u8;
                }
            }
            let path = scratch("mutant", &b);
            match ElfFile::open(&path) {
                Ok(elf) => {
                    opened += 1;
                    let _ = (elf.functions(), elf.program_functions(), elf.entry_symbol(), elf.needed());
                    let _ = (elf.resolve("native"), elf.resolve("open"), elf.resolve("nativ"), elf.is_pie());
                }
                Err(e) => {
                    refused += 1;
                    assert!(!e.to_string().is_empty(), "round {round}");
                }
            }
        }
    }
    // Both paths were exercised.
    assert!(opened > 20 && refused > 20, "opened {opened}, refused {refused}");
}

/// Debug information is read from untrusted files too: bytes changed
/// anywhere in it (DWARF 5 and 4) give some list of functions, never a panic.
#[test]
fn corrupted_debug_information_never_panics() {
    let src = std::fs::read_to_string(FIXTURE).unwrap();
    let mut rng = XorShift(0x9e3779b97f4a7c15);
    for (name, flags) in [("dbg5", &["-O2", "-g", "-static"]), ("dbg4", &["-O2", "-gdwarf-4", "-static"])] {
        let file = build(name, &src, flags);
        let good = std::fs::read(&file).unwrap();
        let debug: Vec<(usize, usize)> = oracle(&file)
            .sections
            .iter()
            .filter(|s| s.name.starts_with(".debug_") && s.size > 0)
            .map(|s| (s.off as usize, (s.off + s.size) as usize))
            .collect();
        assert!(debug.len() >= 4, "{name}: {debug:?}");
        for _ in 0..150 {
            let mut b = good.clone();
            for _ in 0..1 + rng.next() % 8 {
                let (lo, hi) = debug[(rng.next() as usize) % debug.len()];
                b[lo + (rng.next() as usize) % (hi - lo)] = rng.next() as u8;
            }
            let elf = ElfFile::from_bytes(&file, b).expect("only debug sections changed");
            let _ = elf.program_functions();
        }
    }
}

/// A small deterministic PRNG (xorshift64).
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

// ---------------------------------------------------------------- messages

#[test]
fn messages_name_the_input_and_the_next_step() {
    let stripped = ResolveError::NotFound {
        name: "native".into(),
        file: "./prog".into(),
        close_matches: vec![],
        stripped: true,
    };
    assert_eq!(
        stripped.to_string(),
        "no function `native` in ./prog (./prog is stripped: it has no .symtab, so only the \
         functions it exports in .dynsym can be found; rebuild it without -s or `strip`)"
    );
    let many = ResolveError::NotFound {
        name: "opn".into(),
        file: "libc.so.6".into(),
        close_matches: vec!["open".into(), "pipe".into()],
        stripped: false,
    };
    assert_eq!(many.to_string(), "no function `opn` in libc.so.6; did you mean one of `open`, `pipe`?");
    let lib = LibError::NotFound {
        func: "opn".into(),
        target: "./prog".into(),
        searched: vec!["/lib/libc.so.6".into()],
        close_matches: vec!["open".into()],
    };
    assert_eq!(
        lib.to_string(),
        "no library of ./prog defines a function `opn` (searched /lib/libc.so.6); did you mean \
         `open`? If it lives in a library loaded later (dlopen), name that library: `-L LIBRARY:opn`"
    );
    let t =
        ElfError::Truncated { path: "./p".into(), what: "section header table".into(), end: 900, size: 800 };
    assert_eq!(
        t.to_string(),
        "./p is truncated: its section header table ends at byte 900 but the file has only 800 \
         bytes; rebuild or copy the file again"
    );
}

#[test]
fn names_and_paths_in_messages_are_escaped() {
    use std::os::unix::ffi::OsStrExt;
    let file = std::path::PathBuf::from(std::ffi::OsStr::from_bytes(b"./p\x1b]0;t\x07\xff"));
    let e = ResolveError::NotFound {
        name: "na\ntive".into(),
        file: file.clone(),
        close_matches: vec!["nat\x1b[2Jive".into()],
        stripped: false,
    };
    assert_eq!(e.to_string(), r"no function `na\ntive` in ./p\33]0;t\7\377; did you mean `nat\33[2Jive`?");
    let e = ResolveError::Import { name: "op\ren".into(), file, library: Some("libc\x07".into()) };
    assert_eq!(
        e.to_string(),
        r"`op\ren` is not defined in ./p\33]0;t\7\377: it is imported from libc\7; trace it as a library function (`-L op\ren` or `-L libc\7:op\ren`)"
    );
}

// ---------------------------------------------------------------- inconsistent files

#[test]
fn section_and_segment_disagreeing_is_an_error_not_a_wrong_offset() {
    let f = fixtures();
    let o = oracle(&f.pie);
    let mut b = std::fs::read(&f.pie).unwrap();
    let text = o.sections.iter().position(|s| s.name == ".text").unwrap();
    let shoff = u64::from_le_bytes(b[40..48].try_into().unwrap()) as usize;
    // Elf64_Shdr.sh_offset is at byte 24 of the header.
    let at = shoff + text * 64 + 24;
    let moved = u64::from_le_bytes(b[at..at + 8].try_into().unwrap()) + 0x10;
    b[at..at + 8].copy_from_slice(&moved.to_le_bytes());
    let elf = open(&scratch("moved-text", &b));
    match elf.resolve("native") {
        Err(ResolveError::BadOffset { name, detail, .. }) => {
            assert_eq!(name, "native");
            assert!(detail.starts_with("section .text puts address"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    assert!(elf.functions().iter().all(|s| s.section != ".text"));
    assert!(elf.program_functions().is_empty());
}

/// Two translation units, each with its own `static` function `helper`.
const UNIT_A: &str = "__attribute__((noinline)) static int helper(int x) { return x * 3; }\n\
                      int twice_a(int x) { return helper(x) + helper(x + 1); }\n";
const UNIT_B: &str = "__attribute__((noinline)) static int helper(int x) { return x ^ 0x55; }\n\
                      int twice_a(int);\n\
                      int main(int argc, char **argv) { (void)argv; return helper(argc) + twice_a(argc); }\n";

#[test]
fn same_named_static_functions_are_ambiguous() {
    let f = fixtures();
    let (a, b) = (f.dir.join("unit_a.c"), f.dir.join("unit_b.c"));
    std::fs::write(&a, UNIT_A).unwrap();
    std::fs::write(&b, UNIT_B).unwrap();
    let out = f.dir.join("two-helpers");
    let status = Command::new("gcc").args(["-O2", "-o"]).arg(&out).arg(&a).arg(&b).status().unwrap();
    assert!(status.success());
    let o = oracle(&out);
    let expected: BTreeSet<u64> = o.syms.iter().filter(|s| s.base() == "helper").map(|s| s.value).collect();
    assert_eq!(expected.len(), 2, "gcc kept both helpers");
    let elf = open(&out);
    match elf.resolve("helper") {
        Err(ResolveError::Ambiguous { name, candidates, .. }) => {
            assert_eq!(name, "helper");
            assert_eq!(candidates.iter().map(|s| s.addr).collect::<BTreeSet<_>>(), expected);
        }
        other => panic!("{other:?}"),
    }
    // Both are the program's own functions (static functions count in a
    // dynamically linked program).
    let names: Vec<String> = elf.program_functions().into_iter().map(|s| s.name).collect();
    assert_eq!(names.iter().filter(|n| *n == "helper").count(), 2, "{names:?}");
    assert!(names.contains(&"twice_a".to_string()));
}
