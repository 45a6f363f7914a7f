"""Models of the paper (§4.2) plus a small CNN for CPU runs.

=========== ================================================================
name        model
=========== ================================================================
"lstm"      stacked LSTM (2 layers, hidden 64) + linear head on the last
            step, trained from scratch; for ECG5000, input (N, 1, T).
"small_cnn" 3 conv blocks (conv 3x3 + BatchNorm + ReLU; widths 32/64/128,
            2x2 max-pool after blocks 1 and 2 when the input is >= 16 px),
            global average pool, linear head. For 8-32 px images on CPU.
"resnet18"  torchvision ResNet-18. For inputs <= 64 px the stem is a 3x3
            stride-1 conv without max-pool (CIFAR-style); ``in_channels`` != 3
            replaces the first conv. ``pretrained=True`` loads torchvision's
            ImageNet-1K weights (``IMAGENET1K_V1``): the paper says ImageNet-21K,
            which no library ships for ResNet-18.
"vit_b16"   ViT-B/16. With timm installed: ``vit_base_patch16_224.augreg_in21k``
            (ImageNet-21K, as in the paper). Without timm: torchvision
            ``vit_b_16`` (pretrained = ``IMAGENET1K_V1``, ImageNet-1K).
=========== ================================================================

``freeze="last2"`` (the paper's "fine-tune only the last two layers") leaves
trainable exactly the last feature layer and the classification head:
ViT: last transformer block + head; ResNet-18: ``layer4`` + ``fc``; stacked
LSTM: last LSTM layer + head; small CNN: last conv block + head. Every other
parameter gets ``requires_grad=False`` (BatchNorm running statistics of frozen
layers still update in train mode; call ``.eval()`` on them if unwanted).
"""
from __future__ import annotations

import importlib.util

from torch import Tensor, nn

__all__ = ["MODEL_NAMES", "PretrainedUnavailableError", "build_model", "trainable_parameter_count",
           "last_two_layers", "model_for_dataset", "StackedLSTM", "SmallCNN"]

MODEL_NAMES = ("lstm", "small_cnn", "resnet18", "vit_b16")
FREEZE_MODES = ("none", "last2")
TIMM_VIT = "vit_base_patch16_224.augreg_in21k"


class PretrainedUnavailableError(ValueError):
    """Pretrained weights could not be downloaded or loaded (e.g. offline)."""


class StackedLSTM(nn.Module):
    """Stacked LSTM classifier for series.

    One ``nn.LSTM`` per layer (so "the last layer" is a module of its own),
    then a linear head on the hidden state of the last time step.

    Parameters
    ----------
    num_classes : int
    in_channels : int
        Features per time step (1 for ECG5000).
    hidden_size, num_layers : int
    dropout : float
        Dropout between LSTM layers.
    """

    def __init__(self, num_classes: int, in_channels: int = 1, hidden_size: int = 64,
                 num_layers: int = 2, dropout: float = 0.0):
        super().__init__()
        sizes = [in_channels] + [hidden_size] * num_layers
        self.layers = nn.ModuleList(nn.LSTM(sizes[i], sizes[i + 1], batch_first=True)
                                    for i in range(num_layers))
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        """x : (N, C, T) or (N, T) -> logits (N, num_classes)."""
        if x.dim() == 2:
            x = x.unsqueeze(1)
        h = x.transpose(1, 2)  # (N, T, C)
        for i, layer in enumerate(self.layers):
            h, _ = layer(h)
            if i < len(self.layers) - 1:
                h = self.dropout(h)
        return self.head(h[:, -1])

    def last_two_layers(self) -> list:
        return [self.layers[-1], self.head]


