"Issue 23, data half: CIFAR batches are data, never code; bad data parameters and broken data files are clear errors."
import os, pickle
import numpy as np, pytest, torch
from lt_workbook.data import load_dataset, write_fake_cifar, write_fake_list_dataset, lt_counts

# --- defect 1: CIFAR's python batches are read with a restricted unpickler

def _cifar_batch(n=20, C=10, bytes_keys=True):
    "A batch in the real CIFAR layout: b'data' uint8 N x 3072, b'labels' list of int, b'filenames', b'batch_label'."
    k = (lambda s: s.encode()) if bytes_keys else (lambda s: s)
    y = [i % C for i in range(n)]
    return {k('batch_label'): b'training batch 1 of 5', k('labels'): y,
            k('data'): np.random.RandomState(0).randint(0, 256, (n, 3072), dtype=np.uint8),
            k('filenames'): [f'img_{i}.png'.encode() for i in range(n)]}

@pytest.mark.parametrize('protocol', [2, 4, 5])
def test_real_cifar_layout_still_loads(tmp_path, protocol):
    folder = write_fake_cifar(tmp_path, 'cifar10', per_class=10, test_per_class=2)
    for f in ['data_batch_1', 'data_batch_2', 'data_batch_3', 'data_batch_4', 'data_batch_5']:
        (folder/f).write_bytes(pickle.dumps(_cifar_batch(bytes_keys=f != 'data_batch_2'), protocol=protocol))
    ds = load_dataset('cifar10', imbalance_ratio=2, data_root=tmp_path, download=False)
    assert ds.counts.tolist() == lt_counts(10, 10, 2) and ds.train.images.dtype == torch.uint8

class _Marker:
    "A pickle payload that would create a file when unpickled (harmless, and visible)."
    def __init__(self, path): self.path = path
    def __reduce__(self): return (open, (self.path, 'w'))

class _GetPid:
    def __reduce__(self): return (os.getpid, ())

@pytest.mark.parametrize('where', ['data_batch_4', 'test_batch', 'batches.meta'])
def test_crafted_cifar_batch_is_refused(tmp_path, where):
    folder = write_fake_cifar(tmp_path, 'cifar10')
    marker = tmp_path/'pwned'
    batch = _cifar_batch(); batch[b'filenames'] = _Marker(str(marker))
    (folder/where).write_bytes(pickle.dumps(batch))
    with pytest.raises(pickle.UnpicklingError) as e:
        load_dataset('cifar10', data_root=tmp_path, download=False)
    assert str(folder/where) in str(e.value) and 'open' in str(e.value), e.value
    assert not marker.exists()

def test_cifar_batch_calling_a_function_is_refused(tmp_path):
    folder = write_fake_cifar(tmp_path, 'cifar10')
    (folder/'data_batch_1').write_bytes(pickle.dumps({'data': _GetPid(), 'labels': [0]}))
    with pytest.raises(pickle.UnpicklingError, match=r'refused to load the global (os|posix)\.getpid') as e:
        load_dataset('cifar10', data_root=tmp_path, download=False)
    assert str(folder/'data_batch_1') in str(e.value)

# --- missing or corrupt data files: the file is named, with what to do

