//! Unit tests: byte encodings written out from include/uapi/linux/bpf.h and
//! bpf_common.h, verifier text from kernel/bpf/disasm.c, label resolution.

use super::*;
use Reg::*;

/// Bytes from a string of hex pairs ("bf a1 00 ..."): the expected values below are
/// written out by hand from the opcode tables of the UAPI headers.
fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace().map(|b| u8::from_str_radix(b, 16).expect("hex byte")).collect()
}

/// The bytes of a program built by `build`.
fn bytes_of(build: impl FnOnce(&mut Asm) -> &mut Asm) -> Vec<u8> {
    let mut a = Asm::new();
    build(&mut a);
    a.link().expect("program links").bytes()
}

/// The first slot of a jump to a label one instruction past the next (`off` = 1).
fn jump_bytes(emit: impl FnOnce(&mut Asm) -> &mut Asm) -> Vec<u8> {
    let bytes = bytes_of(|a| emit(a).exit().label("t").exit());
    bytes[..8].to_vec()
}

// ---- 1. Encoding of every instruction form ------------------------------------------

/// (op, 64-bit?, immediate or None for the register form r4, expected bytes);
/// dst is r3, so byte 1 is 0x03 (imm) or 0x43 (src r4 in the high nibble).
const ALU_CASES: &[(AluOp, bool, Option<i32>, &str)] = &[
    (AluOp::Add, true, Some(-2), "07 03 00 00 fe ff ff ff"),
    (AluOp::Add, true, None, "0f 43 00 00 00 00 00 00"),
    (AluOp::Sub, true, Some(-2), "17 03 00 00 fe ff ff ff"),
    (AluOp::Sub, true, None, "1f 43 00 00 00 00 00 00"),
    (AluOp::Mul, true, Some(-2), "27 03 00 00 fe ff ff ff"),
    (AluOp::Mul, true, None, "2f 43 00 00 00 00 00 00"),
    (AluOp::Div, true, Some(-2), "37 03 00 00 fe ff ff ff"),
    (AluOp::Div, true, None, "3f 43 00 00 00 00 00 00"),
    (AluOp::Or, true, Some(-2), "47 03 00 00 fe ff ff ff"),
    (AluOp::Or, true, None, "4f 43 00 00 00 00 00 00"),
    (AluOp::And, true, Some(-2), "57 03 00 00 fe ff ff ff"),
    (AluOp::And, true, None, "5f 43 00 00 00 00 00 00"),
    (AluOp::Lsh, true, Some(7), "67 03 00 00 07 00 00 00"),
    (AluOp::Lsh, true, None, "6f 43 00 00 00 00 00 00"),
    (AluOp::Rsh, true, Some(7), "77 03 00 00 07 00 00 00"),
    (AluOp::Rsh, true, None, "7f 43 00 00 00 00 00 00"),
    (AluOp::Neg, true, Some(0), "87 03 00 00 00 00 00 00"),
    (AluOp::Mod, true, Some(-2), "97 03 00 00 fe ff ff ff"),
    (AluOp::Mod, true, None, "9f 43 00 00 00 00 00 00"),
    (AluOp::Xor, true, Some(-2), "a7 03 00 00 fe ff ff ff"),
    (AluOp::Xor, true, None, "af 43 00 00 00 00 00 00"),
    (AluOp::Mov, true, Some(-2), "b7 03 00 00 fe ff ff ff"),
    (AluOp::Mov, true, None, "bf 43 00 00 00 00 00 00"),
    (AluOp::Arsh, true, Some(7), "c7 03 00 00 07 00 00 00"),
    (AluOp::Arsh, true, None, "cf 43 00 00 00 00 00 00"),
    (AluOp::Add, false, Some(-2), "04 03 00 00 fe ff ff ff"),
    (AluOp::Add, false, None, "0c 43 00 00 00 00 00 00"),
    (AluOp::Sub, false, Some(-2), "14 03 00 00 fe ff ff ff"),
    (AluOp::Sub, false, None, "1c 43 00 00 00 00 00 00"),
    (AluOp::Mul, false, Some(-2), "24 03 00 00 fe ff ff ff"),
    (AluOp::Mul, false, None, "2c 43 00 00 00 00 00 00"),
    (AluOp::Div, false, Some(-2), "34 03 00 00 fe ff ff ff"),
    (AluOp::Div, false, None, "3c 43 00 00 00 00 00 00"),
    (AluOp::Or, false, Some(-2), "44 03 00 00 fe ff ff ff"),
    (AluOp::Or, false, None, "4c 43 00 00 00 00 00 00"),
    (AluOp::And, false, Some(-2), "54 03 00 00 fe ff ff ff"),
    (AluOp::And, false, None, "5c 43 00 00 00 00 00 00"),
    (AluOp::Lsh, false, Some(7), "64 03 00 00 07 00 00 00"),
    (AluOp::Lsh, false, None, "6c 43 00 00 00 00 00 00"),
    (AluOp::Rsh, false, Some(7), "74 03 00 00 07 00 00 00"),
    (AluOp::Rsh, false, None, "7c 43 00 00 00 00 00 00"),
    (AluOp::Neg, false, Some(0), "84 03 00 00 00 00 00 00"),
    (AluOp::Mod, false, Some(-2), "94 03 00 00 fe ff ff ff"),
    (AluOp::Mod, false, None, "9c 43 00 00 00 00 00 00"),
    (AluOp::Xor, false, Some(-2), "a4 03 00 00 fe ff ff ff"),
    (AluOp::Xor, false, None, "ac 43 00 00 00 00 00 00"),
    (AluOp::Mov, false, Some(-2), "b4 03 00 00 fe ff ff ff"),
    (AluOp::Mov, false, None, "bc 43 00 00 00 00 00 00"),
    (AluOp::Arsh, false, Some(7), "c4 03 00 00 07 00 00 00"),
    (AluOp::Arsh, false, None, "cc 43 00 00 00 00 00 00"),
];

