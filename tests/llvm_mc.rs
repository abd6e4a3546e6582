//! Cross-checks bpf_asm's encodings against LLVM's BPF assembler (`llvm-mc`).
//!
//! Every instruction form the builder offers is described once as a [`Form`]
//! (what the instruction means), emitted through [`Asm`] and rendered, from that
//! same description, in llvm-mc's syntax (`r1 = *(u64 *)(r6 + 104)`,
//! `if r0 == 0 goto +5`, `call 14`, `r1 = 291 ll`). llvm-mc assembles the text and
//! its bytes must equal ours. Rendering from the meaning, not from our bytes,
//! is what lets a wrong opcode constant fail. [`llvm_text_of_insn`] renders our
//! bytes back to the same syntax as a second, disassembly-direction check.
//!
//! Known differences (checked, not skipped):
//! - `ld_map_fd` has no llvm-mc syntax; it is compared with the plain `ld_imm64` of
//!   the fd, which must differ in exactly one place: the src nibble of byte 1
//!   (`BPF_PSEUDO_MAP_FD` = 1 in ours, 0 in LLVM's).
//! - LLVM 14 (Debian bookworm's `llvm`) has no assembly syntax for `BPF_MOD`,
//!   `BPF_JSET` and `BPF_ST` (store immediate): it rejects them with "invalid
//!   operand for instruction". Those twelve forms are listed in
//!   `newer_llvm_only`; with an llvm-mc that accepts them they are compared
//!   like the rest, with one that rejects them they are reported, and any
//!   other form llvm-mc rejects fails the test. Their bytes are checked literally
//!   by the unit tests in src/bpf_asm/tests.rs.
//!
//! llvm-mc is required: without it the test fails and says to install the `llvm`
//! package (CI installs it).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use trace::bpf_asm::{encode, AluOp, Asm, Helper, Insn, JmpOp, Reg, Size, Src};
use Reg::*;

// ---- Finding llvm-mc ---------------------------------------------------------------

/// `LLVM_MC` if set, else `llvm-mc` on PATH, else the newest `llvm-mc-NN` on PATH,
/// else the newest /usr/lib/llvm-NN/bin/llvm-mc.
fn llvm_mc() -> PathBuf {
    if let Some(p) = std::env::var_os("LLVM_MC") {
        return PathBuf::from(p);
    }
    let path_dirs: Vec<PathBuf> =
        std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect()).unwrap_or_default();
    if let Some(p) = path_dirs.iter().map(|d| d.join("llvm-mc")).find(|p| p.is_file()) {
        return p;
    }
    let versioned = path_dirs.iter().flat_map(|d| versioned_in(d, "llvm-mc-"));
    if let Some((_, p)) = versioned.max_by_key(|(v, _)| *v) {
        return p;
    }
    let lib = versioned_in(Path::new("/usr/lib"), "llvm-")
        .into_iter()
        .map(|(v, dir)| (v, dir.join("bin/llvm-mc")))
        .filter(|(_, p)| p.is_file())
        .max_by_key(|(v, _)| *v);
    match lib {
        Some((_, p)) => p,
        None => panic!(
            "llvm-mc not found (looked at $LLVM_MC, llvm-mc and llvm-mc-NN on PATH, \
             /usr/lib/llvm-*/bin/llvm-mc). This test checks bpf_asm's encodings against \
             LLVM's BPF assembler and does not skip: install Debian's `llvm` package \
             (apt-get install llvm) or set LLVM_MC to the binary"
        ),
    }
}

/// Entries of `dir` named `<prefix><number>`, with that number.
fn versioned_in(dir: &Path, prefix: &str) -> Vec<(u32, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let version = name.strip_prefix(prefix)?.parse().ok()?;
            Some((version, e.path()))
        })
        .collect()
}

/// Runs llvm-mc on `source` with the BPF little-endian triple.
fn run_llvm_mc(args: &[&str], source: &str) -> Result<Vec<u8>, String> {
    let mc = llvm_mc();
    let mut child = Command::new(&mc)
        .arg("-triple=bpfel")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {}: {e}: install Debian's `llvm` package (apt-get install llvm) \
                 or point LLVM_MC at an llvm-mc binary",
                mc.display()
            )
        });
    let mut stdin = child.stdin.take().expect("piped stdin");
    let input = source.to_string();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().expect("llvm-mc finishes");
    writer.join().expect("writer thread").expect("write to llvm-mc");
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The bytes of every `# encoding: [0x..,0x..]` comment of `-show-encoding` output,
/// one entry per instruction.
fn encodings(listing: &str) -> Vec<Vec<u8>> {
    listing
        .lines()
        .filter_map(|l| l.split_once("# encoding: [").map(|(_, rest)| rest))
        .map(|rest| {
            let list = rest.split(']').next().unwrap_or("");
            list.split(',')
                .map(|b| {
                    let hex = b.trim().trim_start_matches("0x");
                    u8::from_str_radix(hex, 16)
                        .unwrap_or_else(|_| panic!("unexpected encoding byte {b:?} in {rest:?}"))
                })
                .collect()
        })
        .collect()
}

