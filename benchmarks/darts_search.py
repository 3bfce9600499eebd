"""DARTS search step: images/s and peak memory of lt_workbook's supernet + architect vs the original DARTS code.

The configuration of the papers' search: 8 cells, C = 16, DARTS' search space (8 candidates), CIFAR-size inputs,
batch 32 and 64, first and second order. One search step is an architecture step on a validation batch (second
order: the unrolled step with its finite-difference Hessian-vector product) followed by the weight step on a
training batch, so a step consumes 2 x batch images; images/s counts both.

The reference is the public DARTS implementation (github.com/quark0/darts, `cnn/`), kept outside the project tree and
run unmodified: on CPU its `.cuda()` calls are made no-ops. Every (implementation, batch, order) runs in a subprocess
of its own, so its peak memory (peak RSS on CPU, peak allocated on CUDA) is its own; rounds alternate the two
implementations and the medians are compared.

    git clone https://github.com/quark0/darts /tmp/quark0-darts
    python benchmarks/darts_search.py --reference /tmp/quark0-darts/cnn [--device cpu|cuda] [--batch-sizes 32 64]
                                      [--orders 1 2] [--variants ...] [--steps 2] [--rounds 1] [--layers 8] [--C 16]

lt_workbook runs in the configurations of `VARIANTS`: channels_last (the CPU default of the notebook), plain fp32 NCHW
(the reference's own configuration), bf16 autocast + channels_last (the CUDA default), each with and without
recomputing the first `--recompute` cells in backward (`Architect(recompute=k)`); the supernet's edges are batched
(`BatchedSearchCell`) except in `cl+per-edge` (one edge at a time, the cell the batched one is tested against); the
`+graph` variants replay each step from a CUDA graph (`Architect(cuda_graph=True)`, first order, CUDA only).
"""
import argparse, json, resource, statistics, subprocess, sys, time
from types import SimpleNamespace
import torch
import torch.nn as nn
import torch.nn.functional as F

def peak_memory(dev):
    if dev.type == 'cuda': return torch.cuda.max_memory_allocated()
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024       # Linux: KiB

VARIANTS = {   # lt_workbook's configurations: memory format, bf16 autocast, recomputing cells in backward
    'cl':             dict(channels_last=True, bf16=False, recompute=False),
    'cl+per-edge':    dict(channels_last=True, bf16=False, recompute=False, batched=False),   # the supernet one edge at a time
    'cl+recompute':   dict(channels_last=True, bf16=False, recompute=True),
    'fp32':           dict(channels_last=False, bf16=False, recompute=False),
    'fp32+recompute': dict(channels_last=False, bf16=False, recompute=True),
    'bf16+cl':        dict(channels_last=True, bf16=True, recompute=False),
    'bf16+cl+recompute': dict(channels_last=True, bf16=True, recompute=True),
    'fp32+graph':     dict(channels_last=False, bf16=False, recompute=False, graph=True),   # CUDA only: Architect(cuda_graph=True)
    'bf16+cl+graph':  dict(channels_last=True, bf16=True, recompute=False, graph=True),
}