def _conv_block(c_in, c_out, pool):
    layers = [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


class SmallCNN(nn.Module):
    """Three conv blocks + global average pool + linear head (about 95k parameters).

    Parameters
    ----------
    num_classes, in_channels : int
    input_size : int
        Image side; pooling is used only when it is >= 16 px.
    widths : tuple of int
    """

    def __init__(self, num_classes: int, in_channels: int = 1, input_size: int = 28,
                 widths: tuple = (32, 64, 128)):
        super().__init__()
        pool = input_size >= 16
        self.blocks = nn.Sequential(
            _conv_block(in_channels, widths[0], pool),
            _conv_block(widths[0], widths[1], pool),
            _conv_block(widths[1], widths[2], False))
        self.head = nn.Linear(widths[2], num_classes)

    def forward(self, x: Tensor) -> Tensor:
        """x : (N, C, H, W) -> logits (N, num_classes)."""
        return self.head(self.blocks(x).mean(dim=(2, 3)))

    def last_two_layers(self) -> list:
        return [self.blocks[-1], self.head]


# ------------------------------------------------------------------ pretrained

def _offline_error(what, err):
    return PretrainedUnavailableError(
        f"could not load pretrained weights for {what} ({type(err).__name__}: {err}). "
        "The weights are downloaded on first use and need internet; run without "
        "pretraining (pretrained=False; CLI: --set pretrained=false) or pre-fill the torch hub / "
        "Hugging Face cache on a connected machine.")


def _torchvision_state(weights, what):
    try:
        return weights.get_state_dict(progress=False, check_hash=True)
    except Exception as err:  # noqa: BLE001 (network, hash, cache errors all mean "unavailable")
        raise _offline_error(what, err) from err


def _adapt_first_conv(weight: Tensor, in_channels: int) -> Tensor:
    """RGB conv kernel (O, 3, k, k) -> (O, in_channels, k, k) keeping the response to grey inputs."""
    if in_channels == weight.shape[1]:
        return weight
    mean = weight.sum(dim=1, keepdim=True) / in_channels
    return mean.repeat(1, in_channels, 1, 1)


def _resnet18(num_classes, in_channels, input_size, pretrained):
    from torchvision.models import ResNet18_Weights, resnet18

    model = resnet18(weights=None)
    if pretrained:
        state = _torchvision_state(ResNet18_Weights.IMAGENET1K_V1, "resnet18 (torchvision IMAGENET1K_V1)")
        model.load_state_dict(state)
    small = input_size <= 64
    if small:
        model.conv1 = nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()
    elif in_channels != 3:
        old = model.conv1.weight.data
        model.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        model.conv1.weight.data.copy_(_adapt_first_conv(old, in_channels))
    model.fc = nn.Linear(model.fc.in_features, num_classes)
    return model


def _vit_timm(num_classes, in_channels, input_size, pretrained):
    import timm

    try:
        model = timm.create_model(TIMM_VIT, pretrained=pretrained, num_classes=num_classes,
                                  in_chans=in_channels, img_size=input_size)
    except Exception as err:  # noqa: BLE001
        if not pretrained:
            raise
        raise _offline_error(f"timm {TIMM_VIT}", err) from err
    return model


def _vit_torchvision(num_classes, in_channels, input_size, pretrained, num_layers=12,
                     num_heads=12, hidden_dim=768, mlp_dim=3072):
    from torchvision.models import ViT_B_16_Weights
    from torchvision.models.vision_transformer import VisionTransformer

    if input_size % 16:
        raise ValueError(f"input_size for vit_b16 must be a multiple of 16, got {input_size}")
    if pretrained and input_size != 224:
        raise ValueError(f"pretrained vit_b16 needs input_size=224, got {input_size}")
    model = VisionTransformer(image_size=input_size, patch_size=16, num_layers=num_layers,
                              num_heads=num_heads, hidden_dim=hidden_dim, mlp_dim=mlp_dim)
    if pretrained:
        model.load_state_dict(_torchvision_state(ViT_B_16_Weights.IMAGENET1K_V1,
                                                 "vit_b_16 (torchvision IMAGENET1K_V1)"))
    if in_channels != 3:
        old = model.conv_proj
        model.conv_proj = nn.Conv2d(in_channels, hidden_dim, 16, stride=16)
        model.conv_proj.weight.data.copy_(_adapt_first_conv(old.weight.data, in_channels))
        model.conv_proj.bias.data.copy_(old.bias.data)
    model.heads = nn.Sequential(nn.Linear(hidden_dim, num_classes))
    return model


# ------------------------------------------------------------------- builders

def last_two_layers(model: nn.Module) -> list:
    """The modules ``freeze="last2"`` keeps trainable (see the module docstring).

    ResNet: ``[layer4, fc]``; torchvision ViT: ``[encoder.layers[-1], heads]``;
    timm ViT: ``[blocks[-1], head]``; models defining ``last_two_layers()`` (the
    LSTM and small CNN here): what it returns; anything else: the last two leaf
    modules that own parameters.
    """
    from torchvision.models import ResNet
    from torchvision.models.vision_transformer import VisionTransformer

    if hasattr(model, "last_two_layers"):
        return list(model.last_two_layers())
    if isinstance(model, ResNet):
        return [model.layer4, model.fc]
    if isinstance(model, VisionTransformer):
        return [model.encoder.layers[-1], model.heads]
    if hasattr(model, "blocks") and hasattr(model, "head"):  # timm VisionTransformer
        return [model.blocks[-1], model.head]
    leaves = [m for m in model.modules()
              if not list(m.children()) and any(True for _ in m.parameters(recurse=False))]
    return leaves[-2:]


def apply_freeze(model: nn.Module, freeze: str) -> nn.Module:
    """Set ``requires_grad`` per ``freeze`` (``"none"`` or ``"last2"``); returns ``model``."""
    if freeze not in FREEZE_MODES:
        raise ValueError(f"freeze must be one of {FREEZE_MODES}, got {freeze!r}")
    if freeze == "last2":
        for p in model.parameters():
            p.requires_grad_(False)
        for module in last_two_layers(model):
            for p in module.parameters():
                p.requires_grad_(True)
    return model


def trainable_parameter_count(model: nn.Module) -> int:
    """Number of scalar parameters with ``requires_grad=True``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def build_model(name: str, num_classes: int, *, in_channels: int, input_size: int,
                pretrained: bool = False, freeze: str = "none") -> nn.Module:
    """Build a classifier.

    Parameters
    ----------
    name : str
        One of :data:`MODEL_NAMES`: ``"lstm"``, ``"small_cnn"``, ``"resnet18"``, ``"vit_b16"``.
    num_classes : int
    in_channels : int
        Input channels C (features per step for ``"lstm"``).
    input_size : int
        Image side H = W, or series length T for ``"lstm"`` (unused there).
    pretrained : bool
        Load pretrained weights (``resnet18``, ``vit_b16`` only); needs internet or a
        filled cache, else raises :class:`PretrainedUnavailableError`.
    freeze : str
        ``"none"`` or ``"last2"`` (only the last two layers trainable).

    Returns
    -------
    nn.Module
        Maps inputs (N, C, H, W) (or (N, C, T) for ``"lstm"``) to logits (N, num_classes).
    """
    if name not in MODEL_NAMES:
        raise ValueError(f"name must be one of {MODEL_NAMES}, got {name!r}")
    for arg, value in (("num_classes", num_classes), ("in_channels", in_channels),
                       ("input_size", input_size)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{arg} must be a positive int, got {value!r}")
    if pretrained and name in ("lstm", "small_cnn"):
        raise ValueError(f"pretrained=True is not available for {name!r} (trained from scratch)")
    if name == "lstm":
        model = StackedLSTM(num_classes, in_channels)
    elif name == "small_cnn":
        model = SmallCNN(num_classes, in_channels, input_size)
    elif name == "resnet18":
        model = _resnet18(num_classes, in_channels, input_size, pretrained)
    elif importlib.util.find_spec("timm") is not None:
        model = _vit_timm(num_classes, in_channels, input_size, pretrained)
    else:
        model = _vit_torchvision(num_classes, in_channels, input_size, pretrained)
    return apply_freeze(model, freeze)


def model_for_dataset(splits, *, name: str, pretrained: bool = False, freeze: str = "none") -> nn.Module:
    """Build model ``name`` sized for ``splits``' inputs and classes.

    A dataset's default model is a dataset fact:
    ``lilaw_edu.datasets.registry.default_model(splits.name, scale="cpu" | "paper")``.
    """
    size = splits.x_train.shape[-1]
    return build_model(name, splits.num_classes, in_channels=splits.in_channels,
                       input_size=int(size), pretrained=pretrained, freeze=freeze)