fn src_of(imm: Option<i32>) -> Src {
    imm.map_or(Src::Reg(R4), Src::Imm)
}

#[test]
fn alu_encodings() {
    for &(op, is64, imm, want) in ALU_CASES {
        let got =
            bytes_of(|a| if is64 { a.alu64(op, R3, src_of(imm)) } else { a.alu32(op, R3, src_of(imm)) });
        assert_eq!(got, hex(want), "{op:?} 64-bit={is64} imm={imm:?}");
    }
}

#[test]
fn alu_table_covers_every_form() {
    for op in AluOp::ALL {
        for is64 in [true, false] {
            let has = |reg: bool| {
                ALU_CASES.iter().any(|&(o, b, imm, _)| o == op && b == is64 && imm.is_none() == reg)
            };
            assert!(has(false), "{op:?} 64={is64} imm form missing");
            // neg has no register form: the verifier rejects BPF_NEG | BPF_X.
            assert_eq!(has(true), op != AluOp::Neg, "{op:?} 64={is64} reg form");
        }
    }
}

#[test]
fn alu_examples_from_the_brief() {
    assert_eq!(bytes_of(|a| a.mov64(R1, R10)), hex("bf a1 00 00 00 00 00 00"));
    assert_eq!(bytes_of(|a| a.mov32(R0, -1)), hex("b4 00 00 00 ff ff ff ff"));
    assert_eq!(bytes_of(|a| a.add64(R1, -8)), hex("07 01 00 00 f8 ff ff ff"));
    assert_eq!(bytes_of(|a| a.mov64(R9, 0x7fff_ffff)), hex("b7 09 00 00 ff ff ff 7f"));
}

#[test]
fn alu_shortcuts_match_the_general_form() {
    type Short = fn(&mut Asm, Reg, Src) -> &mut Asm;
    let table: [(AluOp, Short, Short); 12] = [
        (AluOp::Mov, |a, d, s| a.mov64(d, s), |a, d, s| a.mov32(d, s)),
        (AluOp::Add, |a, d, s| a.add64(d, s), |a, d, s| a.add32(d, s)),
        (AluOp::Sub, |a, d, s| a.sub64(d, s), |a, d, s| a.sub32(d, s)),
        (AluOp::Mul, |a, d, s| a.mul64(d, s), |a, d, s| a.mul32(d, s)),
        (AluOp::Div, |a, d, s| a.div64(d, s), |a, d, s| a.div32(d, s)),
        (AluOp::Mod, |a, d, s| a.mod64(d, s), |a, d, s| a.mod32(d, s)),
        (AluOp::And, |a, d, s| a.and64(d, s), |a, d, s| a.and32(d, s)),
        (AluOp::Or, |a, d, s| a.or64(d, s), |a, d, s| a.or32(d, s)),
        (AluOp::Xor, |a, d, s| a.xor64(d, s), |a, d, s| a.xor32(d, s)),
        (AluOp::Lsh, |a, d, s| a.lsh64(d, s), |a, d, s| a.lsh32(d, s)),
        (AluOp::Rsh, |a, d, s| a.rsh64(d, s), |a, d, s| a.rsh32(d, s)),
        (AluOp::Arsh, |a, d, s| a.arsh64(d, s), |a, d, s| a.arsh32(d, s)),
    ];
    for (op, short64, short32) in table {
        for src in [Src::Reg(R4), Src::Imm(3)] {
            assert_eq!(bytes_of(|a| short64(a, R3, src)), bytes_of(|a| a.alu64(op, R3, src)));
            assert_eq!(bytes_of(|a| short32(a, R3, src)), bytes_of(|a| a.alu32(op, R3, src)));
        }
    }
    assert_eq!(bytes_of(|a| a.neg64(R3)), hex("87 03 00 00 00 00 00 00"));
    assert_eq!(bytes_of(|a| a.neg32(R3)), hex("84 03 00 00 00 00 00 00"));
}