def ours(a, dev):
    "lt_workbook: the notebook's own path, `Architect.step` inside a `Trainer`, in the configuration `a.variant`."
    from lt_workbook.data import load_dataset
    from lt_workbook.training import TrainConfig, Trainer, build_model, epoch_generators
    from lt_workbook.darts import Architect, DARTS_PRIMITIVES
    v = VARIANTS[a.variant]
    data = load_dataset('mnist5k', imbalance_ratio=1)
    cfg = TrainConfig(arch='supernet', classifier='linear', batch_size=a.batch_size, lr=0.025, lr_min=0.001, schedule='cosine',
                      momentum=0.9, weight_decay=3e-4, grad_clip=5., device=str(dev), channels_last=v['channels_last'],
                      precision='bf16' if v['bf16'] else 'fp32', arch_kw=dict(primitives=list(DARTS_PRIMITIVES), C=a.C, layers=a.layers, batched=v.get('batched', True)))
    model = build_model(cfg, 10)
    architect = Architect(model, data.train, order=a.order, batch_size=a.batch_size, recompute=a.recompute if v['recompute'] else 0,
                          cuda_graph=v.get('graph', False))
    trainer = Trainer(model, data, cfg, step=architect.step, callbacks=[architect])
    architect.before_epoch(trainer, 0)
    trainer.generator, trainer.np_rng = epoch_generators(0, 0, trainer.device)
    trainer.net.train()
    x, y = torch.randn(a.batch_size, 3, 32, 32, device=dev), torch.randint(0, 10, (a.batch_size,), device=dev)
    x = trainer.to_input(x)
    return lambda: architect.step(trainer, x, y)

def reference(a, dev):
    "The original DARTS search step (train_search.py's loop body), unmodified code from `--reference`."
    sys.path.insert(0, a.reference)
    if dev.type != 'cuda':
        torch.Tensor.cuda = lambda self, *args, **kw: self
        nn.Module.cuda = lambda self, *args, **kw: self
    from model_search import Network
    from architect import Architect
    criterion = nn.CrossEntropyLoss()
    model = Network(a.C, 10, a.layers, criterion).to(dev)
    optimizer = torch.optim.SGD(model.parameters(), 0.025, momentum=0.9, weight_decay=3e-4)
    architect = Architect(model, SimpleNamespace(momentum=0.9, weight_decay=3e-4, arch_learning_rate=3e-4, arch_weight_decay=1e-3))
    x, y = torch.randn(a.batch_size, 3, 32, 32, device=dev), torch.randint(0, 10, (a.batch_size,), device=dev)
    xv, yv = torch.randn(a.batch_size, 3, 32, 32, device=dev), torch.randint(0, 10, (a.batch_size,), device=dev)
    def step():
        model.train()
        architect.step(x, y, xv, yv, 0.025, optimizer, unrolled=a.order == 2)
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.)
        optimizer.step()
    return step

def count_ops(step, dev)->dict:
    "Operations of one step under `torch.profiler`: leaf ATen operations dispatched (those that call no other ATen operation) and, on CUDA, kernels launched."
    from torch.profiler import profile, ProfilerActivity
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev.type == 'cuda' else [])
    with profile(activities=acts) as prof:
        step()
        if dev.type == 'cuda': torch.cuda.synchronize()
    evs = prof.events()
    leaf = sum(e.name.startswith('aten::') and not any(c.name.startswith('aten::') for c in e.cpu_children) for e in evs)
    kernels = sum(e.device_type == torch.autograd.DeviceType.CUDA for e in evs) if dev.type == 'cuda' else None
    return dict(aten_leaf_ops=leaf, cuda_kernels=kernels)

def worker(a):
    dev = torch.device(a.device)
    torch.manual_seed(0)
    step = (ours if a.impl == 'ours' else reference)(a, dev)
    sync = torch.cuda.synchronize if dev.type == 'cuda' else (lambda: None)
    step(); sync()                                             # warm-up (allocator, oneDNN / cuDNN kernels)
    times = []
    for _ in range(a.steps):
        t = time.perf_counter(); step(); sync(); times.append(time.perf_counter() - t)
    ops = count_ops(step, dev) if a.count_ops else {}          # after the timed steps: the profiler's overhead stays out of them
    print(json.dumps(dict(times=times, peak=peak_memory(dev), **ops)))

