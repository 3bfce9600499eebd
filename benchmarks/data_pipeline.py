"""Device-side input pipeline vs a torchvision DataLoader with per-image transforms, on the same data.

Both produce one epoch of augmented, normalized 128-image batches (random crop with 4-pixel padding, horizontal flip,
normalization) from the same uint8 images. The two are timed alternately in one process (`--rounds` pairs) and the
median images/s of each is printed with their ratio.

    python benchmarks/data_pipeline.py [--device cpu|cuda] [--rounds 5] [--workers 0 2]
"""
import argparse, statistics, time
import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms
from lt_workbook.data import load_dataset, Sampler, batches
from lt_workbook.training import pick_device

class PILImages(Dataset):
    "The classic per-image pipeline of the long-tailed CIFAR code: PIL image, per-image transforms."
    def __init__(self, images, labels, tf): self.images, self.labels, self.tf = images.permute(0, 2, 3, 1).numpy(), labels.numpy(), tf
    def __len__(self): return len(self.labels)
    def __getitem__(self, i): return self.tf(Image.fromarray(self.images[i])), int(self.labels[i])

def time_epoch(it, sync):
    t, n = time.perf_counter(), 0
    for x, y in it: n += len(y)
    sync()
    return n / (time.perf_counter() - t)

def alternating_rates(pipes:dict, rounds:int, sync, device)->dict:
    "Images/s of each pipeline `name -> (generator -> epoch of (x, y))`: one warm-up epoch each, then `rounds` rounds alternating them."
    rates = {k: [] for k in pipes}
    g = torch.Generator(device=device).manual_seed(0)
    for k, p in pipes.items(): time_epoch(p(g), sync)   # warm-up (worker start, page cache, allocator)
    for r in range(rounds):
        for k, p in pipes.items(): rates[k].append(time_epoch(p(g), sync))
    return rates

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--device', default='auto'); ap.add_argument('--rounds', type=int, default=5)
    ap.add_argument('--batch-size', type=int, default=128); ap.add_argument('--workers', type=int, nargs='+', default=[0, 2])
    a = ap.parse_args()
    dev = pick_device(a.device)
    sync = torch.cuda.synchronize if dev.type == 'cuda' else (lambda: None)
    data = load_dataset('mnist5k', imbalance_ratio=1)       # 4,000 images of 3x32x32
    imgs, labels = data.train.images.to(dev), data.train.labels.to(dev)
    sampler = Sampler(labels, 'instance')
    tf = transforms.Compose([transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(), transforms.ToTensor(),
                             transforms.Normalize(data.mean, data.std)])
    ds = PILImages(data.train.images, data.train.labels, tf)
    pipes = {'device-side': lambda g: batches(imgs, labels, sampler, a.batch_size, g, data.mean, data.std, flip=True)}
    for w in a.workers:
        loader = DataLoader(ds, batch_size=a.batch_size, shuffle=True, num_workers=w, persistent_workers=w > 0,
                            pin_memory=dev.type == 'cuda')
        pipes[f'DataLoader(workers={w})'] = lambda g, loader=loader: ((x.to(dev, non_blocking=True), y.to(dev)) for x, y in loader)
    rates = alternating_rates(pipes, a.rounds, sync, dev)
    print(f"device: {dev} ({torch.cuda.get_device_name() if dev.type == 'cuda' else f'{torch.get_num_threads()} threads'}), "
          f"{len(labels)} images 3x32x32, batch {a.batch_size}, {a.rounds} alternating rounds, median images/s")
    ours = statistics.median(rates['device-side'])
    for k, v in rates.items():
        m = statistics.median(v)
        print(f"  {k:24s} {m:12,.0f} img/s   device-side / this = {ours / m:6.1f}x")

if __name__ == '__main__':
    main()
