"""Cost of one eigen-solver step on the Hessian (one Hessian-vector product) vs one training step, ResNet-32.

One step of power iteration (or of Lanczos) is one Hessian-vector product of the training loss w.r.t. all ResNet-32
weights on a training batch, plus vector arithmetic. A training step is forward + backward + SGD step on the same
batch. An HVP step is one product on an operator built for the current weights (building it, once per eigenvalue
evaluation, is not timed: autograd's takes the gradient there, curvlinops' nothing). Both are timed alternately in one process (`--rounds` rounds after a warm-up) and the medians are printed with
their ratio, for both product backends of `lt_workbook.etf.hessian_matvec`: autograd (reverse-over-reverse, the
gradient's graph kept between products: the default) and curvlinops (forward-over-reverse, the check). BatchNorm in
eval mode for the Hessian (the notebook's default).

    python benchmarks/hessian.py [--device cpu|cuda] [--rounds 5] [--batch-size 128]
"""
import argparse, statistics, time
import torch
import torch.nn as nn
from lt_workbook.data import load_dataset, Sampler, batches
from lt_workbook.training import pick_device, resnet32
from lt_workbook.etf import hessian_matvec, hessian_mode, power_iteration

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--device', default='auto'); ap.add_argument('--rounds', type=int, default=5)
    ap.add_argument('--batch-size', type=int, default=128)
    a = ap.parse_args()
    dev = pick_device(a.device)
    sync = torch.cuda.synchronize if dev.type == 'cuda' else (lambda: None)
    torch.manual_seed(0)
    data = load_dataset('mnist5k', imbalance_ratio=1)
    g = torch.Generator(device=dev).manual_seed(0)
    it = batches(data.train.images.to(dev), data.train.labels.to(dev), Sampler(data.train.labels.to(dev)), a.batch_size, g,
                 data.mean, data.std)
    x, y = next(it)
    model = resnet32(10).to(dev)
    params = [p for p in model.parameters()]
    loss_func = nn.CrossEntropyLoss()
    opt = torch.optim.SGD(params, lr=1e-4, momentum=0.9)
    v0 = torch.randn(sum(p.numel() for p in params), generator=torch.Generator().manual_seed(0)).to(dev)

    def timed(f):
        sync(); t = time.perf_counter(); f(); sync()
        return time.perf_counter() - t
    def train_step():
        model.train(); opt.zero_grad(set_to_none=True)
        return timed(lambda: (loss_func(model(x), y).backward(), opt.step()))
    def solver_step(backend):
        def step():   # built for the current weights, untimed (once per eigenvalue evaluation); then one product
            with hessian_mode(model, 'eval'):
                mv = hessian_matvec(model, loss_func, params, [(x, y)], backend)
                return timed(lambda: power_iteration(mv, v0, max_iter=1, tol=0.))   # one product + the vector update
        return step
    steps = {'training step': train_step, 'HVP step (curvlinops)': solver_step('curvlinops'),
             'HVP step (autograd)': solver_step('autograd')}
    run = lambda name: steps[name]()
    times = {k: [] for k in steps}
    for k in steps: run(k)                    # warm-up
    for r in range(a.rounds):
        for k in steps: times[k].append(run(k))
    med = {k: statistics.median(v) for k, v in times.items()}
    what = torch.cuda.get_device_name() if dev.type == 'cuda' else f'{torch.get_num_threads()} threads'
    print(f"device: {dev} ({what}), ResNet-32 ({sum(p.numel() for p in params):,} weights), batch {a.batch_size}, "
          f"{a.rounds} alternating rounds, median seconds")
    for k, m in med.items():
        print(f"  {k:24s} {m:8.3f} s   this / training step = {m / med['training step']:5.2f}x")

if __name__ == '__main__':
    main()
