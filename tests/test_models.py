"""Models: forward shapes on CPU, the documented freeze="last2" set, offline pretrained errors."""
from __future__ import annotations

import copy
import urllib.error

import pytest
import torch

from lilaw_edu.datasets import load_dataset
from lilaw_edu.datasets.registry import default_model
from lilaw_edu.models import PretrainedUnavailableError, SmallCNN, StackedLSTM, build_model, last_two_layers, model_for_dataset, trainable_parameter_count

torch.set_num_threads(1)


def numel(module):
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("name, channels, size, shape", [
    ("lstm", 1, 140, (3, 1, 140)),
    ("small_cnn", 1, 8, (3, 1, 8, 8)),
    ("small_cnn", 1, 28, (3, 1, 28, 28)),
    ("small_cnn", 3, 32, (3, 3, 32, 32)),
    ("resnet18", 1, 28, (2, 1, 28, 28)),
    ("resnet18", 3, 32, (2, 3, 32, 32)),
])
def test_forward_shapes(name, channels, size, shape):
    torch.manual_seed(0)
    model = build_model(name, 7, in_channels=channels, input_size=size).eval()
    with torch.no_grad():
        out = model(torch.rand(shape))
    assert out.shape == (shape[0], 7) and torch.isfinite(out).all()


def test_resnet18_stems():
    small = build_model("resnet18", 2, in_channels=1, input_size=28)
    assert small.conv1.kernel_size == (3, 3) and small.conv1.stride == (1, 1)
    assert isinstance(small.maxpool, torch.nn.Identity) and small.conv1.in_channels == 1
    big = build_model("resnet18", 2, in_channels=1, input_size=224)
    assert big.conv1.kernel_size == (7, 7) and big.conv1.in_channels == 1
    assert isinstance(big.maxpool, torch.nn.MaxPool2d)
    with torch.no_grad():
        assert big.eval()(torch.rand(1, 1, 96, 96)).shape == (1, 2)


def test_vit_b16_architecture_and_forward():
    model = build_model("vit_b16", 10, in_channels=3, input_size=32).eval()  # 2x2 patches: cheap
    blocks = model.blocks if hasattr(model, "blocks") else model.encoder.layers
    assert len(blocks) == 12
    assert 85e6 < numel(model) < 86.5e6                  # ViT-B/16 backbone + 10-way head
    with torch.no_grad():
        assert model(torch.rand(2, 3, 32, 32)).shape == (2, 10)
    apply_last2 = build_model("vit_b16", 10, in_channels=3, input_size=32, freeze="last2")
    head = apply_last2.head if hasattr(apply_last2, "head") else apply_last2.heads
    assert trainable_parameter_count(apply_last2) == numel(blocks[-1]) + numel(head)
    with pytest.raises(ValueError, match="multiple of 16"):
        build_model("vit_b16", 10, in_channels=3, input_size=30)


@pytest.mark.parametrize("name, size, prefixes", [
    ("lstm", 140, ("layers.1.", "head.")),
    ("small_cnn", 28, ("blocks.2.", "head.")),
    ("resnet18", 32, ("layer4.", "fc.")),
])
def test_freeze_last2_exact_parameters(name, size, prefixes):
    model = build_model(name, 5, in_channels=1, input_size=size, freeze="last2")
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    expected = {n for n, _ in model.named_parameters() if n.startswith(prefixes)}
    assert trainable == expected and trainable
    assert trainable_parameter_count(model) == sum(numel(m) for m in last_two_layers(model))
    assert trainable_parameter_count(model) < numel(model)
    full = build_model(name, 5, in_channels=1, input_size=size)
    assert trainable_parameter_count(full) == numel(full)
    # gradients reach only the trainable part
    x = torch.rand(4, 1, size) if name == "lstm" else torch.rand(4, 1, size, size)
    model(x).sum().backward()
    for n, p in model.named_parameters():
        assert (p.grad is not None) == (n in expected), n


def test_last_two_layers_follow_deepcopy():
    model = build_model("resnet18", 3, in_channels=3, input_size=32)
    twin = copy.deepcopy(model)
    assert last_two_layers(twin)[0] is twin.layer4 and last_two_layers(twin)[1] is twin.fc


def test_lstm_accepts_flat_series():
    model = StackedLSTM(5).eval()
    x = torch.randn(2, 140)
    with torch.no_grad():
        assert torch.equal(model(x), model(x[:, None]))
    assert len(model.layers) == 2 and model.layers[0].hidden_size == 64


def _offline(*args, **kwargs):
    raise urllib.error.URLError("no network (test)")


def test_pretrained_offline_raises_helpful_error(monkeypatch):
    import torchvision.models._api as api

    monkeypatch.setattr(api, "load_state_dict_from_url", _offline)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")   # timm path, if timm is installed: no network
    with pytest.raises(PretrainedUnavailableError) as info:
        build_model("resnet18", 2, in_channels=3, input_size=224, pretrained=True)
    msg = str(info.value)
    assert "pretrained=False" in msg and "--set pretrained=false" in msg and "resnet18" in msg
    assert isinstance(info.value, ValueError)
    with pytest.raises(PretrainedUnavailableError, match="pretrained=False"):
        build_model("vit_b16", 10, in_channels=3, input_size=224, pretrained=True)


def test_bad_arguments():
    with pytest.raises(ValueError, match="name must be one of"):
        build_model("vgg", 2, in_channels=1, input_size=28)
    with pytest.raises(ValueError, match="freeze must be one of"):
        build_model("small_cnn", 2, in_channels=1, input_size=28, freeze="last3")
    with pytest.raises(ValueError, match="num_classes must be a positive int, got 0"):
        build_model("small_cnn", 0, in_channels=1, input_size=28)
    with pytest.raises(ValueError, match="pretrained=True is not available for 'lstm'"):
        build_model("lstm", 2, in_channels=1, input_size=140, pretrained=True)


def test_model_for_dataset_defaults():
    digits = load_dataset("digits")
    model = model_for_dataset(digits, name=default_model("digits"))
    assert isinstance(model, SmallCNN)
    with torch.no_grad():
        assert model.eval()(digits.x_test[:5]).shape == (5, 10)
    assert default_model("digits", input_size=64) == "resnet18"  # CPU rule: small CNN up to 32 px
    assert default_model("ecg5000") == "lstm" and default_model("ecg5000", scale="paper") == "lstm"
    assert default_model("pneumoniamnist", scale="paper") == "resnet18"
    assert default_model("cifar100", scale="paper") == "vit_b16"
    with pytest.raises(ValueError, match="'digits' is not in the paper"):
        default_model("digits", scale="paper")
