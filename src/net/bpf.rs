//! A small eBPF assembler: typed registers and operations, conditional
//! jumps to labels resolved when the program is finished, so that the
//! ipv4root programs read like the code they are.
//!
//! Encodings follow include/uapi/linux/bpf.h and the kernel's
//! include/linux/filter.h macros (BPF_MOV64_IMM, BPF_LDX_MEM, BPF_JMP32_IMM,
//! BPF_LD_IMM64, ...). Only instructions of Linux 6.1 and older are offered.

pub use crate::sys::bpf::Insn;

/// Registers: r0 result, r1-r5 arguments (clobbered by calls), r6-r9
/// callee-saved, r10 the read-only frame pointer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reg {
    R0,
    R1,
    R2,
    R3,
    R4,
    R5,
    R6,
    R7,
    R8,
    R9,
    R10,
}

/// Memory access sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    B,
    H,
    W,
    DW,
}

impl Size {
    fn code(self) -> u8 {
        match self {
            Size::W => 0x00,
            Size::H => 0x08,
            Size::B => 0x10,
            Size::DW => 0x18,
        }
    }
}

/// Arithmetic operations (BPF_ALU / BPF_ALU64 op field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alu {
    Add = 0x00,
    Sub = 0x10,
    Mul = 0x20,
    Div = 0x30,
    Or = 0x40,
    And = 0x50,
    Lsh = 0x60,
    Rsh = 0x70,
    Mod = 0x90,
    Xor = 0xa0,
    Mov = 0xb0,
    Arsh = 0xc0,
}

/// Jump conditions (BPF_JMP / BPF_JMP32 op field); `S` ones are signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cond {
    Eq = 0x10,
    Gt = 0x20,
    Ge = 0x30,
    Set = 0x40,
    Ne = 0x50,
    Sgt = 0x60,
    Sge = 0x70,
    Lt = 0xa0,
    Le = 0xb0,
    Slt = 0xc0,
    Sle = 0xd0,
}

// Instruction classes, sources and modes.
const LD: u8 = 0x00;
const LDX: u8 = 0x01;
const ST: u8 = 0x02;
const STX: u8 = 0x03;
const ALU: u8 = 0x04;
const JMP: u8 = 0x05;
const JMP32: u8 = 0x06;
const ALU64: u8 = 0x07;
const K: u8 = 0x00;
const X: u8 = 0x08;
const IMM: u8 = 0x00;
const MEM: u8 = 0x60;
const CALL: u8 = 0x80;
const EXIT: u8 = 0x90;

/// A jump target, bound to a position with [`Asm::bind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Label(usize);

/// A program being assembled.
#[derive(Debug, Default)]
pub struct Asm {
    insns: Vec<Insn>,
    /// Where each label is bound (an instruction index).
    labels: Vec<Option<usize>>,
    /// Jumps whose offset is filled in by `finish`: (instruction, target).
    fixups: Vec<(usize, Label)>,
}

impl Asm {
    pub fn new() -> Self {
        Self::default()
    }

    fn emit(&mut self, code: u8, dst: Reg, src: Reg, off: i16, imm: i32) -> &mut Self {
        self.insns.push(Insn {
            code,
            regs: ((src as u8) << 4) | dst as u8,
            off,
            imm,
        });
        self
    }

    /// A new, unbound label.
    pub fn label(&mut self) -> Label {
        self.labels.push(None);
        Label(self.labels.len() - 1)
    }

    /// Binds `label` to the next instruction.
    pub fn bind(&mut self, label: Label) -> &mut Self {
        self.labels[label.0] = Some(self.insns.len());
        self
    }

    /// `dst op= imm` on 64 bits (the immediate is sign-extended).
    pub fn alu64_imm(&mut self, op: Alu, dst: Reg, imm: i32) -> &mut Self {
        self.emit(ALU64 | op as u8 | K, dst, Reg::R0, 0, imm)
    }

    /// `dst op= src` on 64 bits.
    pub fn alu64_reg(&mut self, op: Alu, dst: Reg, src: Reg) -> &mut Self {
        self.emit(ALU64 | op as u8 | X, dst, src, 0, 0)
    }

    /// `dst op= imm` on the low 32 bits; the upper 32 are zeroed.
    pub fn alu32_imm(&mut self, op: Alu, dst: Reg, imm: i32) -> &mut Self {
        self.emit(ALU | op as u8 | K, dst, Reg::R0, 0, imm)
    }

    /// `dst op= src` on the low 32 bits; the upper 32 are zeroed.
    pub fn alu32_reg(&mut self, op: Alu, dst: Reg, src: Reg) -> &mut Self {
        self.emit(ALU | op as u8 | X, dst, src, 0, 0)
    }

