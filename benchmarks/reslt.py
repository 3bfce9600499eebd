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

`--inference` measures instead what the paper's Table 7 reports as "Speed": the time of one forward pass of a batch of
64 images at 224 px in evaluation mode, here for ResLT's part of it: the backbone alone (`--arch`, default ResNeXt-50
32x4d, 1000 classes) against ResLT on the same backbone, paired rounds as above (bf16 and channels_last on CUDA). The
paper's row compares ResLT with RIDE's experts (17.2 ms against 17.0 ms on a 2080 Ti), which the workbook does not build.

    python benchmarks/reslt.py [--device cpu|cuda] [--rounds 30] [--warmup 3] [--batch-size 128] [--branches conv bn]
                               [--clock wall|cpu]
    python benchmarks/reslt.py --inference [--device cuda] [--arch resnext50_32x4d] [--batch-size 64] [--image-size 224]
"""
import argparse, functools, itertools, statistics, time
from dataclasses import replace
import torch
from lt_workbook.data import load_dataset, batches, Sampler
from lt_workbook.training import TrainConfig, Trainer, build_model, count_params, standard_step, pick_device
from lt_workbook.reslt import BRANCHES, reslt_groups, reslt_step

def inference(a):
    "Table 7's speed, ResLT's part: paired eval-mode forward passes of one batch through the backbone and through ResLT on it."
    dev = pick_device(a.device)
    arch = a.arch or 'resnext50_32x4d'
    cfg = TrainConfig(arch=arch, device=str(dev))
    nets = {'backbone': build_model(cfg, a.classes)}
    for b in a.branches:
        nets[f'reslt-{b}'] = build_model(replace(cfg, arch='reslt', arch_kw=dict(
            backbone=arch, groups=reslt_groups(range(a.classes, 0, -1), a.groups), branch=b)), a.classes)
    cuda = dev.type == 'cuda'
    for n in nets.values():
        n.to(dev).eval()
        if cuda: n.to(memory_format=torch.channels_last)
    x = torch.randn(a.batch_size, 3, a.image_size, a.image_size, device=dev)
    if cuda: x = x.to(memory_format=torch.channels_last)
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    clock = time.process_time if a.clock == 'cpu' else time.perf_counter
    @torch.no_grad()
    def forward(net):
        sync(); t = clock()
        with torch.autocast(dev.type, torch.bfloat16, enabled=cuda): net(x)
        sync(); return clock() - t
    times = {k: [] for k in nets}
    for r in range(a.warmup + a.rounds):
        order = list(nets) if r % 2 == 0 else list(nets)[::-1]
        t = {k: forward(nets[k]) for k in order}
        if r >= a.warmup:
            for k in nets: times[k].append(t[k])
    dname = torch.cuda.get_device_name() if cuda else f'{torch.get_num_threads()} threads'
    print(f"device: {dev} ({dname}); {arch}, {a.classes} classes, batch {a.batch_size} at {a.image_size} px, eval forward passes; "
          f"{a.rounds} paired rounds (after {a.warmup} warm-up), {a.clock} clock")
    print(f"  {'model':14s} {'params':>11s} {'median ms':>10s} {'fastest ms':>10s}  ratio to the backbone: paired median [quartiles]")
    base = times['backbone']
    for k, n in nets.items():
        ratios = [tk / tb for tk, tb in zip(times[k], base)]
        q = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3
        print(f"  {k:14s} {count_params(n):11,d} {1000 * statistics.median(times[k]):10.1f} {1000 * min(times[k]):10.1f}"
              f"  {statistics.median(ratios):.3f}x [{q[0]:.3f}, {q[2]:.3f}]")

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--device', default='auto'); ap.add_argument('--rounds', type=int, default=30)
    ap.add_argument('--warmup', type=int, default=3); ap.add_argument('--batch-size', type=int, default=128)
    ap.add_argument('--groups', type=int, default=3); ap.add_argument('--alpha', type=float, default=0.995)
    ap.add_argument('--branches', nargs='+', default=['conv', 'bn'], choices=BRANCHES)
    ap.add_argument('--clock', default='wall', choices=['wall', 'cpu'], help='wall clock, or process CPU time (shared CPUs)')
    ap.add_argument('--inference', action='store_true', help="Table 7's speed: eval forward passes, backbone vs ResLT")
    ap.add_argument('--arch', default=None, help='--inference: the backbone (default resnext50_32x4d)')
    ap.add_argument('--image-size', type=int, default=224, help='--inference: image side in pixels')
    ap.add_argument('--classes', type=int, default=1000, help='--inference: classes of the classifier')
    a = ap.parse_args()
    if a.inference:
        if a.batch_size == 128: a.batch_size = 64        # the paper's Table 7 batch, unless given
        return inference(a)
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
    for trainer in trainers.values(): trainer.net.train()
    clock = time.process_time if a.clock == 'cpu' else time.perf_counter
    def step(trainer, x, y):
        sync(); t = clock()
        trainer.step(trainer, trainer.to_input(x), y)
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
