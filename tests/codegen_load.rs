//! Every shape of program the generator makes passes the running kernel's
//! verifier: each filter, string mode, depth mode and register mode, on both
//! contexts. (The QEMU matrix runs the tracer on older verifiers too.)

use trace::bpf::{self, load_program, Map, MapType, ProgType};
use trace::codegen::{
    generate, pt_regs, BinOp, Ctx, Depth, Emit, Expr, Filter, Helpers, Ids, MapFds, Output, ProgSpec,
    Register, Space, Stmt, StringOp, Value,
};
use trace::kernel::KernelVersion;

#[test]
fn every_program_shape_loads() {
    let kernel = KernelVersion::current();
    let cpus = 64;
    let events = Map::create(MapType::PerfEventArray, 4, 4, cpus, "events").unwrap();
    let tgids = Map::create(MapType::Hash, 4, 4, 64, "tgids").unwrap();
    let depth = Map::create(MapType::LruHash, 4, 4, 64, "depth").unwrap();
    let pending = Map::create(MapType::Hash, 8, 8, 64, "pending").unwrap();
    let dropped = Map::create(MapType::PercpuArray, 4, 8, 1, "dropped").unwrap();
    let stacks = Map::create(MapType::StackTrace, 4, 8 * 127, 64, "stacks").unwrap();
    let ring = Map::create(MapType::Ringbuf, 0, 0, 1 << 16, "events").unwrap();
    let helpers = Helpers::for_kernel(kernel);
    let mut loaded = 0;
    // Both ways of sending records: the perf rings and the BPF ring buffer.
    let outputs = [(events.raw_fd(), Output::PerfRings), (ring.raw_fd(), Output::Ringbuf)];
    for ((events, output), ctx) in outputs.into_iter().flat_map(|o| [(o, Ctx::PtRegs), (o, Ctx::Tracepoint)])
    {
        let maps = MapFds {
            events,
            output,
            tgids: tgids.raw_fd(),
            depth: depth.raw_fd(),
            pending: pending.raw_fd(),
            dropped: dropped.raw_fd(),
            stacks: stacks.raw_fd(),
            user: vec![],
        };
        let v = |i: usize| match ctx {
            Ctx::PtRegs => Value::Reg(pt_regs::ARGS[i]),
            // Tracepoint fields start after the 8-byte common header.
            Ctx::Tracepoint => Value::Field { offset: 8 + 8 * i as i16, size: [8, 4, 2, 1, 8, 8][i] },
        };
        let strings = [
            StringOp::None,
            StringOp::user(v(0), Some(0)),
            StringOp::user(v(1), None),
            StringOp::Retry { pair: 0 },
            StringOp::Refill { pair: 0 },
        ];
        for filter in [Filter::None, Filter::Tgid, Filter::Inside] {
            for string in &strings {
                for d in [Depth::None, Depth::Enter, Depth::Exit] {
                    // With everything in the record, and with neither time nor comm.
                    for (values, carry) in [(vec![], true), ((0..6).map(v).collect(), false)] {
                        let spec = ProgSpec::record(1, ctx, filter, values, string.clone(), d)
                            .carrying(carry, carry);
                        load(&spec, &maps, helpers, kernel);
                        loaded += 1;
                    }
                }
            }
        }
        for register in [Register::Current, Register::Field(12)] {
            let spec = ProgSpec::register(ctx, Filter::Tgid, register);
            load(&spec, &maps, helpers, kernel);
            let floor = ProgSpec { floor: true, ..spec };
            load(&floor, &maps, helpers, kernel);
            loaded += 2;
        }
    }
    println!("{loaded} programs loaded on {kernel}");
    assert_eq!(loaded, 2 * 2 * (3 * 5 * 3 * 2 + 4));
}