    /// `dst = imm` sign-extended to 64 bits.
    pub fn mov64_imm(&mut self, dst: Reg, imm: i32) -> &mut Self {
        self.alu64_imm(Alu::Mov, dst, imm)
    }

    /// `dst = src`.
    pub fn mov64_reg(&mut self, dst: Reg, src: Reg) -> &mut Self {
        self.alu64_reg(Alu::Mov, dst, src)
    }

    /// `dst = imm` as 32 bits, zero-extended.
    pub fn mov32_imm(&mut self, dst: Reg, imm: u32) -> &mut Self {
        self.alu32_imm(Alu::Mov, dst, imm as i32)
    }

    /// `dst = imm`, a full 64-bit constant (two instruction slots).
    pub fn ld_imm64(&mut self, dst: Reg, imm: u64) -> &mut Self {
        self.emit(LD | Size::DW.code() | IMM, dst, Reg::R0, 0, imm as i32);
        self.emit(0, Reg::R0, Reg::R0, 0, (imm >> 32) as i32)
    }

    /// `dst = *(size *)(src + off)`.
    pub fn ldx(&mut self, size: Size, dst: Reg, src: Reg, off: i16) -> &mut Self {
        self.emit(LDX | size.code() | MEM, dst, src, off, 0)
    }

    /// `*(size *)(dst + off) = src`.
    pub fn stx(&mut self, size: Size, dst: Reg, off: i16, src: Reg) -> &mut Self {
        self.emit(STX | size.code() | MEM, dst, src, off, 0)
    }

    /// `*(size *)(dst + off) = imm`. Not into a program's context: kernels
    /// before about 6.3 refuse immediate stores there; use `stx`.
    pub fn st(&mut self, size: Size, dst: Reg, off: i16, imm: i32) -> &mut Self {
        self.emit(ST | size.code() | MEM, dst, Reg::R0, off, imm)
    }

    fn jump(&mut self, code: u8, dst: Reg, src: Reg, imm: i32, to: Label) -> &mut Self {
        self.fixups.push((self.insns.len(), to));
        self.emit(code, dst, src, 0, imm)
    }

    /// `if dst cond imm goto to`, comparing 64 bits: the immediate is
    /// sign-extended, so 0x80000000 and up do not match a zero-extended
    /// 32-bit value; use `jmp32_imm` for those.
    pub fn jmp_imm(&mut self, cond: Cond, dst: Reg, imm: i32, to: Label) -> &mut Self {
        self.jump(JMP | cond as u8 | K, dst, Reg::R0, imm, to)
    }

    /// `if dst cond src goto to`, comparing 64 bits (also pointers).
    pub fn jmp_reg(&mut self, cond: Cond, dst: Reg, src: Reg, to: Label) -> &mut Self {
        self.jump(JMP | cond as u8 | X, dst, src, 0, to)
    }

    /// `if (u32)dst cond imm goto to`, comparing the low 32 bits.
    pub fn jmp32_imm(&mut self, cond: Cond, dst: Reg, imm: u32, to: Label) -> &mut Self {
        self.jump(JMP32 | cond as u8 | K, dst, Reg::R0, imm as i32, to)
    }

    /// `if (u32)dst cond (u32)src goto to`.
    pub fn jmp32_reg(&mut self, cond: Cond, dst: Reg, src: Reg, to: Label) -> &mut Self {
        self.jump(JMP32 | cond as u8 | X, dst, src, 0, to)
    }

    /// `goto to`.
    pub fn ja(&mut self, to: Label) -> &mut Self {
        self.jump(JMP, Reg::R0, Reg::R0, 0, to)
    }

    /// Calls kernel helper `id`: arguments in r1-r5, result in r0.
    pub fn call(&mut self, helper: i32) -> &mut Self {
        self.emit(JMP | CALL, Reg::R0, Reg::R0, 0, helper)
    }

    /// Returns r0.
    pub fn exit(&mut self) -> &mut Self {
        self.emit(JMP | EXIT, Reg::R0, Reg::R0, 0, 0)
    }

    /// `r0 = value; exit`.
    pub fn ret(&mut self, value: i32) -> &mut Self {
        self.mov64_imm(Reg::R0, value).exit()
    }

    /// The instructions, with every jump's offset filled in. Fails on a
    /// label that was never bound or a jump too far for 16 bits: both are
    /// bugs in the program's builder, not in its input.
    pub fn finish(mut self) -> Result<Vec<Insn>, String> {
        for &(at, label) in &self.fixups {
            let target = self.labels[label.0]
                .ok_or_else(|| format!("BPF label {} is never bound", label.0))?;
            let off = target as isize - at as isize - 1;
            self.insns[at].off =
                i16::try_from(off).map_err(|_| format!("BPF jump at {at} is too far"))?;
        }
        Ok(self.insns)
    }
}