/// (op, 64-bit class?, immediate or None for r4, expected first slot);
/// dst r3, offset +1.
const JMP_CASES: &[(JmpOp, bool, Option<i32>, &str)] = &[
    (JmpOp::Jeq, true, Some(-2), "15 03 01 00 fe ff ff ff"),
    (JmpOp::Jeq, true, None, "1d 43 01 00 00 00 00 00"),
    (JmpOp::Jgt, true, Some(-2), "25 03 01 00 fe ff ff ff"),
    (JmpOp::Jgt, true, None, "2d 43 01 00 00 00 00 00"),
    (JmpOp::Jge, true, Some(-2), "35 03 01 00 fe ff ff ff"),
    (JmpOp::Jge, true, None, "3d 43 01 00 00 00 00 00"),
    (JmpOp::Jset, true, Some(-2), "45 03 01 00 fe ff ff ff"),
    (JmpOp::Jset, true, None, "4d 43 01 00 00 00 00 00"),
    (JmpOp::Jne, true, Some(-2), "55 03 01 00 fe ff ff ff"),
    (JmpOp::Jne, true, None, "5d 43 01 00 00 00 00 00"),
    (JmpOp::Jsgt, true, Some(-2), "65 03 01 00 fe ff ff ff"),
    (JmpOp::Jsgt, true, None, "6d 43 01 00 00 00 00 00"),
    (JmpOp::Jsge, true, Some(-2), "75 03 01 00 fe ff ff ff"),
    (JmpOp::Jsge, true, None, "7d 43 01 00 00 00 00 00"),
    (JmpOp::Jlt, true, Some(-2), "a5 03 01 00 fe ff ff ff"),
    (JmpOp::Jlt, true, None, "ad 43 01 00 00 00 00 00"),
    (JmpOp::Jle, true, Some(-2), "b5 03 01 00 fe ff ff ff"),
    (JmpOp::Jle, true, None, "bd 43 01 00 00 00 00 00"),
    (JmpOp::Jslt, true, Some(-2), "c5 03 01 00 fe ff ff ff"),
    (JmpOp::Jslt, true, None, "cd 43 01 00 00 00 00 00"),
    (JmpOp::Jsle, true, Some(-2), "d5 03 01 00 fe ff ff ff"),
    (JmpOp::Jsle, true, None, "dd 43 01 00 00 00 00 00"),
    (JmpOp::Jeq, false, Some(-2), "16 03 01 00 fe ff ff ff"),
    (JmpOp::Jeq, false, None, "1e 43 01 00 00 00 00 00"),
    (JmpOp::Jgt, false, Some(-2), "26 03 01 00 fe ff ff ff"),
    (JmpOp::Jgt, false, None, "2e 43 01 00 00 00 00 00"),
    (JmpOp::Jge, false, Some(-2), "36 03 01 00 fe ff ff ff"),
    (JmpOp::Jge, false, None, "3e 43 01 00 00 00 00 00"),
    (JmpOp::Jset, false, Some(-2), "46 03 01 00 fe ff ff ff"),
    (JmpOp::Jset, false, None, "4e 43 01 00 00 00 00 00"),
    (JmpOp::Jne, false, Some(-2), "56 03 01 00 fe ff ff ff"),
    (JmpOp::Jne, false, None, "5e 43 01 00 00 00 00 00"),
    (JmpOp::Jsgt, false, Some(-2), "66 03 01 00 fe ff ff ff"),
    (JmpOp::Jsgt, false, None, "6e 43 01 00 00 00 00 00"),
    (JmpOp::Jsge, false, Some(-2), "76 03 01 00 fe ff ff ff"),
    (JmpOp::Jsge, false, None, "7e 43 01 00 00 00 00 00"),
    (JmpOp::Jlt, false, Some(-2), "a6 03 01 00 fe ff ff ff"),
    (JmpOp::Jlt, false, None, "ae 43 01 00 00 00 00 00"),
    (JmpOp::Jle, false, Some(-2), "b6 03 01 00 fe ff ff ff"),
    (JmpOp::Jle, false, None, "be 43 01 00 00 00 00 00"),
    (JmpOp::Jslt, false, Some(-2), "c6 03 01 00 fe ff ff ff"),
    (JmpOp::Jslt, false, None, "ce 43 01 00 00 00 00 00"),
    (JmpOp::Jsle, false, Some(-2), "d6 03 01 00 fe ff ff ff"),
    (JmpOp::Jsle, false, None, "de 43 01 00 00 00 00 00"),
];

#[test]
fn jump_encodings() {
    for &(op, is64, imm, want) in JMP_CASES {
        let got = jump_bytes(|a| {
            if is64 {
                a.jmp(op, R3, src_of(imm), "t")
            } else {
                a.jmp32(op, R3, src_of(imm), "t")
            }
        });
        assert_eq!(got, hex(want), "{op:?} 64-bit={is64} imm={imm:?}");
    }
}

#[test]
fn jump_table_covers_every_form() {
    for op in JmpOp::ALL {
        for is64 in [true, false] {
            for reg in [true, false] {
                let n = JMP_CASES
                    .iter()
                    .filter(|&&(o, b, imm, _)| o == op && b == is64 && imm.is_none() == reg)
                    .count();
                assert_eq!(n, 1, "{op:?} 64={is64} reg={reg}");
            }
        }
    }
}

#[test]
fn ja_call_exit_encodings() {
    assert_eq!(jump_bytes(|a| a.ja("t")), hex("05 00 01 00 00 00 00 00"));
    assert_eq!(bytes_of(|a| a.call(Helper::ProbeReadUserStr)), hex("85 00 00 00 72 00 00 00"));
    assert_eq!(bytes_of(|a| a.call(Helper::RingbufOutput)), hex("85 00 00 00 82 00 00 00"));
    assert_eq!(bytes_of(|a| a.exit()), hex("95 00 00 00 00 00 00 00"));
}