/// Assembles `source` one instruction per line; returns each instruction's bytes.
fn show_encoding(source: &str) -> Result<Vec<Vec<u8>>, String> {
    let out = run_llvm_mc(&["-show-encoding"], source)?;
    Ok(encodings(&String::from_utf8_lossy(&out)))
}

/// Assembles `source` into an ELF object and returns its .text section.
fn assemble_text_section(source: &str) -> Vec<u8> {
    let obj = run_llvm_mc(&["-filetype=obj", "-o", "-"], source)
        .unwrap_or_else(|e| panic!("llvm-mc rejected\n{source}\n{e}"));
    let elf = goblin::elf::Elf::parse(&obj).expect("llvm-mc writes ELF");
    let text = elf
        .section_headers
        .iter()
        .find(|sh| elf.shdr_strtab.get_at(sh.sh_name) == Some(".text"))
        .expect("object has .text");
    let start = text.sh_offset as usize;
    obj[start..start + text.sh_size as usize].to_vec()
}

// ---- Instruction forms ------------------------------------------------------------

/// What an instruction means, independent of its encoding. Operands are in the
/// order of the matching [`Asm`] method.
#[derive(Clone, Debug)]
enum Form {
    /// `alu64` (true) or `alu32` (false): op, 64-bit?, dst, src.
    Alu(AluOp, bool, Reg, Src),
    /// `jmp` (true) or `jmp32` (false): op, 64-bit?, dst, src, label.
    Jmp(JmpOp, bool, Reg, Src, &'static str),
    /// `ja`: label.
    Ja(&'static str),
    /// `ldx`: size, dst, src, off.
    Ldx(Size, Reg, Reg, i16),
    /// `stx`: size, dst, off, src.
    Stx(Size, Reg, i16, Reg),
    /// `st`: size, dst, off, imm.
    St(Size, Reg, i16, i32),
    /// `ld_imm64`: dst, imm.
    LdImm64(Reg, u64),
    /// `ld_map_fd`: dst, fd.
    LdMapFd(Reg, i32),
    /// `call`.
    Call(Helper),
    /// `exit`.
    Exit,
}

/// Emits `form` through the builder.
fn emit(a: &mut Asm, form: &Form) {
    match *form {
        Form::Alu(op, true, dst, src) => a.alu64(op, dst, src),
        Form::Alu(op, false, dst, src) => a.alu32(op, dst, src),
        Form::Jmp(op, true, dst, src, label) => a.jmp(op, dst, src, label),
        Form::Jmp(op, false, dst, src, label) => a.jmp32(op, dst, src, label),
        Form::Ja(label) => a.ja(label),
        Form::Ldx(size, dst, src, off) => a.ldx(size, dst, src, off),
        Form::Stx(size, dst, off, src) => a.stx(size, dst, off, src),
        Form::St(size, dst, off, imm) => a.st(size, dst, off, imm),
        Form::LdImm64(dst, imm) => a.ld_imm64(dst, imm),
        Form::LdMapFd(dst, fd) => a.ld_map_fd(dst, fd),
        Form::Call(h) => a.call(h),
        Form::Exit => a.exit(),
    };
}

/// llvm-mc's operator for an ALU operation (`None` for neg, which has its own form).
fn llvm_alu_op(op: AluOp) -> Option<&'static str> {
    Some(match op {
        AluOp::Add => "+=",
        AluOp::Sub => "-=",
        AluOp::Mul => "*=",
        AluOp::Div => "/=",
        AluOp::Or => "|=",
        AluOp::And => "&=",
        AluOp::Lsh => "<<=",
        AluOp::Rsh => ">>=",
        AluOp::Neg => return None,
        AluOp::Mod => "%=",
        AluOp::Xor => "^=",
        AluOp::Mov => "=",
        AluOp::Arsh => "s>>=",
    })
}

/// llvm-mc's comparison operator.
fn llvm_jmp_op(op: JmpOp) -> &'static str {
    match op {
        JmpOp::Jeq => "==",
        JmpOp::Jgt => ">",
        JmpOp::Jge => ">=",
        JmpOp::Jset => "&",
        JmpOp::Jne => "!=",
        JmpOp::Jsgt => "s>",
        JmpOp::Jsge => "s>=",
        JmpOp::Jlt => "<",
        JmpOp::Jle => "<=",
        JmpOp::Jslt => "s<",
        JmpOp::Jsle => "s<=",
    }
}