#[cfg(test)]
mod tests {
    use super::Reg::*;
    use super::*;

    fn bytes(asm: Asm) -> Vec<[u8; 8]> {
        asm.finish()
            .unwrap()
            .into_iter()
            .map(Insn::to_bytes)
            .collect()
    }

    fn one(f: impl FnOnce(&mut Asm) -> &mut Asm) -> [u8; 8] {
        let mut a = Asm::new();
        f(&mut a);
        let b = bytes(a);
        assert_eq!(b.len(), 1);
        b[0]
    }

    // Expected bytes are those of the filter.h macros named in each line.
    #[test]
    fn alu_and_mov_encodings() {
        // BPF_MOV64_IMM(BPF_REG_0, 1)
        assert_eq!(one(|a| a.mov64_imm(R0, 1)), [0xb7, 0x00, 0, 0, 1, 0, 0, 0]);
        // BPF_MOV64_IMM(BPF_REG_2, -16): sign in the immediate
        assert_eq!(
            one(|a| a.mov64_imm(R2, -16)),
            [0xb7, 0x02, 0, 0, 0xf0, 0xff, 0xff, 0xff]
        );
        // BPF_MOV64_REG(BPF_REG_6, BPF_REG_1)
        assert_eq!(one(|a| a.mov64_reg(R6, R1)), [0xbf, 0x16, 0, 0, 0, 0, 0, 0]);
        // BPF_MOV32_IMM(BPF_REG_3, 0x8000007f)
        assert_eq!(
            one(|a| a.mov32_imm(R3, 0x8000_007f)),
            [0xb4, 0x03, 0, 0, 0x7f, 0, 0, 0x80]
        );
        // BPF_ALU64_IMM(BPF_ADD, BPF_REG_2, -16)
        assert_eq!(
            one(|a| a.alu64_imm(Alu::Add, R2, -16)),
            [0x07, 0x02, 0, 0, 0xf0, 0xff, 0xff, 0xff]
        );
        // BPF_ALU64_REG(BPF_SUB, BPF_REG_3, BPF_REG_2)
        assert_eq!(
            one(|a| a.alu64_reg(Alu::Sub, R3, R2)),
            [0x1f, 0x23, 0, 0, 0, 0, 0, 0]
        );
        // BPF_ALU32_IMM(BPF_RSH, BPF_REG_5, 4)
        assert_eq!(
            one(|a| a.alu32_imm(Alu::Rsh, R5, 4)),
            [0x74, 0x05, 0, 0, 4, 0, 0, 0]
        );
        // BPF_ALU32_REG(BPF_XOR, BPF_REG_9, BPF_REG_8)
        assert_eq!(
            one(|a| a.alu32_reg(Alu::Xor, R9, R8)),
            [0xac, 0x89, 0, 0, 0, 0, 0, 0]
        );
        // BPF_ALU64_IMM(BPF_AND, BPF_REG_4, 0xf), BPF_ALU64_IMM(BPF_ARSH, ...)
        assert_eq!(one(|a| a.alu64_imm(Alu::And, R4, 15))[0], 0x57);
        assert_eq!(one(|a| a.alu64_imm(Alu::Arsh, R4, 1))[0], 0xc7);
        assert_eq!(one(|a| a.alu64_imm(Alu::Lsh, R4, 1))[0], 0x67);
        assert_eq!(one(|a| a.alu64_imm(Alu::Or, R4, 1))[0], 0x47);
        assert_eq!(one(|a| a.alu64_imm(Alu::Mul, R4, 1))[0], 0x27);
        assert_eq!(one(|a| a.alu64_imm(Alu::Div, R4, 1))[0], 0x37);
        assert_eq!(one(|a| a.alu64_imm(Alu::Mod, R4, 1))[0], 0x97);
    }