#[test]
fn load_store_encodings() {
    let cases: [(Size, &str, &str, &str); 4] = [
        (Size::B, "71 43 f8 ff 00 00 00 00", "73 4a f8 ff 00 00 00 00", "72 0a f8 ff fe ff ff ff"),
        (Size::H, "69 43 f8 ff 00 00 00 00", "6b 4a f8 ff 00 00 00 00", "6a 0a f8 ff fe ff ff ff"),
        (Size::W, "61 43 f8 ff 00 00 00 00", "63 4a f8 ff 00 00 00 00", "62 0a f8 ff fe ff ff ff"),
        (Size::DW, "79 43 f8 ff 00 00 00 00", "7b 4a f8 ff 00 00 00 00", "7a 0a f8 ff fe ff ff ff"),
    ];
    for (size, ldx, stx, st) in cases {
        assert_eq!(bytes_of(|a| a.ldx(size, R3, R4, -8)), hex(ldx), "ldx {size:?}");
        assert_eq!(bytes_of(|a| a.stx(size, R10, -8, R4)), hex(stx), "stx {size:?}");
        assert_eq!(bytes_of(|a| a.st(size, R10, -8, -2)), hex(st), "st {size:?}");
    }
    assert_eq!(bytes_of(|a| a.ldx(Size::DW, R1, R6, 104)), hex("79 61 68 00 00 00 00 00"));
    assert_eq!(bytes_of(|a| a.stx(Size::W, R10, -4, R0)), hex("63 0a fc ff 00 00 00 00"));
}

#[test]
fn ld_imm64_encodings() {
    assert_eq!(
        bytes_of(|a| a.ld_imm64(R1, 0x1122_3344_5566_7788)),
        hex("18 01 00 00 88 77 66 55  00 00 00 00 44 33 22 11")
    );
    assert_eq!(
        bytes_of(|a| a.ld_imm64(R3, 0xffff_ffff)),
        hex("18 03 00 00 ff ff ff ff  00 00 00 00 00 00 00 00")
    );
    // src = BPF_PSEUDO_MAP_FD (1) in the high nibble, imm = the fd.
    assert_eq!(bytes_of(|a| a.ld_map_fd(R2, 4)), hex("18 12 00 00 04 00 00 00  00 00 00 00 00 00 00 00"));
    let mut a = Asm::new();
    a.ld_imm64(R1, 1);
    assert_eq!(a.len(), 2, "ld_imm64 takes two slots");
}

#[test]
fn insn_byte_layout() {
    let insn = Insn::new(0xbf, 1, 10, -2, 0x0102_0304);
    assert_eq!(insn.to_bytes(), [0xbf, 0xa1, 0xfe, 0xff, 0x04, 0x03, 0x02, 0x01]);
    assert_eq!(Insn::from_bytes(&insn.to_bytes()), insn);
    // Only the low nibbles go into byte 1.
    assert_eq!(Insn::new(0, 0x1f, 0x2e, 0, 0).to_bytes()[1], 0xef);
}

// ---- 2. Round trip and verifier text ---------------------------------------------

/// A program using every form the builder offers.
fn every_form() -> Program {
    let mut a = Asm::new();
    a.label("top");
    for op in AluOp::ALL {
        let imm = if matches!(op, AluOp::Lsh | AluOp::Rsh | AluOp::Arsh) { 5 } else { -7 };
        let imm = if op == AluOp::Neg { 0 } else { imm };
        a.alu64(op, R1, imm).alu32(op, R2, imm);
        if op != AluOp::Neg {
            a.alu64(op, R3, R4).alu32(op, R5, R6);
        }
    }
    for op in JmpOp::ALL {
        a.jmp(op, R1, -3, "end").jmp(op, R2, R3, "top");
        a.jmp32(op, R4, 9, "end").jmp32(op, R5, R6, "top");
    }
    for size in Size::ALL {
        a.ldx(size, R7, R8, -100).stx(size, R10, -16, R9).st(size, R10, 24, -5);
    }
    a.ld_imm64(R1, 0xdead_beef_0000_0001).ld_map_fd(R2, 7).ja("top");
    for &h in Helper::ALL {
        a.call(h);
    }
    a.label("end").exit();
    a.link().expect("every_form links")
}

#[test]
fn assemble_encode_decode_round_trip() {
    let prog = every_form();
    let decoded = decode(&prog.bytes()).expect("decodes");
    assert_eq!(decoded, prog.insns);
    assert_eq!(disasm(&decoded), prog.disasm());
    assert_eq!(encode(&decoded), prog.bytes());
}

#[test]
fn decode_rejects_bad_lengths() {
    assert_eq!(decode(&[0; 7]), Err(AsmError::BadLength(7)));
    assert_eq!(decode(&[0; 12]), Err(AsmError::BadLength(12)));
    assert_eq!(decode(&[]), Ok(vec![]));
    let lone_half = hex("95 00 00 00 00 00 00 00  18 01 00 00 01 00 00 00");
    assert_eq!(decode(&lone_half), Err(AsmError::TruncatedLdImm64 { slot: 1 }));
}

/// The verifier text of the first instruction `build` emits (jumps target "t",
/// bound three instructions later, or "b", bound at the very start).
fn text_of(build: impl FnOnce(&mut Asm) -> &mut Asm) -> String {
    let mut a = Asm::new();
    a.label("b").exit().exit().exit();
    let first = a.len();
    build(&mut a);
    a.exit().exit().label("t").exit();
    let prog = a.link().expect("links");
    disasm_insn(&prog.insns[first], prog.insns.get(first + 1))
}

