"""Worker-process input pipeline of list-file datasets vs the single-thread loader of earlier versions, on the same JPEGs.

The script writes `--images` JPEGs of 500x375 px (smooth random content, quality 90) and their ImageNet-LT list file to
a temporary folder. Each contender produces one epoch of normalized 224-px training batches (`--batch-size`) drawn by
the instance sampler:

- `single-thread`: what `batches` did before (decode with PIL, resize the shorter side to 224 and center-crop in the
  training process, then the device-side random crop with 4-pixel padding and flip);
- `workers=N`: `batches(..., workers=N)`: decode with torchvision, random-resized crop, flip (and `--jitter`) in N
  `DataLoader` processes, whole index batches as items (worker start-up counted: a new loader per epoch);
- `workers=0`: the same transform in the training process (for reference).

The contenders are timed alternately in one process (`--rounds` rounds after one warm-up epoch each) and the median
images/s of each is printed with its ratio to the single-thread loader.

    python benchmarks/list_pipeline.py [--workers 2] [--images 512] [--batch-size 64] [--rounds 3] [--device cpu|cuda]
"""
import argparse, os, statistics, tempfile
import numpy as np
import torch
from PIL import Image
from lt_workbook.data import load_dataset, LIST_DATASETS, Sampler, batches, random_crop_flip, normalize
from lt_workbook.training import pick_device
from data_pipeline import alternating_rates   # (this folder: the script's own)

def write_jpegs(root, n, size=(500, 375), classes=10, seed=0):
    "`n` JPEGs of `size` px with smooth random content, and an ImageNet-LT list file over them (the test list: 10 of them)."
    spec, rs = LIST_DATASETS['imagenet_lt'], np.random.RandomState(seed)
    folder = os.path.join(root, spec['folder'])
    lines = []
    for i in range(n):
        rel = f'train/{i % classes}/{i}.jpg'
        os.makedirs(os.path.dirname(os.path.join(folder, rel)), exist_ok=True)
        small = Image.fromarray(rs.randint(0, 256, (size[1] // 8, size[0] // 8, 3), dtype=np.uint8))
        small.resize(size, Image.BICUBIC).save(os.path.join(folder, rel), quality=90)
        lines.append(f'{rel} {i % classes}')
    for split in ('train', 'test'):
        with open(os.path.join(folder, spec[split]), 'w') as f: f.write('\n'.join(lines if split == 'train' else lines[:10]) + '\n')

def old_load(images, i):
    "The loader of earlier versions: PIL decode, shorter side resized to S, central S x S."
    S = images.image_size
    with Image.open(images.path(i)) as im:
        im = im.convert('RGB')
        w, h = im.size; s = S / min(w, h)
        im = im.resize((max(S, round(w * s)), max(S, round(h * s))), Image.BILINEAR)
        w, h = im.size; l, t = (w - S) // 2, (h - S) // 2
        return torch.from_numpy(np.array(im.crop((l, t, l + S, t + S)), dtype=np.uint8)).permute(2, 0, 1)

def single_thread(data, sampler, batch_size, g, dev):
    "One epoch the way `batches` produced it before: decode in this thread, then crop and flip on the device."
    for idx in sampler.epoch(batch_size, g):
        x = torch.stack([old_load(data.train.images, i) for i in idx.tolist()]).to(dev, non_blocking=True)
        yield normalize(random_crop_flip(x, g, pad=4, flip=True), data.mean, data.std), data.train.labels[idx]

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--workers', type=int, default=2); ap.add_argument('--images', type=int, default=512)
    ap.add_argument('--batch-size', type=int, default=64); ap.add_argument('--rounds', type=int, default=3)
    ap.add_argument('--image-size', type=int, default=224); ap.add_argument('--jitter', action='store_true')
    ap.add_argument('--device', default='auto')
    a = ap.parse_args()
    dev = pick_device(a.device)
    sync = torch.cuda.synchronize if dev.type == 'cuda' else (lambda: None)
    with tempfile.TemporaryDirectory() as root:
        write_jpegs(root, a.images)
        data = load_dataset('imagenet_lt', imbalance_ratio=None, data_root=root, image_size=a.image_size)
        labels = data.train.labels.to(dev)
        sampler = Sampler(labels, 'instance')
        new = lambda w: (lambda g: batches(data.train.images, labels, sampler, a.batch_size, g, data.mean, data.std,
                                           workers=w, jitter=a.jitter))
        pipes = {'single-thread (before)': lambda g: single_thread(data, sampler, a.batch_size, g, dev),
                 f'workers={a.workers}': new(a.workers)}
        if a.workers: pipes['workers=0'] = new(0)
        rates = alternating_rates(pipes, a.rounds, sync, dev)
    print(f"device: {dev}, {os.cpu_count()} CPUs, {a.images} JPEGs 500x375 -> {a.image_size} px training batches of "
          f"{a.batch_size}{' with color jitter' if a.jitter else ''}, {a.rounds} alternating rounds, median images/s")
    base = statistics.median(rates['single-thread (before)'])
    for k, v in rates.items():
        m = statistics.median(v)
        print(f"  {k:24s} {m:10,.0f} img/s   this / single-thread = {m / base:5.2f}x   (rounds: {', '.join(f'{x:,.0f}' for x in v)})")

if __name__ == '__main__':
    main()
