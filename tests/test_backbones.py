"""The 224-px backbones (notebook 01: torchvision's ResNet-10/50/152, ResNeXt-50) with every head of the workbook, ResLT's
branches on ResNet-10, and DARTS' ImageNet stem (notebook 04). Fast: 64-px inputs, batch 2, no notebook executed."""
import inspect
import pytest, torch
import torch.nn.functional as F
from lt_workbook.training import ARCHS, CLASSIFIERS, TorchvisionNet, count_params

BACKBONES = {'resnet10': 512, 'resnet50': 2048, 'resnet152': 2048, 'resnext50_32x4d': 2048}   # name -> feature dimension

def pair_heads():
    "The heads of `CLASSIFIERS` built as `head(in_features, num_classes)` (two required arguments, the rest defaulted)."
    def takes_pair(cls):
        ps = [p for n, p in inspect.signature(cls).parameters.items() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        return len(ps) >= 2 and all(p.default is not p.empty for p in ps[2:])
    return sorted(k for k, c in CLASSIFIERS.items() if takes_pair(c))

def test_heads_listed():
    assert {'linear', 'normed', 'etf', 'linear_nc', 'etf_cosine', 'etf_raw'} <= set(pair_heads())
    assert set(BACKBONES) <= set(ARCHS)

@pytest.mark.parametrize('arch', sorted(BACKBONES))
def test_every_head(arch):
    """Each backbone with each head: ResNet-10 built by its `ARCHS` builder once per head; the larger ones (a second or
    more to build each) built once, their 64-px features fed to every head as the builder would place it (same class)."""
    x = torch.randn(2, 3, 64, 64)
    torch.manual_seed(0)
    net = ARCHS[arch](5, classifier='normed').eval()
    assert isinstance(net, TorchvisionNet) and net.feat_dim == BACKBONES[arch]
    with torch.no_grad(): fm, z = net.feature_map(x), net(x)
    assert fm.shape == (2, BACKBONES[arch], 2, 2), (arch, fm.shape)   # 64 px / 32
    assert z.shape == (2, 5) and z.abs().max() <= 1 + 1e-5              # cosine logits
    f = net.features(x).detach()
    assert f.shape == (2, BACKBONES[arch])
    for head in pair_heads():
        if arch == 'resnet10':
            built = ARCHS[arch](5, classifier=head).eval()
            assert type(built.classifier) is CLASSIFIERS[head]
            with torch.no_grad(): z = built(x)
        else:
            with torch.no_grad(): z = CLASSIFIERS[head](net.feat_dim, 5)(f)
        assert z.shape == (2, 5) and torch.isfinite(z).all(), (arch, head)

def test_reslt_on_resnet10():
    "ResLT's branches on ResNet-10's last stage: branch logits, its loss, and gradients reaching the trunk and the branches."
    from lt_workbook.reslt import reslt_net, reslt_loss
    torch.manual_seed(0)
    net = ARCHS['reslt'](6, backbone='resnet10')
    x, y = torch.randn(2, 3, 64, 64), torch.tensor([0, 5])
    z = net(x, branches=True)
    assert z.shape == (2, 3, 6)
    loss = reslt_loss(z, y, net.masks, fusion=net.fusion)
    loss.backward()
    assert torch.isfinite(loss)
    assert net.backbone.trunk.conv1.weight.grad is not None and net.backbone.trunk.conv1.weight.grad.abs().sum() > 0
    assert all(p.grad is not None for p in net.branches.parameters())
    assert net(x).shape == (2, 6) and reslt_net(6, 'normed', backbone='resnet10')(x).shape == (2, 6)

def test_torchvision_sizes():
    "torchvision's counts with a 1000-class linear head (torchvision 0.29: resnet50(), resnext50_32x4d()); notebook 01 compares them live."
    assert count_params(ARCHS['resnet50'](1000)) == 25_557_032
    assert count_params(ARCHS['resnext50_32x4d'](1000)) == 25_028_904

def test_pretrained_round_trip(tmp_path):
    src = ARCHS['resnet10'](3)
    torch.save({**src.trunk.state_dict(), 'fc.weight': torch.zeros(1000, 512), 'fc.bias': torch.zeros(1000)}, tmp_path/'r10.pt')
    dst = ARCHS['resnet10'](3, pretrained=str(tmp_path/'r10.pt'))
    a, b = src.trunk.state_dict(), dst.trunk.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    sd = dict(a); sd.pop('layer4.0.bn2.weight'); torch.save(sd, tmp_path/'short.pt')
    (tmp_path/'junk.pt').write_bytes(b'not a state dict')
    for f, msg in (('short.pt', 'missing keys: layer4.0.bn2.weight'), ('junk.pt', 'not a readable state dict')):
        with pytest.raises(ValueError, match=msg) as e: ARCHS['resnet10'](3, pretrained=str(tmp_path/f))
        assert str(tmp_path/f) in str(e.value)

def test_darts_imagenet_stem():
    from lt_workbook.darts import GenotypeNet, Supernet, GENOTYPES, SEARCH_SPACES
    torch.manual_seed(0)
    x = torch.randn(2, 3, 64, 64)
    net = GenotypeNet(5, 'etf', GENOTYPES['DARTS_V2'], C=8, layers=3, stem='imagenet')
    assert net.feature_map(x).shape[-2:] == (2, 2) and net(x).shape == (2, 5)   # 1/32 of the side
    sn = Supernet(5, 'linear', SEARCH_SPACES['lt'], C=4, layers=3, stem='imagenet')
    F.cross_entropy(sn(x), torch.tensor([1, 2])).backward()
    assert all(a.grad is not None for a in sn.arch_parameters())
    with pytest.raises(ValueError, match='stem_stride=2'): Supernet(5, C=4, layers=3, stem='imagenet', stem_stride=2)