#[test]
fn verifier_text_table() {
    type Build = fn(&mut Asm) -> &mut Asm;
    let table: &[(Build, &str)] = &[
        (|a| a.mov64(R1, R10), "r1 = r10"),
        (|a| a.add64(R1, -8), "r1 += -8"),
        (|a| a.mov32(R0, R1), "w0 = w1"),
        (|a| a.add32(R1, 5), "w1 += 5"),
        (|a| a.mov32(R0, -1), "w0 = -1"),
        (|a| a.mov64(R0, 0), "r0 = 0"),
        (|a| a.neg64(R0), "r0 = -r0"),
        (|a| a.neg32(R2), "w2 = -w2"),
        (|a| a.sub64(R1, R2), "r1 -= r2"),
        (|a| a.mul32(R3, 3), "w3 *= 3"),
        (|a| a.div64(R4, R5), "r4 /= r5"),
        (|a| a.or32(R1, 16), "w1 |= 16"),
        (|a| a.and64(R1, 255), "r1 &= 255"),
        (|a| a.lsh64(R1, 32), "r1 <<= 32"),
        (|a| a.rsh32(R1, R2), "w1 >>= w2"),
        (|a| a.mod64(R7, 10), "r7 %= 10"),
        (|a| a.xor32(R0, R0), "w0 ^= w0"),
        (|a| a.arsh64(R1, R2), "r1 s>>= r2"),
        (|a| a.arsh32(R1, 31), "w1 s>>= 31"),
        (|a| a.ldx(Size::DW, R1, R6, 104), "r1 = *(u64 *)(r6 +104)"),
        (|a| a.ldx(Size::B, R2, R1, 0), "r2 = *(u8 *)(r1 +0)"),
        (|a| a.ldx(Size::H, R2, R1, -2), "r2 = *(u16 *)(r1 -2)"),
        (|a| a.stx(Size::W, R10, -4, R0), "*(u32 *)(r10 -4) = r0"),
        (|a| a.stx(Size::B, R10, -1, R9), "*(u8 *)(r10 -1) = r9"),
        (|a| a.st(Size::DW, R10, -16, 0), "*(u64 *)(r10 -16) = 0"),
        (|a| a.st(Size::H, R10, -16, -1), "*(u16 *)(r10 -16) = -1"),
        (|a| a.jmp(JmpOp::Jeq, R0, 0, "t"), "if r0 == 0x0 goto pc+2"),
        (|a| a.jmp32(JmpOp::Jgt, R1, 5, "t"), "if w1 > 0x5 goto pc+2"),
        (|a| a.jmp(JmpOp::Jsgt, R1, R2, "b"), "if r1 s> r2 goto pc-4"),
        (|a| a.jmp(JmpOp::Jsgt, R1, -1, "t"), "if r1 s> 0xffffffff goto pc+2"),
        (|a| a.jmp(JmpOp::Jset, R1, 0x100, "t"), "if r1 & 0x100 goto pc+2"),
        (|a| a.jmp32(JmpOp::Jne, R1, R2, "t"), "if w1 != w2 goto pc+2"),
        (|a| a.ja("t"), "goto pc+2"),
        (|a| a.ja("b"), "goto pc-4"),
        (|a| a.call(Helper::ProbeReadUserStr), "call bpf_probe_read_user_str#114"),
        (|a| a.call(Helper::GetCurrentPidTgid), "call bpf_get_current_pid_tgid#14"),
        (|a| a.exit(), "exit"),
        (|a| a.ld_imm64(R1, 0x123), "r1 = 0x123"),
        (|a| a.ld_imm64(R3, 0xffff_ffff), "r3 = 0xffffffff"),
        (|a| a.ld_imm64(R3, u64::MAX), "r3 = 0xffffffffffffffff"),
        (|a| a.ld_imm64(R0, 0), "r0 = 0x0"),
        (|a| a.ld_map_fd(R1, 4), "r1 = map[fd:4]"),
    ];
    for (build, want) in table {
        assert_eq!(text_of(|a| build(a)), *want);
    }
}

#[test]
fn verifier_operator_text_for_every_op() {
    let alu = ["+=", "-=", "*=", "/=", "|=", "&=", "<<=", ">>=", "", "%=", "^=", "=", "s>>="];
    for (op, sym) in AluOp::ALL.into_iter().zip(alu) {
        if op == AluOp::Neg {
            continue;
        }
        assert_eq!(text_of(|a| a.alu64(op, R1, 3)), format!("r1 {sym} 3"));
        assert_eq!(text_of(|a| a.alu32(op, R1, R2)), format!("w1 {sym} w2"));
    }
    let jmp = ["==", ">", ">=", "&", "!=", "s>", "s>=", "<", "<=", "s<", "s<="];
    for (op, sym) in JmpOp::ALL.into_iter().zip(jmp) {
        assert_eq!(text_of(|a| a.jmp(op, R1, 3, "t")), format!("if r1 {sym} 0x3 goto pc+2"));
        assert_eq!(text_of(|a| a.jmp32(op, R1, R2, "b")), format!("if w1 {sym} w2 goto pc-4"));
    }
}

#[test]
fn verifier_line_keeps_the_opcode_prefix() {
    let insn = Insn::new(0x79, 1, 6, 104, 0);
    assert_eq!(verifier_line(&insn, None), "(79) r1 = *(u64 *)(r6 +104)");
    let call = Insn::new(0x85, 0, 0, 0, 5);
    assert_eq!(verifier_line(&call, None), "(85) call bpf_ktime_get_ns#5");
}

