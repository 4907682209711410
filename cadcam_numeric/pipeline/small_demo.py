"""A small model fitted for real in seconds: small_vgg trained on digits, PCA on dense layer 2 and
the paper's four SVMs. What the dataset bench times and what the tests build bundles from."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from cadcam_numeric.pipeline.backbones import CNN, Backbone, build_backbone
from cadcam_numeric.pipeline.bundle import save_bundle
from cadcam_numeric.pipeline.data import DataSplits, load_data
from cadcam_numeric.pipeline.fitting import fit_pca_and_svms, layer_outputs
from cadcam_numeric.pipeline.training import make_head, train_model

__all__ = ["SmallDemo", "small_demo", "small_demo_bundle"]

#: the pipeline settings a small demo bundle records
SPEC = {"feature_layer": "pool", "widths": [40, 30, 20], "activation": "relu", "seed": 0}


@dataclass
class SmallDemo:
    model: CNN
    backbone: Backbone
    data: DataSplits
    pca: object
    svms: dict

    def save(self, directory: Path) -> Path:
        """The bundle of this model in ``directory`` (the RBF SVM on standardised scores by default)."""
        return save_bundle(
            directory,
            self.model,
            self.backbone,
            SPEC,
            self.pca,
            2,
            self.svms,
            "rbf-std",
            self.data.class_names,
            input_shape=tuple(self.data.train.images.shape[1:]),
        )


def small_demo(epochs: int = 1) -> SmallDemo:
    """small_vgg trained ``epochs`` epochs on digits (seed 0, on the CPU), PCA (B = 3) on dense
    layer 2 and the four SVMs of the paper's Table 3, fitted on the training split."""
    torch.manual_seed(0)
    data = load_data("digits")
    backbone = build_backbone("small_vgg")
    model = CNN(backbone.features, make_head(backbone, 10))
    train_model(model, backbone, data, epochs, torch.device("cpu"), lr=0.02, momentum=0.9)
    pca, svms = fit_pca_and_svms(layer_outputs(model, data.train, 32, 2, torch.device("cpu")))
    return SmallDemo(model, backbone, data, pca, svms)


def small_demo_bundle(directory: Path, epochs: int = 1) -> Path:
    """:func:`small_demo` saved as a bundle in ``directory``."""
    return small_demo(epochs).save(directory)