/// `*(u32 *)(r6 + 104)` / `*(u8 *)(r10 - 4)`: llvm-mc spaces the sign.
fn llvm_mem(size: Size, base: Reg, off: i16) -> String {
    let ty = match size {
        Size::B => "u8",
        Size::H => "u16",
        Size::W => "u32",
        Size::DW => "u64",
    };
    let sign = if off < 0 { '-' } else { '+' };
    format!("*({ty} *)(r{} {sign} {})", base.num(), i32::from(off).abs())
}

/// `r4` / `w4` / `-2`.
fn llvm_src(src: Src, w: char) -> String {
    match src {
        Src::Reg(r) => format!("{w}{}", r.num()),
        Src::Imm(i) => i.to_string(),
    }
}

/// `form` in llvm-mc syntax; `target` renders a jump's label (`+2` or `LBB0_1`).
fn llvm_text(form: &Form, target: &dyn Fn(&str) -> String) -> String {
    let w = |wide: bool| if wide { 'r' } else { 'w' };
    match *form {
        Form::Alu(op, wide, dst, src) => {
            let (w, d) = (w(wide), dst.num());
            match llvm_alu_op(op) {
                None => format!("{w}{d} = -{w}{d}"),
                Some(sym) => format!("{w}{d} {sym} {}", llvm_src(src, w)),
            }
        }
        Form::Jmp(op, wide, dst, src, label) => {
            let (w, sym) = (w(wide), llvm_jmp_op(op));
            let rhs = llvm_src(src, w);
            format!("if {w}{} {sym} {rhs} goto {}", dst.num(), target(label))
        }
        Form::Ja(label) => format!("goto {}", target(label)),
        Form::Ldx(size, dst, src, off) => format!("r{} = {}", dst.num(), llvm_mem(size, src, off)),
        Form::Stx(size, dst, off, src) => format!("{} = r{}", llvm_mem(size, dst, off), src.num()),
        Form::St(size, dst, off, imm) => format!("{} = {imm}", llvm_mem(size, dst, off)),
        Form::LdImm64(dst, imm) => format!("r{} = {} ll", dst.num(), imm as i64),
        // No llvm-mc syntax: the plain ld_imm64 of the fd (see the module docs).
        Form::LdMapFd(dst, fd) => format!("r{} = {fd} ll", dst.num()),
        Form::Call(h) => format!("call {}", h.id()),
        Form::Exit => "exit".to_string(),
    }
}

/// Forms LLVM 14 has no assembly syntax for (see the module docs).
fn newer_llvm_only(form: &Form) -> bool {
    matches!(form, Form::Alu(AluOp::Mod, ..) | Form::Jmp(JmpOp::Jset, ..) | Form::St(..))
}

/// Every form the builder offers, with operands that exercise sign and width.
fn every_form() -> Vec<Form> {
    let mut forms = Vec::new();
    for op in AluOp::ALL {
        for wide in [true, false] {
            let imm = match op {
                AluOp::Lsh | AluOp::Rsh | AluOp::Arsh => 7,
                AluOp::Neg => 0,
                _ => -2,
            };
            forms.push(Form::Alu(op, wide, R3, Src::Imm(imm)));
            if op != AluOp::Neg {
                forms.push(Form::Alu(op, wide, R3, Src::Reg(R4)));
            }
        }
    }
    forms.push(Form::Alu(AluOp::Mov, true, R1, Src::Reg(R10)));
    forms.push(Form::Alu(AluOp::Mov, false, R0, Src::Imm(-1)));
    forms.push(Form::Alu(AluOp::Mov, true, R9, Src::Imm(i32::MAX)));
    forms.push(Form::Alu(AluOp::Add, true, R1, Src::Imm(i32::MIN)));
    for op in JmpOp::ALL {
        for wide in [true, false] {
            for src in [Src::Imm(-2), Src::Reg(R4)] {
                forms.push(Form::Jmp(op, wide, R3, src, "t"));
            }
        }
    }
    forms.push(Form::Ja("t"));
    for size in Size::ALL {
        forms.push(Form::Ldx(size, R3, R4, -8));
        forms.push(Form::Ldx(size, R1, R6, 104));
        forms.push(Form::Stx(size, R10, -8, R4));
        forms.push(Form::Stx(size, R1, i16::MAX, R9));
        forms.push(Form::St(size, R10, -8, -2));
    }
    for imm in [0x123, 0xffff_ffff, u64::MAX, 1 << 63, 0x1122_3344_5566_7788] {
        forms.push(Form::LdImm64(R1, imm));
    }
    forms.push(Form::LdMapFd(R1, 4));
    forms.push(Form::LdMapFd(R9, i32::MAX));
    forms.extend(Helper::ALL.iter().map(|&h| Form::Call(h)));
    forms.push(Form::Exit);
    forms
}

