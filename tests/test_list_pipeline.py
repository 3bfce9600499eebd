"The worker-process input pipeline of list-file and folder datasets: determinism, sharding, memory, imagefolder."
import os, shutil, tempfile, time
from pathlib import Path
from types import SimpleNamespace
import numpy as np, pytest, torch
from lt_workbook.data import (load_dataset, write_fake_list_dataset, write_fake_image_folder, Sampler, SAMPLERS, batches,
                              eval_batches, normalize, list_dataset, lt_counts, ListImages, check_shard)

@pytest.fixture(scope='module')
def lt(tmp_path_factory):
    d = tmp_path_factory.mktemp('lt')
    write_fake_list_dataset(d, 'imagenet_lt', counts=(7, 4, 2), test_per_class=3, size=(48, 36))
    return load_dataset('imagenet_lt', imbalance_ratio=None, data_root=d, image_size=24)

def epoch(data, kind='instance', batch_size=5, seed=0, **kw):
    g = torch.Generator().manual_seed(seed)
    return list(batches(data.train.images, data.train.labels, Sampler(data.train.labels, kind), batch_size, g,
                        data.mean, data.std, **kw))

def in_memory(n=90, seed=0):
    "A small in-memory set (uint8 images and labels as the device path holds them)."
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, 8, 8), generator=g, dtype=torch.uint8)
    labels = torch.repeat_interleave(torch.arange(3), torch.tensor([n // 2, n // 3, n - n // 2 - n // 3]))
    return SimpleNamespace(train=SimpleNamespace(images=images, labels=labels), test=SimpleNamespace(images=images, labels=labels),
                           mean=(0.5,) * 3, std=(0.25,) * 3)

def same(a, b): return len(a) == len(b) and all(torch.equal(x, u) and torch.equal(y, v) for (x, y), (u, v) in zip(a, b))

def test_workers_do_not_change_the_batches(lt):
    one = epoch(lt, jitter=True)
    assert same(one, epoch(lt, jitter=True, workers=2))
    assert len(one) == 3 and one[0][0].shape == (5, 3, 24, 24) and one[0][0].dtype == torch.float32
    assert not same(one, epoch(lt, jitter=True, seed=1))                 # the generator does decide them

@pytest.mark.parametrize('world', [2, 3])
@pytest.mark.parametrize('kind', ['instance', 'square_root'])
def test_shards_put_end_to_end_are_the_one_process_batches(lt, world, kind):
    one = epoch(lt, kind)
    parts = [epoch(lt, kind, shard=(r, world), workers=r % 2) for r in range(world)]
    for k, (x, y) in enumerate(one):
        assert torch.equal(torch.cat([p[k][0] for p in parts]), x) and torch.equal(torch.cat([p[k][1] for p in parts]), y)

@pytest.mark.parametrize('world', [2, 3])
def test_in_memory_shards_match_and_world_one_is_unchanged(world):
    data = in_memory()
    one = epoch(data, batch_size=32)
    parts = [epoch(data, batch_size=32, shard=(r, world)) for r in range(world)]
    for k, (x, y) in enumerate(one):
        assert torch.equal(torch.cat([p[k][0] for p in parts]), x) and torch.equal(torch.cat([p[k][1] for p in parts]), y)
    # world=1 draws what the device-side recipe always drew: the sampler's permutation, then per batch offsets and flips
    g = torch.Generator().manual_seed(0)
    idx = Sampler(data.train.labels).epoch(32, g)[0]
    oy, ox = torch.randint(0, 9, (32,), generator=g), torch.randint(0, 9, (32,), generator=g)
    f = torch.rand(32, generator=g) < 0.5
    img = torch.nn.functional.pad(data.train.images[idx[0]], (4, 4, 4, 4))[:, oy[0]:oy[0] + 8, ox[0]:ox[0] + 8]
    assert torch.equal(one[0][0][0], normalize((img.flip(2) if f[0] else img)[None], data.mean, data.std)[0])

@pytest.mark.parametrize('kind', SAMPLERS)
def test_the_pipeline_yields_the_samplers_indices(lt, kind):
    idx = Sampler(lt.train.labels, kind).epoch(4, torch.Generator().manual_seed(3))
    got = epoch(lt, kind, batch_size=4, seed=3, augment=False, workers=2)
    assert len(got) == len(idx)
    for (x, y), i in zip(got, idx):
        assert torch.equal(y, lt.train.labels[i])
        assert torch.equal(x, normalize(lt.train.images[i], lt.mean, lt.std))   # augment=False: the eval transform

def test_the_global_rngs_are_left_alone(lt):
    t, n = torch.get_rng_state(), np.random.get_state()[1].copy()
    epoch(lt, workers=2); list(eval_batches(lt.test.images, torch.arange(4), 2, lt.mean, lt.std, 'cpu', workers=2))
    assert torch.equal(t, torch.get_rng_state()) and (n == np.random.get_state()[1]).all()

def test_eval_batches_in_order_for_lazy_and_in_memory_sets(lt):
    idx = torch.tensor([8, 0, 3, 5, 1])
    ev = list(eval_batches(lt.test.images, idx, 2, lt.mean, lt.std, 'cpu', workers=2))
    assert [e.shape for e in ev] == [(2, 3, 24, 24)] * 2 + [(1, 3, 24, 24)]
    assert torch.equal(torch.cat(ev), normalize(lt.test.images[idx], lt.mean, lt.std))
    m = in_memory()
    ev = torch.cat(list(eval_batches(m.test.images, idx, 3, m.mean, m.std, 'cpu')))
    assert torch.equal(ev, normalize(m.test.images[idx], m.mean, m.std))

def test_eval_transform_is_resize_256_of_224_then_center_crop(tmp_path):
    from PIL import Image
    a = np.zeros((100, 200, 3), np.uint8); a[:, 100:] = 255                     # left half black, right half white
    Image.fromarray(a).save(tmp_path/'a.png')
    x = ListImages(tmp_path, ['a.png'], image_size=56)[torch.tensor([0])]
    # shorter side 100 -> 64 (= 56 * 256/224), so 200 -> 128, and the central 56 columns straddle the edge evenly
    assert x.shape == (1, 3, 56, 56) and (x[0, :, :, :26] == 0).all() and (x[0, :, :, 30:] == 255).all()

def test_bad_shard_is_a_clear_error(lt):
    for bad in [(2, 2), (0, 0), (-1, 2), 1, (0.5, 2)]:
        with pytest.raises(ValueError, match='shard='): check_shard(bad)
    with pytest.raises(ValueError, match='workers='): epoch(lt, workers=-1)

def rss_kb():
    return int(next(l for l in open('/proc/self/status') if l.startswith('VmRSS')).split()[1])

def test_a_100k_list_builds_fast_and_holds_no_image():
    base = '/dev/shm' if os.access('/dev/shm', os.W_OK) else None   # 100k empty files: ~1 s on tmpfs, far more on overlays
    d = Path(tempfile.mkdtemp(dir=base))
    try:
        folder, lines = d/'ImageNet_LT', []
        for c in range(1000):
            (folder/'train'/f'n{c:08d}').mkdir(parents=True)
            for j in range(100):
                rel = f'train/n{c:08d}/n{c:08d}_{j}.JPEG'
                os.close(os.open(folder/rel, os.O_CREAT | os.O_WRONLY)); lines.append(f'{rel} {c}')
        (folder/'ImageNet_LT_train.txt').write_text('\n'.join(lines) + '\n'); del lines
        (folder/'ImageNet_LT_test.txt').write_text(f'train/n00000000/n00000000_0.JPEG 0\n')
        r0, t = rss_kb(), time.perf_counter()
        data = list_dataset('imagenet_lt', data_root=d)
        took, grew = time.perf_counter() - t, (rss_kb() - r0) / 1024
        assert len(data.train) == 100_000 and data.counts.tolist() == [100] * 1000
        assert took < 4, f'building took {took:.1f} s'
        assert grew < 100, f'RSS grew by {grew:.0f} MB'
        assert data.train.images.paths.nbytes < 5e6                      # the paths, packed; no image
        print(f'100k-entry list: built in {took:.2f} s, RSS +{grew:.1f} MB')
    finally: shutil.rmtree(d)

def test_imagefolder_long_tailed_selection_is_seeded(tmp_path):
    write_fake_image_folder(tmp_path, counts=(10, 10, 10, 10), test_per_class=2, size=(20, 16))
    a = load_dataset('imagefolder', 10, n_max=10, seed=3, data_root=tmp_path, image_size=16)
    b = load_dataset('imagefolder', 10, n_max=10, seed=3, data_root=tmp_path, image_size=16)
    c = load_dataset('imagefolder', 10, n_max=10, seed=4, data_root=tmp_path, image_size=16)
    assert a.counts.tolist() == lt_counts(10, 4, 10) and len(a.test) == 8            # the test split stays whole
    assert (a.train.images.paths == b.train.images.paths).all() and (a.train.images.paths != c.train.images.paths).any()
    assert a.classes == ['c00', 'c01', 'c02', 'c03'] and a.spec['dataset'] == 'imagefolder'
    whole = load_dataset('imagefolder', None, data_root=tmp_path, image_size=16)
    assert whole.counts.tolist() == [10] * 4 and epoch(whole, batch_size=8, workers=1)[0][0].shape == (8, 3, 16, 16)

def test_imagefolder_errors_name_the_layout(tmp_path):
    with pytest.raises(FileNotFoundError, match=r'train/<class>/<image>.*data_root'):
        load_dataset('imagefolder', None, data_root=tmp_path)
    write_fake_image_folder(tmp_path, counts=(3, 3), test_per_class=1, test_name='test')
    assert len(load_dataset('imagefolder', None, data_root=tmp_path).test) == 2        # test/ for val/
    (tmp_path/'train'/'c02').mkdir()
    with pytest.raises(ValueError, match='holds no image'): load_dataset('imagefolder', None, data_root=tmp_path)
    (tmp_path/'train'/'c02').rmdir(); (tmp_path/'test'/'zz').mkdir()
    with pytest.raises(ValueError, match='train/ does not have'): load_dataset('imagefolder', None, data_root=tmp_path)
    (tmp_path/'test'/'zz').rmdir()
    with pytest.raises(ValueError, match='lower n_max'): load_dataset('imagefolder', 2, n_max=4, data_root=tmp_path)
    bad = tmp_path/'train'/'c01'/'0.jpg'; bad.write_bytes(b'not a jpeg')
    data = load_dataset('imagefolder', None, data_root=tmp_path, image_size=8)
    with pytest.raises(ValueError, match='not a readable image') as e: epoch(data, batch_size=6, workers=1)
    assert str(bad) in str(e.value)
