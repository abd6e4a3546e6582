//! Every shape of program the generator makes passes the running kernel's
//! verifier: each filter, string mode, depth mode and register mode, on both
//! contexts. (The QEMU matrix runs the tracer on older verifiers too.)

use trace::bpf::{load_program, Map, MapType, ProgType};
use trace::codegen::{
    generate, pt_regs, Ctx, Depth, Filter, Helpers, MapFds, ProgSpec, Register, StringOp, Value,
};
use trace::kernel::KernelVersion;

#[test]
fn every_program_shape_loads() {
    let kernel = KernelVersion::current();
    let cpus = 64;
    let events = Map::create(MapType::PerfEventArray, 4, 4, cpus, "events").unwrap();
    let tgids = Map::create(MapType::Hash, 4, 4, 64, "tgids").unwrap();
    let depth = Map::create(MapType::Hash, 4, 4, 64, "depth").unwrap();
    let pending = Map::create(MapType::Hash, 8, 8, 64, "pending").unwrap();
    let dropped = Map::create(MapType::PercpuArray, 4, 8, 1, "dropped").unwrap();
    let maps = MapFds {
        events: events.raw_fd(),
        tgids: tgids.raw_fd(),
        depth: depth.raw_fd(),
        pending: pending.raw_fd(),
        dropped: dropped.raw_fd(),
    };
    let helpers = Helpers::for_kernel(kernel);
    let mut loaded = 0;
    for ctx in [Ctx::PtRegs, Ctx::Tracepoint] {
        let v = |i: usize| match ctx {
            Ctx::PtRegs => Value::Reg(pt_regs::ARGS[i]),
            // Tracepoint fields start after the 8-byte common header.
            Ctx::Tracepoint => Value::Field { offset: 8 + 8 * i as i16, size: [8, 4, 2, 1, 8, 8][i] },
        };
        let strings = [
            StringOp::None,
            StringOp::Read { ptr: v(0), pair: Some(0) },
            StringOp::Read { ptr: v(1), pair: None },
            StringOp::Retry { pair: 0 },
        ];
        for filter in [Filter::None, Filter::Tgid, Filter::Inside] {
            for string in strings {
                for d in [Depth::None, Depth::Enter, Depth::Exit] {
                    for values in [vec![], (0..6).map(v).collect()] {
                        let spec = ProgSpec {
                            probe_id: 1,
                            ctx,
                            filter,
                            values,
                            string,
                            depth: d,
                            register: Register::No,
                            floor: false,
                        };
                        load(&spec, &maps, helpers, kernel);
                        loaded += 1;
                    }
                }
            }
        }
        for register in [Register::Current, Register::Field(12)] {
            let spec = ProgSpec {
                probe_id: 2,
                ctx,
                filter: Filter::Tgid,
                values: vec![],
                string: StringOp::None,
                depth: Depth::None,
                register,
                floor: false,
            };
            load(&spec, &maps, helpers, kernel);
            let floor = ProgSpec { floor: true, ..spec };
            load(&floor, &maps, helpers, kernel);
            loaded += 2;
        }
    }
    println!("{loaded} programs loaded on {kernel}");
    assert_eq!(loaded, 2 * (3 * 4 * 3 * 2 + 4));
}

fn load(spec: &ProgSpec, maps: &MapFds, helpers: Helpers, kernel: KernelVersion) {
    let prog = generate(spec, maps, helpers).unwrap_or_else(|e| panic!("{spec:?}: {e}"));
    let ty = match spec.ctx {
        Ctx::PtRegs => ProgType::Kprobe,
        Ctx::Tracepoint => ProgType::Tracepoint,
    };
    if let Err(e) = load_program(ty, &prog.insns, "shape", kernel) {
        panic!("{spec:?}\n{}\n{e}", prog.listing());
    }
}