/// The slots `form` assembles to; a jump's label is two instructions ahead.
fn our_insns(form: &Form) -> Vec<Insn> {
    let mut a = Asm::new();
    emit(&mut a, form);
    let width = a.len();
    a.exit().exit().label("t").exit();
    let prog = a.link().unwrap_or_else(|e| panic!("{form:?}: {e}"));
    prog.insns[..width].to_vec()
}

/// The numeric target of the jumps in [`our_insns`].
fn plus_two(_: &str) -> String {
    "+2".to_string()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect::<Vec<_>>().join(" ")
}

// ---- Rendering our bytes back (disassembly direction) ---------------------------

/// `insn` (and the next slot, for ld_imm64) in llvm-mc syntax, decoded from its
/// bytes with bpf_asm's opcode tables. Jumps print their numeric offset.
fn llvm_text_of_insn(insn: &Insn, next: Option<&Insn>) -> String {
    use trace::bpf_asm::opcode::*;
    let reg = |n: u8| Reg::from_num(n).unwrap_or_else(|| panic!("bad register {n}"));
    let class = insn.code & CLASS_MASK;
    let size = Size::from_code(insn.code);
    let (dst, off, imm) = (reg(insn.dst), insn.off, insn.imm);
    let src = match insn.code & SRC_MASK {
        BPF_X => Src::Reg(reg(insn.src)),
        _ => Src::Imm(imm),
    };
    let form = match class {
        BPF_ALU | BPF_ALU64 => {
            let op = AluOp::from_code(insn.code).expect("ALU op");
            Form::Alu(op, class == BPF_ALU64, dst, src)
        }
        BPF_JMP | BPF_JMP32 => match insn.code {
            JA => Form::Ja(""),
            CALL => Form::Call(Helper::from_id(imm).expect("known helper")),
            EXIT => Form::Exit,
            _ => {
                let op = JmpOp::from_code(insn.code).expect("jump op");
                Form::Jmp(op, class == BPF_JMP, dst, src, "")
            }
        },
        BPF_LDX => Form::Ldx(size, dst, reg(insn.src), off),
        BPF_STX => Form::Stx(size, dst, off, reg(insn.src)),
        BPF_ST => Form::St(size, dst, off, imm),
        _ => {
            assert_eq!(insn.code, LD_IMM64, "unexpected opcode {:#04x}", insn.code);
            let hi = next.expect("ld_imm64 second slot").imm as u32;
            Form::LdImm64(dst, u64::from(hi) << 32 | u64::from(imm as u32))
        }
    };
    llvm_text(&form, &move |_| format!("{off:+}"))
}

// ---- Tests --------------------------------------------------------------------------

#[test]
fn every_form_matches_llvm_mc() {
    let forms = every_form();
    let (maybe, always): (Vec<&Form>, Vec<&Form>) = forms.iter().partition(|f| newer_llvm_only(f));

    let source: String = always.iter().map(|f| llvm_text(f, &plus_two) + "\n").collect();
    let llvm = show_encoding(&source).unwrap_or_else(|e| panic!("llvm-mc rejected\n{source}\n{e}"));
    assert_eq!(llvm.len(), always.len(), "one encoding per instruction:\n{source}");
    let mut mismatches: Vec<String> =
        always.iter().zip(&llvm).filter_map(|(form, theirs)| compare(form, theirs)).collect();

    let mut unsupported = Vec::new();
    for form in maybe {
        let text = llvm_text(form, &plus_two);
        match show_encoding(&format!("{text}\n")) {
            Ok(enc) => {
                assert_eq!(enc.len(), 1, "{text}");
                mismatches.extend(compare(form, &enc[0]));
            }
            Err(e) if e.contains("invalid operand for instruction") => unsupported.push(text),
            Err(e) => panic!("llvm-mc failed on `{text}`:\n{e}"),
        }
    }
    if !unsupported.is_empty() {
        eprintln!(
            "this llvm-mc has no syntax for {} forms (checked by the unit tests instead): {}",
            unsupported.len(),
            unsupported.join("; ")
        );
    }
    assert!(mismatches.is_empty(), "bpf_asm and llvm-mc disagree:\n{}", mismatches.join("\n"));
}

