"The lazy list-file datasets through the trainer, and the data errors at the library level."
import pytest, torch
from lt_workbook.data import load_dataset, write_fake_list_dataset, lt_counts, LIST_DATASETS
from lt_workbook.training import TrainConfig, Trainer, Run, build_model, train_run

@pytest.mark.parametrize('name', list(LIST_DATASETS))
def test_list_dataset_trains_lazily(tmp_path, name):
    write_fake_list_dataset(tmp_path, name, counts=(6, 3, 1), test_per_class=2)
    data = load_dataset(name, imbalance_ratio=None, data_root=tmp_path, image_size=32)
    assert data.counts.tolist() == [6, 3, 1] and not isinstance(data.train.images, torch.Tensor)
    cfg = TrainConfig(epochs=1, batch_size=4, device='cpu')
    run = train_run(data, cfg, 'list', name, run_dir=tmp_path/'runs'); summary = run.summary
    assert summary['status'] == 'completed' and len(summary['per_class']) == 3
    assert run.params['dataset'] == name and run.params['image_size'] == 32

def test_list_dataset_rejects_a_ratio(tmp_path):
    write_fake_list_dataset(tmp_path, 'inat2018')
    with pytest.raises(ValueError, match='long-tailed by construction'):
        load_dataset('inat2018', imbalance_ratio=100, data_root=tmp_path)

def test_missing_list_images_named(tmp_path):
    folder = write_fake_list_dataset(tmp_path, 'places_lt')
    next((folder/'train').rglob('*.jpg')).unlink()
    with pytest.raises(FileNotFoundError, match='missing under'):
        load_dataset('places_lt', imbalance_ratio=None, data_root=tmp_path)

def test_missing_cifar_names_path_and_remedy(tmp_path, monkeypatch):
    monkeypatch.setenv('LT_WORKBOOK_DATA', str(tmp_path))
    with pytest.raises(FileNotFoundError) as e: load_dataset('cifar100', download=False)
    assert str(tmp_path/'cifar-100-python') in str(e.value) and 'data_root' in str(e.value)

def test_corrupt_cifar_is_a_clear_error(tmp_path):
    from lt_workbook.data import write_fake_cifar
    folder = write_fake_cifar(tmp_path, 'cifar10')
    (folder/'data_batch_3').write_bytes(b'not a pickle')
    with pytest.raises(ValueError, match='not readable CIFAR'):
        load_dataset('cifar10', data_root=tmp_path, download=False)

def test_params_mismatch_in_an_existing_run_dir(tmp_path):
    run = Run.create(tmp_path, 'x', {'lr': 0.1})
    (run.path/'params.json').write_text('{"lr": 0.2}')
    with pytest.raises(ValueError, match='other parameters'):
        Run.create(tmp_path, 'x', {'lr': 0.1})
