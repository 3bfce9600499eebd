"""Training-step cost of ResLT (nbs/06_reslt_branches.ipynb) against a plain CE step on the same backbone.

The steps are the trainer's own: `standard_step` for CE on ResNet-32, `reslt_step` for ResLT on ResNet-32 with each
branch implementation (`conv`: the paper's grouped 1x1 convolution; `bn`: the public code's BatchNorms), each one
forward, loss, backward and SGD step of a `Trainer` (bf16 and channels_last on CUDA, as in training). One process,
paired: every round runs one step of every model on the same augmented batch of the embedded digits, in an order that
alternates between rounds, and takes the ratio ResLT / CE within the round; the median ratio over the rounds is
printed (target: <= 1.03x), with its quartiles, the median step times, and the ratio of the fastest steps (the least
disturbed by other work on a shared machine).

On a CPU shared with other work, `--clock cpu` times each step by the process's CPU time instead of the wall clock,
which other processes do not inflate; run it with one thread (OMP_NUM_THREADS=1) so that no thread waits in a spin.

    python benchmarks/reslt.py [--device cpu|cuda] [--rounds 30] [--warmup 3] [--batch-size 128] [--branches conv bn]
                               [--clock wall|cpu]
"""
import argparse, functools, itertools, statistics, time
from dataclasses import replace
import torch
from lt_workbook.data import load_dataset, batches, Sampler
from lt_workbook.training import TrainConfig, Trainer, build_model, count_params, standard_step
from lt_workbook.reslt import BRANCHES, reslt_groups, reslt_step

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--device', default='auto'); ap.add_argument('--rounds', type=int, default=30)
    ap.add_argument('--warmup', type=int, default=3); ap.add_argument('--batch-size', type=int, default=128)
    ap.add_argument('--groups', type=int, default=3); ap.add_argument('--alpha', type=float, default=0.995)
    ap.add_argument('--branches', nargs='+', default=['conv', 'bn'], choices=BRANCHES)
    ap.add_argument('--clock', default='wall', choices=['wall', 'cpu'], help='wall clock, or process CPU time (shared CPUs)')
    a = ap.parse_args()
    data = load_dataset('mnist5k', 100)
    cfg = TrainConfig(arch='resnet32', batch_size=a.batch_size, device=a.device)
    trainers = {'ce': Trainer(build_model(cfg, data.num_classes), data, cfg)}
    for b in a.branches:
        rcfg = replace(cfg, arch='reslt', arch_kw=dict(backbone='resnet32', groups=reslt_groups(data.counts, a.groups), branch=b))
        trainers[b] = Trainer(build_model(rcfg, data.num_classes), data, rcfg, step=functools.partial(reslt_step, alpha=a.alpha))
    dev, ce = trainers['ce'].device, trainers['ce']
    sync = torch.cuda.synchronize if dev.type == 'cuda' else (lambda: None)
    g = torch.Generator(device=dev).manual_seed(0)
    train = ce.train_set
    stream = itertools.chain.from_iterable(
        batches(train.images, train.labels, Sampler(train.labels), a.batch_size, g, data.mean, data.std) for _ in itertools.count())
    full = (xy for xy in stream if len(xy[1]) == a.batch_size)          # whole batches only
    for tr in trainers.values(): tr.net.train()
    clock = time.process_time if a.clock == 'cpu' else time.perf_counter
    def step(tr, x, y):
        sync(); t = clock()
        tr.step(tr, tr.to_input(x), y)
        sync(); return clock() - t
    times = {k: [] for k in trainers}
    for r in range(a.warmup + a.rounds):
        x, y = next(full)
        order = list(trainers) if r % 2 == 0 else list(trainers)[::-1]
        t = {k: step(trainers[k], x, y) for k in order}
        if r >= a.warmup:
            for k in trainers: times[k].append(t[k])
    dname = torch.cuda.get_device_name() if dev.type == 'cuda' else f'{torch.get_num_threads()} threads'
    print(f"device: {dev} ({dname}); ResNet-32, batch {a.batch_size}, {a.groups} groups, alpha {a.alpha}; "
          f"{a.rounds} paired rounds (after {a.warmup} warm-up), one trainer step per model per round, {a.clock} clock")
    print(f"  {'model':10s} {'params':>9s} {'median ms':>10s} {'fastest ms':>10s}  ratio to CE: paired median [quartiles], fastest / fastest")
    print(f"  {'ce':10s} {count_params(ce.model):9,d} {1000 * statistics.median(times['ce']):10.1f} {1000 * min(times['ce']):10.1f}")
    for b in a.branches:
        ratios = [tb / tc for tb, tc in zip(times[b], times['ce'])]
        q = statistics.quantiles(ratios, n=4)
        print(f"  {'reslt-' + b:10s} {count_params(trainers[b].model):9,d} {1000 * statistics.median(times[b]):10.1f} "
              f"{1000 * min(times[b]):10.1f}  {statistics.median(ratios):.3f}x [{q[0]:.3f}, {q[2]:.3f}], {min(times[b]) / min(times['ce']):.3f}x")

if __name__ == '__main__':
    main()