/// The language's shapes: every expression, nested conditions, several records
/// per program, string comparisons in both address spaces, stacks, variables.
#[test]
fn every_expression_shape_loads() {
    let kernel = KernelVersion::current();
    let events = Map::create(MapType::PerfEventArray, 4, 4, 64, "events").unwrap();
    let small = |name| Map::create(MapType::Hash, 8, 8, 64, name).unwrap();
    let (tgids, depth, pending) = (small("tgids"), small("depth"), small("pending"));
    let dropped = Map::create(MapType::PercpuArray, 4, 8, 1, "dropped").unwrap();
    let stacks = Map::create(MapType::StackTrace, 4, 8 * 127, 64, "stacks").unwrap();
    let user = Map::create(MapType::Hash, 8, 8, 64, "AT_m").unwrap();
    let maps = MapFds {
        events: events.raw_fd(),
        output: Output::PerfRings,
        tgids: tgids.raw_fd(),
        depth: depth.raw_fd(),
        pending: pending.raw_fd(),
        dropped: dropped.raw_fd(),
        stacks: stacks.raw_fd(),
        user: vec![user.raw_fd()],
    };
    let helpers = Helpers::for_kernel(kernel);
    let b = |e: Expr| Box::new(e);
    let bin = |op, signed, l: Expr, r: Expr| Expr::Binary { op, signed, lhs: b(l), rhs: b(r) };
    let arg = |i: usize| Expr::Ctx(Value::Reg(pt_regs::ARGS[i]));
    let mut exprs = vec![
        Expr::Const(u64::MAX - 5),
        Expr::Pid,
        Expr::Tid,
        Expr::Uid,
        Expr::Cpu,
        Expr::Nsecs,
        Expr::Var(0),
        Expr::Neg(b(arg(0))),
        Expr::Not(b(arg(1))),
        Expr::BitNot(b(Expr::Nsecs)),
        Expr::SignExtend(b(arg(2)), 32),
        Expr::CommEq { eq: true, literal: b"file-io".to_vec() },
        Expr::CommEq { eq: false, literal: b"a-name-longer-than-15".to_vec() },
        Expr::StrEq { eq: true, ptr: b(arg(0)), space: Space::User, literal: b"output.txt".to_vec() },
        Expr::StrEq { eq: false, ptr: b(Expr::Const(0)), space: Space::Kernel, literal: vec![] },
        Expr::StackId { user: false },
        Expr::StackId { user: true },
        Expr::MapRead { map: 0, key: None },
        Expr::MapRead {
            map: 0,
            key: Some(b(bin(BinOp::Add, false, Expr::Tid, Expr::MapRead { map: 0, key: None }))),
        },
    ];
    use BinOp::*;
    for op in [Or, And, BitOr, BitXor, BitAnd, Eq, Ne, Lt, Le, Gt, Ge, Shl, Shr, Add, Sub, Mul, Div, Rem] {
        for signed in [false, true] {
            // A leaf on the right, then a computed right side (a temporary).
            exprs.push(bin(op, signed, arg(0), Expr::Const(3)));
            exprs.push(bin(op, signed, Expr::Nsecs, bin(Add, false, Expr::Uid, arg(1))));
        }
    }
    let emit = |id, values: Vec<Expr>, string| {
        Stmt::Emit(Emit { id, probe_id: false, values, string, depth: Depth::None, time: true, comm: true })
    };
    for (i, e) in exprs.iter().enumerate() {
        let body = vec![
            Stmt::Assign { var: 0, value: Expr::Nsecs },
            Stmt::MapUpdate { map: 0, key: Some(e.clone()), value: e.clone() },
            Stmt::MapDelete { map: 0, key: None },
            Stmt::Require(bin(Ne, false, e.clone(), Expr::Const(7))),
            Stmt::If {
                cond: e.clone(),
                then: vec![emit(
                    1,
                    vec![e.clone(), Expr::Var(0)],
                    StringOp::user(Value::Reg(pt_regs::DI), None),
                )],
                otherwise: vec![Stmt::If {
                    cond: Expr::Var(0),
                    then: vec![emit(2, vec![], StringOp::None), Stmt::Return],
                    otherwise: vec![],
                }],
            },
            emit(3, vec![e.clone(); 6], StringOp::Read { ptr: arg(1), pair: None, space: Space::User }),
        ];
        let spec = ProgSpec { ctx: Ctx::PtRegs, body, vars: 1, floor: false };
        load(&spec, &maps, helpers, kernel);
        if i == 0 {
            println!("{}", generate(&spec, &maps, helpers, Ids::Immediate).unwrap().listing());
        }
    }
    // A tracepoint's char[] field read from the context.
    let body = vec![emit(
        0,
        vec![Expr::SignExtend(b(Expr::Ctx(Value::Field { offset: 8, size: 4 })), 32)],
        StringOp::Read { ptr: Expr::CtxAddr(8), pair: None, space: Space::Kernel },
    )];
    load(&ProgSpec { ctx: Ctx::Tracepoint, body, vars: 0, floor: false }, &maps, helpers, kernel);
}

/// Loads the program of `spec`; a uprobe's also as it is for a uprobe link,
/// which reads the probe id from the link's cookie.
fn load(spec: &ProgSpec, maps: &MapFds, helpers: Helpers, kernel: KernelVersion) {
    let prog = generate(spec, maps, helpers, Ids::Immediate).unwrap_or_else(|e| panic!("{spec:?}: {e}"));
    let ty = match spec.ctx {
        Ctx::PtRegs => ProgType::Kprobe,
        Ctx::Tracepoint => ProgType::Tracepoint,
    };
    if let Err(e) = load_program(ty, &prog.insns, "shape", kernel) {
        panic!("{spec:?}\n{}\n{e}", prog.listing());
    }
    static LINKS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if ty == ProgType::Kprobe && *LINKS.get_or_init(|| bpf::link::uprobe_links(kernel).is_ok()) {
        let prog = generate(spec, maps, helpers, Ids::Cookie).unwrap_or_else(|e| panic!("{spec:?}: {e}"));
        let link = Some(bpf::link::BPF_TRACE_UPROBE_MULTI);
        if let Err(e) = bpf::load_program_for(ty, link, &prog.insns, "shape", kernel) {
            panic!("{spec:?}, ids from the cookie\n{}\n{e}", prog.listing());
        }
    }
}