def run(a, impl, variant, bs, order):
    cmd = [sys.executable, __file__, '--impl', impl, '--variant', variant, '--order', str(order), '--batch-size', str(bs),
           '--device', a.device, '--steps', str(a.steps), '--layers', str(a.layers), '--C', str(a.C), '--recompute', str(a.recompute), '--reference', a.reference, *(['--count-ops'] if a.count_ops else [])]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode: sys.exit(f"{impl} {variant} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])

def ops_columns(r, ref)->str:
    "Leaf ATen operations per step (and CUDA kernels) of ours and the reference, from each one's first round."
    cols = f" | {r['aten_leaf_ops']:>8,} {ref['aten_leaf_ops']:>8,} {r['aten_leaf_ops'] / ref['aten_leaf_ops']:>5.2f}"
    return cols + (f" {r['cuda_kernels']:>8,} {ref['cuda_kernels']:>8,}" if r.get('cuda_kernels') is not None else '')

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--reference', default='/tmp/quark0-darts/cnn', help="the original code's cnn/ folder")
    ap.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    ap.add_argument('--variants', nargs='+', choices=list(VARIANTS),
                    help="lt_workbook configurations (default: cl, cl+recompute on CPU; fp32, fp32+recompute, bf16+cl, bf16+cl+recompute on CUDA)")
    ap.add_argument('--batch-sizes', type=int, nargs='+', default=[32, 64]); ap.add_argument('--orders', type=int, nargs='+', default=[1, 2])
    ap.add_argument('--steps', type=int, default=2); ap.add_argument('--rounds', type=int, default=1)
    ap.add_argument('--layers', type=int, default=8); ap.add_argument('--C', type=int, default=16)
    ap.add_argument('--recompute', type=int, default=3, help='cells rerun in backward by the +recompute variants (3: up to the first reduction at 8 cells)')
    ap.add_argument('--count-ops', action='store_true', help='also count the leaf ATen operations (and CUDA kernels) of one step with torch.profiler')
    ap.add_argument('--impl'); ap.add_argument('--variant', default='cl'); ap.add_argument('--order', type=int); ap.add_argument('--batch-size', type=int)
    a = ap.parse_args()
    if a.impl: return worker(a)
    variants = a.variants or (['fp32', 'bf16+cl', 'fp32+graph', 'bf16+cl+graph'] if a.device == 'cuda' else ['cl', 'cl+per-edge'])
    name = torch.cuda.get_device_name() if a.device == 'cuda' else f'cpu ({torch.get_num_threads()} threads)'
    print(f"DARTS search step, {a.layers} cells, C={a.C}, {name}, torch {torch.__version__}, {a.steps} timed steps per run, "
          f"{a.rounds} round(s); +recompute: first {a.recompute} cells; reference: fp32, NCHW")
    print(f"{'batch':>5} {'order':>5} {'ours':>18} | {'ours img/s':>10} {'ref img/s':>9} {'speed x':>7} | {'ours peak':>9} {'ref peak':>9} {'mem x':>6}"
          + (f" | {'ours ops':>8} {'ref ops':>8} {'ops x':>5}" + (f" {'ours krn':>8} {'ref krn':>8}" if a.device == 'cuda' else '') if a.count_ops else ''))
    for bs in a.batch_sizes:
        for order in a.orders:
            res = {k: [] for k in ['reference', *variants]}
            for _ in range(a.rounds):          # rounds alternate the implementations
                for k in res: res[k].append(run(a, 'reference' if k == 'reference' else 'ours', k, bs, order))
            speed = {k: 2 * bs / statistics.median([t for r in v for t in r['times']]) for k, v in res.items()}
            peak = {k: max(r['peak'] for r in v) / 2 ** 30 for k, v in res.items()}
            ref = 'reference'
            for k in variants:
                print(f"{bs:>5} {order:>5} {k:>18} | {speed[k]:>10.2f} {speed[ref]:>9.2f} {speed[k] / speed[ref]:>7.2f} | "
                      f"{peak[k]:>7.2f}GB {peak[ref]:>7.2f}GB {peak[k] / peak[ref]:>6.2f}" + (ops_columns(res[k][0], res[ref][0]) if a.count_ops else ''), flush=True)

if __name__ == '__main__': main()
