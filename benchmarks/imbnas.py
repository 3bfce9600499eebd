"""Cost of scoring one sub-network of the IMB-NAS supernet (nbs/08_imbnas_transfer.ipynb) against training it one epoch.

Scoring is what the evolutionary search does for every candidate: the supernet's path set to the cell, its BatchNorm
statistics recalibrated on `--bn-batches` fixed training batches, then the balanced accuracy on the held-out split
(`evaluate_subnet`). Training is one epoch of the stand-alone network of the same cell on the training split
(`Trainer.train_epoch`: sampling, augmentation, forward, backward, SGD step). Both run in one process on the same
data, alternately (`--rounds` rounds, each scoring a different random valid cell and training that cell's network;
one warm-up round first), and the median of the per-round ratios is printed (target: below 1/20).

The ratio is set by how many images a score looks at against an epoch's: (recalibration + held-out images) / training
images, times the cost of a forward pass relative to a training step per image (also printed). The defaults follow
SPOS's proportions (ImageNet: 50k held-out and 20k recalibration images for 1.23M training images, about 4% and 1.6%):
5% held out, 2 recalibration batches of 64 (about 3.5% of the 3,800 training images of the balanced mnist5k pool).

    python benchmarks/imbnas.py [--device cpu|cuda] [--rounds 5] [--C 16] [--N 5] [--stem-stride 1]
                                [--dataset mnist5k] [--n-max 400] [--val-fraction 0.05] [--bn-batches 2] [--batch-size 64]
"""
import argparse, statistics, time
import torch
from lt_workbook.data import load_dataset, train_val_split
from lt_workbook.training import TrainConfig, Trainer, build_model, pick_device
from lt_workbook.imbnas import CellNet, arch_str, evaluate_subnet, recalibration_batches, sample_path

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--device', default='auto'); ap.add_argument('--rounds', type=int, default=5)
    ap.add_argument('--C', type=int, default=8); ap.add_argument('--N', type=int, default=2)
    ap.add_argument('--stem-stride', type=int, default=1)
    ap.add_argument('--dataset', default='mnist5k'); ap.add_argument('--n-max', type=int, default=400)
    ap.add_argument('--ratio', type=float, default=1.)
    ap.add_argument('--val-fraction', type=float, default=0.05); ap.add_argument('--bn-batches', type=int, default=2)
    ap.add_argument('--batch-size', type=int, default=64); ap.add_argument('--seed', type=int, default=0)
    a = ap.parse_args()
    dev = pick_device(a.device)
    sync = torch.cuda.synchronize if dev.type == 'cuda' else (lambda: None)
    data = load_dataset(a.dataset, a.ratio, n_max=a.n_max)
    tr_idx, va_idx = train_val_split(data.train.labels, val_fraction=a.val_fraction, seed=0)
    train_set, val_set = data.train.subset(tr_idx), data.train.subset(va_idx)
    kw = dict(C=a.C, N=a.N, stem_stride=a.stem_stride)
    base = dict(epochs=1, batch_size=a.batch_size, lr=0.05, schedule='cosine', device=str(dev), seed=a.seed)
    sup_cfg = TrainConfig(arch='cell_net', arch_kw=dict(arch=None, **kw), **base)
    search = Trainer(build_model(sup_cfg, data.num_classes), data, sup_cfg, train_set=train_set, eval_set=val_set)
    bn = recalibration_batches(search, train_set, a.bn_batches, seed=a.seed)
    g = torch.Generator().manual_seed(a.seed)

    def timed(f):
        sync(); t = time.perf_counter(); f(); sync()
        return time.perf_counter() - t
    ratios, t_eval, t_train = [], [], []
    for r in range(a.rounds + 1):   # round 0 warms up (allocator, cuDNN autotuning, first-call overheads)
        arch = sample_path(g)
        cfg = TrainConfig(arch='cell_net', arch_kw=dict(arch=arch_str(arch), **kw), **base)
        trainer = Trainer(build_model(cfg, data.num_classes), data, cfg, train_set=train_set, eval_set=val_set)
        te = timed(lambda: evaluate_subnet(search, arch, bn))
        tt = timed(lambda: trainer.train_epoch(0))
        if r: ratios.append(te / tt); t_eval.append(te); t_train.append(tt)
    print(f"device: {dev} ({torch.cuda.get_device_name() if dev.type == 'cuda' else f'{torch.get_num_threads()} threads'}); "
          f"{a.dataset} ratio {a.ratio:g}: {len(train_set)} training / {len(val_set)} held-out images; "
          f"C={a.C}, N={a.N}, stem stride {a.stem_stride}; batch {a.batch_size}; {a.rounds} alternating rounds, medians")
    print(f"  score one sub-network (BN recalibrated on {a.bn_batches} batches + held-out accuracy): {statistics.median(t_eval):8.3f} s")
    print(f"  train the same cell one epoch:                                       {statistics.median(t_train):8.3f} s")
    n_score, n_train = sum(len(x) for x in bn) + len(val_set), len(train_set)
    per_image = statistics.median(t / n_train for t in t_train) / statistics.median(t / n_score for t in t_eval)
    print(f"  per image, a training step costs {per_image:.2f}x a scoring forward pass; a score looks at {n_score} images, "
          f"an epoch at {n_train} ({n_train / n_score:.1f}x)")
    m = statistics.median(ratios)
    print(f"  scoring / training ratio: {m:.4f} (1/{1 / m:.1f}); target < 1/20: {'met' if m < 1 / 20 else 'NOT met'}")

if __name__ == '__main__':
    main()
