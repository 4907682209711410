"""Train the paper's head (dense 40, 30, 20, C) with cross-entropy; keep the best-validation epoch.

Frozen backbone (VGG16): features are computed once and cached, then only the head trains
(SGD, lr 1e-3, batch 32 — the paper's protocol). Trainable backbone (small VGG): the whole
network trains end to end (default SGD lr 0.02 with momentum 0.9: plain SGD at 1e-3 from scratch
does not converge within the demo's budget). Either way the model kept is the one from the epoch
with the best validation accuracy (paper §5: epochs chosen by validation accuracy).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from cadcam_numeric.engine.activation_modules import activation_module
from cadcam_numeric.engine.head import ChannelsLast
from cadcam_numeric.pipeline.backbones import CNN, Backbone
from cadcam_numeric.pipeline.data import DataSplits, ImageSet, to_model_input

__all__ = ["TrainHistory", "make_head", "train_model"]


def make_head(
    backbone: Backbone,
    n_classes: int,
    widths: tuple[int, ...] = (40, 30, 20),
    activation: str = "relu",
    activations: list[nn.Module] | None = None,
    channels_last: bool = False,
) -> nn.Sequential:
    """[MaxPool2d(2)] [ChannelsLast] Flatten, then Linear + activation per width, then Linear to the classes.

    ``activations``: one module per hidden layer (an architecture spec's); default ``activation``
    everywhere. ``channels_last`` flattens in the Keras order (M, N', T).
    """
    if activations is not None and len(activations) != len(widths):
        raise ValueError(f"activations: expected one module per hidden layer ({len(widths)}), got {len(activations)}")
    size = backbone.feature_size // 2 if backbone.head_pooling else backbone.feature_size
    modules: list[nn.Module] = [nn.MaxPool2d(2)] if backbone.head_pooling else []
    if channels_last:
        modules.append(ChannelsLast())
    modules.append(nn.Flatten())
    previous = backbone.channels * size * size
    for i, width in enumerate(widths):
        act = activations[i] if activations is not None else activation_module(activation)
        modules += [nn.Linear(previous, width), act]
        previous = width
    modules.append(nn.Linear(previous, n_classes))
    return nn.Sequential(*modules)


@dataclass
class TrainHistory:
    val_accuracy: list[float] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    best_epoch: int = 0  # 1-based

    def to_json(self) -> dict[str, object]:
        return {"val_accuracy": self.val_accuracy, "train_loss": self.train_loss, "best_epoch": self.best_epoch}


@torch.no_grad()
def extract_features(
    backbone: nn.Module,
    images: ImageSet,
    input_size: int,
    device: torch.device,
    desc: str = "features",
    batch_size: int = 64,
) -> Tensor:
    """Backbone outputs for a whole set, on the CPU, with a progress bar."""
    backbone.eval()
    out = []
    batches = images.batches(batch_size, input_size)
    for x, _ in tqdm(batches, total=(len(images) + batch_size - 1) // batch_size, desc=desc, leave=False):
        out.append(backbone(x.to(device)).cpu())
    return torch.cat(out)


def _accuracy(logits: Tensor, labels: Tensor) -> float:
    return float((logits.argmax(1) == labels).float().mean())


def train_model(
    model: CNN,
    backbone: Backbone,
    data: DataSplits,
    epochs: int,
    device: torch.device,
    lr: float,
    momentum: float,
    batch_size: int = 32,
    seed: int = 0,
    cached: dict[str, Tensor] | None = None,
) -> TrainHistory:
    """Train in place; on return ``model`` holds the weights of the best-validation epoch.

    ``cached``: backbone features of the ``train`` and ``val`` splits (frozen backbone only);
    computed here when not given.
    """
    generator = torch.Generator().manual_seed(seed)
    model.to(device)
    params = model.head.parameters() if not backbone.trainable else model.parameters()
    optimiser = torch.optim.SGD(params, lr=lr, momentum=momentum)
    loss_fn = nn.CrossEntropyLoss()
    history = TrainHistory()
    best_state, best_acc = None, -1.0
    if not backbone.trainable:
        cached = cached or {}
        train_x = cached.get("train")
        if train_x is None:
            train_x = extract_features(model.backbone, data.train, backbone.input_size, device, "train features")
        val_x = cached.get("val")
        if val_x is None:
            val_x = extract_features(model.backbone, data.val, backbone.input_size, device, "val features")
    for _ in tqdm(range(epochs), desc="epochs", leave=False):
        model.train()
        if not backbone.trainable:
            model.backbone.eval()
        order = torch.randperm(len(data.train), generator=generator)
        total = 0.0
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            y = data.train.labels[idx].to(device)
            if backbone.trainable:
                logits = model(to_model_input(data.train.images[idx], backbone.input_size).to(device))
            else:
                logits = model.head(train_x[idx].to(device))
            loss = loss_fn(logits, y)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += float(loss.detach()) * len(idx)
        model.eval()
        with torch.no_grad():
            if backbone.trainable:
                val_logits = torch.cat(
                    [model(x.to(device)).cpu() for x, _ in data.val.batches(256, backbone.input_size)]
                )
            else:
                val_logits = model.head(val_x.to(device)).cpu()
        acc = _accuracy(val_logits, data.val.labels)
        history.val_accuracy.append(acc)
        history.train_loss.append(total / len(order))
        if acc > best_acc:
            best_acc, best_state = acc, copy.deepcopy(model.state_dict())
            history.best_epoch = len(history.val_accuracy)
    model.load_state_dict(best_state)
    model.eval()
    return history