/// Instructions the builder does not emit, decoded from other programs: text as
/// kernel/bpf/disasm.c prints it.
#[test]
fn disasm_of_other_instructions() {
    let map_value = [Insn::new(0x18, 1, 2, 0, 3), Insn::new(0, 0, 0, 0, 16)];
    let map_idx = [Insn::new(0x18, 2, 5, 0, 0), Insn::new(0, 0, 0, 0, 0)];
    let map_idx_value = [Insn::new(0x18, 2, 6, 0, 1), Insn::new(0, 0, 0, 0, 8)];
    let btf_id = [Insn::new(0x18, 2, 3, 0, 77), Insn::new(0, 0, 0, 0, 0)];
    let cases: &[(&[Insn], &str)] = &[
        (&[Insn::new(0xdc, 1, 0, 0, 16)], "r1 = be16 r1"),
        (&[Insn::new(0xd4, 1, 0, 0, 32)], "r1 = le32 r1"),
        (&[Insn::new(0xd7, 3, 0, 0, 64)], "r3 = bswap64 r3"),
        (&[Insn::new(0xbf, 1, 2, 8, 0)], "r1 = (s8)r2"),
        (&[Insn::new(0xbc, 1, 2, 16, 0)], "w1 = (s16)w2"),
        (&[Insn::new(0xbf, 1, 2, 32, 0)], "r1 = (s32)r2"),
        (&[Insn::new(0x3f, 1, 2, 1, 0)], "r1 s/= r2"),
        (&[Insn::new(0x94, 1, 0, 1, 7)], "w1 s%= 7"),
        (&[Insn::new(0xbf, 1, 2, 1, 0x0001_0000)], "r1 = addr_space_cast(r2, 1, 0)"),
        (&[Insn::new(0xbf, 1, 2, -1, 0)], "r1 = &(void __percpu *)(r2)"),
        (&[Insn::new(0x91, 1, 2, 4, 0)], "r1 = *(s8 *)(r2 +4)"),
        (&[Insn::new(0x81, 1, 2, 4, 0)], "r1 = *(s32 *)(r2 +4)"),
        (&[Insn::new(0xdb, 1, 2, 0, 0x00)], "lock *(u64 *)(r1 +0) += r2"),
        (&[Insn::new(0xc3, 1, 2, 8, 0x50)], "lock *(u32 *)(r1 +8) &= r2"),
        (&[Insn::new(0xdb, 1, 2, 0, 0x41)], "r2 = atomic64_fetch_or((u64 *)(r1 +0), r2)"),
        (&[Insn::new(0xc3, 1, 2, -8, 0xa1)], "r2 = atomic_fetch_xor((u32 *)(r1 -8), r2)"),
        (&[Insn::new(0xdb, 1, 2, 0, 0xe1)], "r2 = atomic64_xchg((u64 *)(r1 +0), r2)"),
        (&[Insn::new(0xdb, 1, 2, 0, 0xf1)], "r0 = atomic64_cmpxchg((u64 *)(r1 +0), r0, r2)"),
        (&[Insn::new(0xdb, 3, 1, 0, 0x100)], "r3 = load_acquire((u64 *)(r1 +0))"),
        (&[Insn::new(0xdb, 1, 3, 0, 0x110)], "store_release((u64 *)(r1 +0), r3)"),
        (&[Insn::new(0xdb, 1, 3, 0, 0x20)], "BUG_db"),
        (&[Insn::new(0x30, 0, 0, 0, 14)], "r0 = *(u8 *)skb[14]"),
        (&[Insn::new(0x48, 0, 7, 0, 2)], "r0 = *(u16 *)skb[r7 + 2]"),
        (&[Insn::new(0x08, 0, 0, 0, 0)], "BUG_ld_08"),
        (&[Insn::new(0xe1, 0, 0, 0, 0)], "BUG_ldx_e1"),
        (&[Insn::new(0xc2, 0, 0, 0, 0)], "nospec"),
        (&[Insn::new(0x22, 0, 0, 0, 0)], "BUG_st_22"),
        (&[Insn::new(0x85, 0, 1, 0, -5)], "call pc-5"),
        (&[Insn::new(0x85, 0, 2, 0, 1234)], "call kernel-function#1234"),
        (&[Insn::new(0x85, 0, 0, 0, 9999)], "call unknown#9999"),
        (&[Insn::new(0x06, 0, 0, 0, 70000)], "gotol pc+70000"),
        (&[Insn::new(0xe5, 0, 0, 3, 0)], "may_goto pc+3"),
        (&[Insn::new(0x0d, 4, 0, 0, 0)], "gotox r4"),
        (&[Insn::new(0xf5, 1, 0, 1, 2)], "if r1 (null) 0x2 goto pc+1"),
        (&map_value, "r1 = map[fd:3][0]+16"),
        (&map_idx, "r2 = map[idx:0]"),
        (&map_idx_value, "r2 = map[idx:1][0]+8"),
        (&btf_id, "r2 = 0x4d"),
        (&[Insn::new(0x18, 1, 0, 0, 5)], "r1 = 0x5 <truncated ld_imm64>"),
    ];
    for (insns, want) in cases {
        assert_eq!(disasm(insns), vec![want.to_string()], "{insns:?}");
    }
}