    #[test]
    fn memory_encodings() {
        // BPF_LDX_MEM(BPF_W, BPF_REG_2, BPF_REG_1, 4)
        assert_eq!(
            one(|a| a.ldx(Size::W, R2, R1, 4)),
            [0x61, 0x12, 4, 0, 0, 0, 0, 0]
        );
        // BPF_LDX_MEM(BPF_B, BPF_REG_5, BPF_REG_2, 0), _H, _DW
        assert_eq!(
            one(|a| a.ldx(Size::B, R5, R2, 0)),
            [0x71, 0x25, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(one(|a| a.ldx(Size::H, R5, R2, 2))[..3], [0x69, 0x25, 2]);
        assert_eq!(one(|a| a.ldx(Size::DW, R5, R2, 8))[..3], [0x79, 0x25, 8]);
        // BPF_STX_MEM(BPF_W, BPF_REG_1, BPF_REG_2, 40)
        assert_eq!(
            one(|a| a.stx(Size::W, R1, 40, R2)),
            [0x63, 0x21, 40, 0, 0, 0, 0, 0]
        );
        // BPF_STX_MEM(BPF_DW, BPF_REG_10, BPF_REG_2, -16)
        assert_eq!(
            one(|a| a.stx(Size::DW, R10, -16, R2)),
            [0x7b, 0x2a, 0xf0, 0xff, 0, 0, 0, 0]
        );
        // BPF_ST_MEM(BPF_DW, BPF_REG_10, -8, 0)
        assert_eq!(
            one(|a| a.st(Size::DW, R10, -8, 7)),
            [0x7a, 0x0a, 0xf8, 0xff, 7, 0, 0, 0]
        );
        // BPF_LD_IMM64(BPF_REG_1, 0x1122334455667788)
        let mut a = Asm::new();
        a.ld_imm64(R1, 0x1122_3344_5566_7788);
        assert_eq!(
            bytes(a),
            [
                [0x18, 0x01, 0, 0, 0x88, 0x77, 0x66, 0x55],
                [0, 0, 0, 0, 0x44, 0x33, 0x22, 0x11]
            ]
        );
    }

    #[test]
    fn jump_call_exit_encodings() {
        let mut a = Asm::new();
        let end = a.label();
        // BPF_JMP32_IMM(BPF_JEQ, BPF_REG_2, 0x8200007f, 4)
        a.jmp32_imm(Cond::Eq, R2, 0x8200_007f, end);
        // BPF_JMP_REG(BPF_JGT, BPF_REG_4, BPF_REG_3, 3)
        a.jmp_reg(Cond::Gt, R4, R3, end);
        // BPF_JMP_IMM(BPF_JNE, BPF_REG_2, 1, 2)
        a.jmp_imm(Cond::Ne, R2, 1, end);
        // BPF_JMP32_REG(BPF_JGE, BPF_REG_2, BPF_REG_3, 1)
        a.jmp32_reg(Cond::Ge, R2, R3, end);
        // BPF_JMP_A(0)
        a.ja(end);
        a.bind(end);
        // BPF_EMIT_CALL(64), BPF_EXIT_INSN()
        a.call(64).exit();
        assert_eq!(
            bytes(a),
            [
                [0x16, 0x02, 4, 0, 0x7f, 0, 0, 0x82],
                [0x2d, 0x34, 3, 0, 0, 0, 0, 0],
                [0x55, 0x02, 2, 0, 1, 0, 0, 0],
                [0x3e, 0x32, 1, 0, 0, 0, 0, 0],
                [0x05, 0x00, 0, 0, 0, 0, 0, 0],
                [0x85, 0x00, 0, 0, 64, 0, 0, 0],
                [0x95, 0x00, 0, 0, 0, 0, 0, 0],
            ]
        );
        for (cond, op) in [
            (Cond::Set, 0x40),
            (Cond::Sgt, 0x60),
            (Cond::Sge, 0x70),
            (Cond::Lt, 0xa0),
            (Cond::Le, 0xb0),
            (Cond::Slt, 0xc0),
            (Cond::Sle, 0xd0),
        ] {
            let mut a = Asm::new();
            let l = a.label();
            a.jmp_imm(cond, R1, 0, l).bind(l);
            assert_eq!(bytes(a)[0][0], 0x05 | op);
        }
    }

    #[test]
    fn labels_resolve_forward_and_backward() {
        let mut a = Asm::new();
        let (top, skip, end) = (a.label(), a.label(), a.label());
        a.bind(top);
        a.jmp32_imm(Cond::Eq, R1, 0, end); // 0 -> 5
        a.ld_imm64(R2, 1); // 1, 2
        a.jmp_imm(Cond::Eq, R2, 0, skip); // 3 -> 4
        a.bind(skip);
        a.ja(top); // 4 -> 0
        a.bind(end);
        a.ret(1); // 5, 6
        let insns = a.finish().unwrap();
        assert_eq!(insns.len(), 7);
        assert_eq!(insns[0].off, 4);
        assert_eq!(insns[3].off, 0);
        assert_eq!(insns[4].off, -5);
    }

    #[test]
    fn unbound_label_is_an_error() {
        let mut a = Asm::new();
        let l = a.label();
        a.ja(l).ret(0);
        assert!(a.finish().unwrap_err().contains("never bound"));
    }
}