/// `None` if our bytes for `form` equal llvm-mc's (map references: see module docs)
/// and read back as the same text; else what differs.
fn compare(form: &Form, theirs: &[u8]) -> Option<String> {
    let insns = our_insns(form);
    let ours = encode(&insns);
    let text = llvm_text(form, &plus_two);
    let mut expected = theirs.to_vec();
    if let Form::LdMapFd(..) = form {
        // Ours carries BPF_PSEUDO_MAP_FD (1) in the src nibble; LLVM's plain load has 0.
        expected[1] |= 0x10;
    }
    if ours != expected {
        return Some(format!("`{text}`: bpf_asm {} / llvm-mc {}", hex(&ours), hex(theirs)));
    }
    // Map references have no llvm-mc syntax of their own to read back as.
    let back = llvm_text_of_insn(&insns[0], insns.get(1));
    if !matches!(form, Form::LdMapFd(..)) && back != text {
        return Some(format!("`{text}`: bpf_asm's bytes read back as `{back}`"));
    }
    None
}

#[test]
fn map_fd_load_differs_from_llvm_only_in_the_src_nibble() {
    let theirs = show_encoding("r1 = 4 ll\n").expect("llvm-mc assembles ld_imm64");
    let ours = encode(&our_insns(&Form::LdMapFd(R1, 4)));
    assert_eq!(hex(&theirs[0]), "18 01 00 00 04 00 00 00 00 00 00 00 00 00 00 00");
    assert_eq!(hex(&ours), "18 11 00 00 04 00 00 00 00 00 00 00 00 00 00 00");
}

#[test]
fn all_forms_are_listed() {
    // 13 ALU ops x 2 widths x {imm, reg}, minus neg's reg form, plus 4 extra movs/adds;
    // 11 comparisons x 2 widths x 2 sources; ja; 4 sizes x 5 memory forms;
    // 5 ld_imm64 values; 2 map references; one call per helper; exit.
    let want = (13 * 2 * 2 - 2 + 4) + 11 * 2 * 2 + 1 + 4 * 5 + 5 + 2 + Helper::ALL.len() + 1;
    assert_eq!(every_form().len(), want);
}

/// A program with forward and backward jumps across ld_imm64s, labelled the way
/// clang labels basic blocks: llvm-mc resolves the labels, bpf_asm must agree.
#[test]
fn label_resolution_matches_llvm_mc() {
    use Form::*;
    let program: Vec<(Option<&'static str>, Form)> = vec![
        (Some("LBB0_1"), Alu(AluOp::Mov, true, R6, Src::Reg(R1))),
        (None, Call(Helper::GetCurrentPidTgid)),
        (None, Jmp(JmpOp::Jeq, true, R0, Src::Imm(0), "LBB0_4")),
        (None, LdImm64(R2, 0xffff_ffff)),
        (Some("LBB0_2"), Jmp(JmpOp::Jsgt, false, R1, Src::Reg(R2), "LBB0_1")),
        (None, LdImm64(R3, 7)),
        (Some("LBB0_3"), Ja("LBB0_2")),
        (None, Ldx(Size::DW, R1, R6, 112)),
        (None, Jmp(JmpOp::Jne, true, R1, Src::Reg(R0), "LBB0_3")),
        (None, Jmp(JmpOp::Jlt, true, R1, Src::Imm(10), "LBB0_5")),
        (Some("LBB0_4"), Alu(AluOp::Mov, true, R0, Src::Imm(0))),
        (Some("LBB0_5"), Exit),
    ];
    let mut a = Asm::new();
    let mut source = String::new();
    for (label, form) in &program {
        if let Some(l) = label {
            a.label(l);
            source.push_str(&format!("{l}:\n"));
        }
        emit(&mut a, form);
        source.push_str(&format!("\t{}\n", llvm_text(form, &|l| l.to_string())));
    }
    let ours = a.link().expect("links");
    let theirs = assemble_text_section(&source);
    assert_eq!(hex(&ours.bytes()), hex(&theirs), "\n{source}\n{}", ours.listing());
    // Slots: 3-4 and 6-7 are ld_imm64s; 9 is the ldx (off 112).
    let offs: Vec<i16> = ours.insns.iter().map(|i| i.off).collect();
    assert_eq!(offs, vec![0, 0, 9, 0, 0, -6, 0, 0, -4, 112, -3, 1, 0, 0]);
}