#[test]
fn listing_shows_slots_comments_and_labels() {
    let mut a = Asm::new();
    a.comment("filter").mov64(R6, R1).call(Helper::GetCurrentPidTgid);
    a.jmp(JmpOp::Jeq, R0, 0, "out");
    a.comment("output").ld_map_fd(R2, 4).mov64(R1, R6);
    a.label("out").mov64(R0, 0).exit();
    let prog = a.link().expect("links");
    let want = "\
; filter
0: (bf) r6 = r1
1: (85) call bpf_get_current_pid_tgid#14
2: (15) if r0 == 0x0 goto pc+3  ; -> out
; output
3: (18) r2 = map[fd:4]
5: (bf) r1 = r6
out:
6: (b7) r0 = 0
7: (95) exit
";
    assert_eq!(prog.listing(), want);
    assert_eq!(prog.comments, vec![(0, "filter".to_string()), (3, "output".to_string())]);
    assert_eq!(prog.labels, vec![(6, "out".to_string())]);
    assert_eq!(prog.disasm().len(), 7, "ld_imm64 is one line");
}

#[test]
fn listing_pads_slot_numbers() {
    let mut a = Asm::new();
    for _ in 0..10 {
        a.mov64(R0, 1);
    }
    a.exit();
    let listing = a.link().expect("links").listing();
    let lines: Vec<&str> = listing.lines().collect();
    assert_eq!(lines[0], " 0: (b7) r0 = 1");
    assert_eq!(lines[10], "10: (95) exit");
}

// ---- 3. Labels -------------------------------------------------------------------------

#[test]
fn forward_and_backward_offsets() {
    let mut a = Asm::new();
    a.label("start").mov64(R0, 0); // 0
    a.jmp(JmpOp::Jeq, R1, 0, "fwd"); // 1 -> 4: off 2
    a.mov64(R0, 1).mov64(R0, 2); // 2, 3
    a.label("fwd").ja("start"); // 4 -> 0: off -5
    a.jmp32(JmpOp::Jne, R1, R2, "fwd"); // 5 -> 4: off -2
    a.ja("next").label("next").exit(); // 6 -> 7: off 0
    let prog = a.link().expect("links");
    let offs: Vec<i16> = prog.insns.iter().map(|i| i.off).collect();
    assert_eq!(offs, vec![0, 2, 0, 0, -5, -2, 0, 0]);
}

#[test]
fn ld_imm64_counts_two_slots_in_offsets() {
    let mut a = Asm::new();
    a.label("top").jmp(JmpOp::Jeq, R1, 0, "after"); // slot 0
    a.ld_imm64(R2, 1).ld_map_fd(R3, 5); // slots 1-2, 3-4
    a.label("after").jmp(JmpOp::Jne, R1, 0, "top"); // slot 5 -> 0: -6
    a.exit();
    let prog = a.link().expect("links");
    assert_eq!(prog.insns[0].off, 4);
    assert_eq!(prog.insns[5].off, -6);
    assert_eq!(prog.insns.len(), 7);
}

#[test]
fn undefined_label_is_an_error() {
    let mut a = Asm::new();
    a.ja("nowhere").exit();
    assert_eq!(a.link(), Err(AsmError::UndefinedLabel("nowhere".to_string())));
}

#[test]
fn duplicate_label_is_an_error() {
    let mut a = Asm::new();
    a.label("x").exit().label("x").exit();
    assert_eq!(a.link(), Err(AsmError::DuplicateLabel("x".to_string())));
}

#[test]
fn label_after_the_last_instruction_is_an_error_when_used() {
    let mut a = Asm::new();
    a.ja("end").exit().label("end");
    assert_eq!(a.link(), Err(AsmError::LabelAtEnd("end".to_string())));
    let mut unused = Asm::new();
    unused.exit().label("end");
    assert!(unused.link().is_ok());
}

fn jump_over(n: usize) -> Result<Program, AsmError> {
    let mut a = Asm::new();
    a.ja("far");
    for _ in 0..n {
        a.mov64(R0, 0);
    }
    a.label("far").exit();
    a.link()
}

fn jump_back_over(n: usize) -> Result<Program, AsmError> {
    let mut a = Asm::new();
    a.label("far");
    for _ in 0..n {
        a.mov64(R0, 0);
    }
    a.ja("far").exit();
    a.link()
}

#[test]
fn out_of_range_jumps_are_errors() {
    assert_eq!(
        jump_over(40_000).err(),
        Some(AsmError::JumpOutOfRange { label: "far".to_string(), from: 0, distance: 40_000 })
    );
    assert_eq!(jump_over(32_767).expect("fits").insns[0].off, i16::MAX);
    assert_eq!(
        jump_over(32_768).err(),
        Some(AsmError::JumpOutOfRange { label: "far".to_string(), from: 0, distance: 32_768 })
    );
    // Backward: the jump at slot n reaches slot 0 with off = -(n + 1).
    assert_eq!(jump_back_over(32_767).expect("fits").insns[32_767].off, i16::MIN);
    assert_eq!(
        jump_back_over(32_768).err(),
        Some(AsmError::JumpOutOfRange { label: "far".to_string(), from: 32_768, distance: -32_769 })
    );
}

