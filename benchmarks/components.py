"""Training speed of every block variant of nbs/02_component_exploration.ipynb at equal parameter count.

Each variant is the component backbone (`component_net`) at the base width `match_width` gives it for the same parameter
budget (default: ResNet-32's, ~0.46M, with 5 blocks per stage). One timed step is a forward and backward pass of a
batch of random 3x32x32 images (optimizer excluded). The variants are timed alternately in one process (`--rounds`
rounds, `--steps` steps each after one warm-up step) and the median images/s of each is printed with its ratio to
`basic` (> 1: faster than the basic block).

    python benchmarks/components.py [--device cpu|cuda] [--rounds 3] [--steps 2] [--batch-size 64] [--blocks 5]
"""
import argparse, statistics, time
import torch
import torch.nn.functional as F
from lt_workbook.training import pick_device, count_params
from lt_workbook.components import BLOCKS, component_net, match_width, param_count

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--device', default='auto'); ap.add_argument('--rounds', type=int, default=3)
    ap.add_argument('--steps', type=int, default=2); ap.add_argument('--batch-size', type=int, default=64)
    ap.add_argument('--blocks', type=int, default=5)
    ap.add_argument('--target-params', type=int, default=None, help='default: the basic-block network of this depth (ResNet-32 at 5)')
    ap.add_argument('--variants', nargs='+', default=list(BLOCKS))
    a = ap.parse_args()
    dev = pick_device(a.device)
    cuda = dev.type == 'cuda'
    if cuda: torch.backends.cudnn.benchmark = True
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    fmt = torch.channels_last if cuda else torch.contiguous_format
    nets, widths = {}, {}
    for b in dict.fromkeys(['basic', *a.variants]):
        widths[b] = match_width(b, a.target_params, a.blocks)
        nets[b] = component_net(10, block=b, blocks=a.blocks, width=widths[b]).to(dev, memory_format=fmt).train()
    x = torch.randn(a.batch_size, 3, 32, 32, device=dev).contiguous(memory_format=fmt)
    y = torch.randint(0, 10, (a.batch_size,), device=dev)
    def step(net):
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=cuda):
            loss = F.cross_entropy(net(x), y)
        net.zero_grad(set_to_none=True); loss.backward()
    def rate(net):
        sync(); t = time.perf_counter()
        for _ in range(a.steps): step(net)
        sync(); return a.steps * a.batch_size / (time.perf_counter() - t)
    for net in nets.values(): step(net)   # warm-up (allocator, cuDNN autotuning)
    rates = {k: [] for k in nets}
    for r in range(a.rounds):
        for k, net in nets.items(): rates[k].append(rate(net))
    print(f"device: {dev} ({torch.cuda.get_device_name() if cuda else f'{torch.get_num_threads()} threads'}), "
          f"{a.blocks} blocks per stage, batch {a.batch_size}, forward+backward, {a.rounds} alternating rounds x {a.steps} steps, "
          f"median images/s")
    ref = statistics.median(rates['basic'])
    print(f"  {'block':14s} {'width':>5s} {'params':>9s} {'img/s':>9s}  this / basic")
    for k, v in rates.items():
        m = statistics.median(v)
        print(f"  {k:14s} {widths[k]:5d} {count_params(nets[k]):9,d} {m:9,.0f}  {m / ref:6.2f}x")

if __name__ == '__main__':
    main()