def test_truncated_cifar_batch_names_the_file(tmp_path):
    folder = write_fake_cifar(tmp_path, 'cifar10')
    b = (folder/'data_batch_2').read_bytes(); (folder/'data_batch_2').write_bytes(b[:len(b) // 2])
    with pytest.raises(ValueError, match='extract') as e:
        load_dataset('cifar10', data_root=tmp_path, download=False)
    assert str(folder/'data_batch_2') in str(e.value)

def test_cifar_batch_of_another_layout_names_the_file(tmp_path):
    folder = write_fake_cifar(tmp_path, 'cifar10', per_class=10)
    bad = _cifar_batch(); bad[b'labels'] = bad[b'labels'][:-3]   # labels no longer line up with the images
    (folder/'data_batch_5').write_bytes(pickle.dumps(bad))
    with pytest.raises(ValueError, match='20 images but 17 labels') as e:
        load_dataset('cifar10', data_root=tmp_path, download=False)
    assert str(folder/'data_batch_5') in str(e.value)
    (folder/'data_batch_5').write_bytes(pickle.dumps({'labels': [0]}))
    with pytest.raises(ValueError, match="no entry 'data'") as e:
        load_dataset('cifar10', data_root=tmp_path, download=False)
    assert str(folder/'data_batch_5') in str(e.value)

def test_missing_list_file_says_what_to_do(tmp_path):
    folder = write_fake_list_dataset(tmp_path, 'places_lt')
    (folder/'Places_LT_train.txt').unlink()
    with pytest.raises(FileNotFoundError, match='data_root') as e:
        load_dataset('places_lt', imbalance_ratio=None, data_root=tmp_path)
    assert str(folder/'Places_LT_train.txt') in str(e.value)

def test_list_file_pointing_at_missing_images_says_what_to_do(tmp_path):
    folder = write_fake_list_dataset(tmp_path, 'places_lt')
    (folder/'test'/'1'/'0.jpg').unlink()
    with pytest.raises(FileNotFoundError, match='restore them') as e:
        load_dataset('places_lt', imbalance_ratio=None, data_root=tmp_path)
    assert 'test/1/0.jpg' in str(e.value) and str(folder/'Places_LT_test.txt') in str(e.value)

def test_truncated_listed_image_names_the_file(tmp_path):
    folder = write_fake_list_dataset(tmp_path, 'places_lt', counts=(2, 1), size=(64, 48))
    jpg = folder/'train'/'0'/'1.jpg'; jpg.write_bytes(jpg.read_bytes()[:300])
    ds = load_dataset('places_lt', imbalance_ratio=None, data_root=tmp_path, image_size=16)   # lazy: read on use
    with pytest.raises(ValueError, match='not a readable image') as e: ds.train.images[torch.arange(3)]
    assert str(jpg) in str(e.value)

# --- defect 10: n_max and the other numeric data parameters

@pytest.mark.parametrize('n_max', [0, -1, 40.5, '40', True])
def test_bad_n_max_is_a_clear_error(n_max):
    with pytest.raises(ValueError, match=r'^n_max=.*expected a whole number >= 1 \(or None for the default\)'):
        load_dataset('mnist5k', 10, n_max=n_max)

def test_n_max_zero_is_not_the_default_for_cifar(tmp_path):
    write_fake_cifar(tmp_path, 'cifar10', per_class=10)
    with pytest.raises(ValueError, match='^n_max=0'):
        load_dataset('cifar10', 2, n_max=0, data_root=tmp_path, download=False)
    assert load_dataset('cifar10', 2, n_max=None, data_root=tmp_path, download=False).spec['n_max'] == 10

@pytest.mark.parametrize('kw', [dict(imbalance_ratio='100'), dict(imbalance_ratio=None), dict(imbalance_ratio=0.5),
                                dict(imbalance_ratio=0), dict(imbalance_ratio=float('inf')), dict(seed=-1),
                                dict(seed=1.5), dict(seed='0'), dict(image_size=0)])
def test_bad_numeric_data_parameters_are_clear_errors(kw):
    name = next(iter(kw))
    with pytest.raises(ValueError, match=f'^{name}='):
        load_dataset('mnist5k', **{'imbalance_ratio': 10, **kw})

def test_whole_number_floats_are_ints():
    ref = load_dataset('mnist5k', 10, 'step', n_max=40, seed=1)
    ds = load_dataset('mnist5k', 10.0, 'step', n_max=40.0, seed=1.0)   # what papermill and YAML pass
    assert (ds.train.labels == ref.train.labels).all() and ds.spec == ref.spec
    assert type(ds.spec['n_max']) is int and ds.counts.tolist() == [40] * 5 + [4] * 5
    assert load_dataset('mnist5k', np.float64(10), n_max=np.int64(40)).spec == load_dataset('mnist5k', 10, n_max=40).spec