#[test]
fn builder_mistakes_are_link_errors() {
    let invalid = |build: fn(&mut Asm) -> &mut Asm| build(&mut Asm::new()).link().err();
    assert_eq!(
        invalid(|a| a.exit().mov64(R10, R1)),
        Some(AsmError::InvalidInsn {
            slot: 1,
            insn: "r10 = r1".to_string(),
            reason: "r10 is the read-only frame pointer: copy it to another register first \
                     (e.g. mov64(R1, R10)) and change that one"
                .to_string(),
        })
    );
    let reason = |e: Option<AsmError>| match e {
        Some(AsmError::InvalidInsn { reason, .. }) => reason,
        other => panic!("expected InvalidInsn, got {other:?}"),
    };
    assert!(reason(invalid(|a| a.add64(R10, 8))).starts_with("r10 is the read-only"));
    assert!(reason(invalid(|a| a.ldx(Size::W, R10, R1, 0))).starts_with("r10 is the read-only"));
    assert!(reason(invalid(|a| a.ld_imm64(R10, 0))).starts_with("r10 is the read-only"));
    assert_eq!(
        reason(invalid(|a| a.alu64(AluOp::Neg, R3, R4))),
        "neg takes no source operand: pass 0 or use neg64(R3)"
    );
    assert_eq!(reason(invalid(|a| a.lsh64(R1, 64))), "a 64-bit shift by 64 is out of range: shift by 0..=63");
    assert_eq!(
        reason(invalid(|a| a.arsh32(R1, -1))),
        "a 32-bit shift by -1 is out of range: shift by 0..=31"
    );
    assert_eq!(reason(invalid(|a| a.mod32(R1, 0))), "division by the constant 0: the verifier rejects it");
    // Stores through r10 are fine: it is only the register that is read-only.
    assert!(Asm::new().stx(Size::W, R10, -4, R1).st(Size::W, R10, -8, 0).link().is_ok());
    assert!(Asm::new().rsh64(R1, 63).rsh32(R1, 31).div64(R1, R2).link().is_ok());
}

#[test]
fn error_messages_name_the_input_and_the_fix() {
    assert_eq!(
        AsmError::UndefinedLabel("out".to_string()).to_string(),
        "jump to label `out`, which is never bound: bind it with .label(\"out\") before the \
         instruction the jump should reach"
    );
    assert_eq!(
        AsmError::JumpOutOfRange { label: "far".to_string(), from: 3, distance: 40_000 }.to_string(),
        "the jump at slot 3 to label `far` spans 40000 instructions, but a BPF jump offset \
         must lie in -32768..=32767: move the target closer or split the program"
    );
    assert_eq!(
        AsmError::BadLength(12).to_string(),
        "12 bytes is not a whole number of 8-byte BPF instructions: the program image is \
         truncated or is not BPF bytecode"
    );
}

// ---- Helpers and registers ---------------------------------------------------------------

#[test]
fn helper_ids_and_names() {
    let expected: &[(Helper, i32, &str)] = &[
        (Helper::MapLookupElem, 1, "bpf_map_lookup_elem"),
        (Helper::MapUpdateElem, 2, "bpf_map_update_elem"),
        (Helper::MapDeleteElem, 3, "bpf_map_delete_elem"),
        (Helper::ProbeRead, 4, "bpf_probe_read"),
        (Helper::KtimeGetNs, 5, "bpf_ktime_get_ns"),
        (Helper::TracePrintk, 6, "bpf_trace_printk"),
        (Helper::GetSmpProcessorId, 8, "bpf_get_smp_processor_id"),
        (Helper::GetCurrentPidTgid, 14, "bpf_get_current_pid_tgid"),
        (Helper::GetCurrentUidGid, 15, "bpf_get_current_uid_gid"),
        (Helper::GetCurrentComm, 16, "bpf_get_current_comm"),
        (Helper::PerfEventOutput, 25, "bpf_perf_event_output"),
        (Helper::GetStackid, 27, "bpf_get_stackid"),
        (Helper::GetCurrentTask, 35, "bpf_get_current_task"),
        (Helper::ProbeReadStr, 45, "bpf_probe_read_str"),
        (Helper::ProbeReadUser, 112, "bpf_probe_read_user"),
        (Helper::ProbeReadKernel, 113, "bpf_probe_read_kernel"),
        (Helper::ProbeReadUserStr, 114, "bpf_probe_read_user_str"),
        (Helper::ProbeReadKernelStr, 115, "bpf_probe_read_kernel_str"),
        (Helper::RingbufOutput, 130, "bpf_ringbuf_output"),
        (Helper::RingbufQuery, 134, "bpf_ringbuf_query"),
    ];
    for &(h, id, name) in expected {
        assert_eq!(h.id(), id, "{h:?}");
        assert_eq!(h.name(), name, "{h:?}");
        assert_eq!(Helper::from_id(id), Some(h));
    }
    assert_eq!(Helper::from_id(0), None);
    assert_eq!(Helper::from_id(-1), None);
    assert_eq!(Helper::from_id(100_000), None);
    assert_eq!(Helper::ProbeReadUserStr.to_string(), "bpf_probe_read_user_str#114");
}

#[test]
fn helper_table_is_consistent() {
    for pair in Helper::ALL.windows(2) {
        assert!(pair[0].id() < pair[1].id(), "{:?} before {:?}", pair[0], pair[1]);
    }
    for &h in Helper::ALL {
        assert_eq!(Helper::from_id(h.id()), Some(h));
        assert!(h.name().starts_with("bpf_"), "{h:?}");
    }
}

#[test]
fn register_numbers() {
    for (n, r) in Reg::ALL.into_iter().enumerate() {
        assert_eq!(usize::from(r.num()), n);
        assert_eq!(Reg::from_num(n as u8), Some(r));
        assert_eq!(r.to_string(), format!("r{n}"));
    }
    assert_eq!(Reg::from_num(11), None);
}
