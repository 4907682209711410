"""The ``>>>`` examples in the docstrings of the modules below run and give what they show."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "cadcam_numeric.atomic",
    "cadcam_numeric.cli.options",
    "cadcam_numeric.devices",
    "cadcam_numeric.engine.head",
    "cadcam_numeric.names",
    "cadcam_numeric.pipeline.bundle",
    "cadcam_numeric.pipeline.bundle_document",
    "cadcam_numeric.pipeline.chance",
    "cadcam_numeric.pipeline.explain_cli",
    "cadcam_numeric.pipeline.evaluate",
    "cadcam_numeric.pipeline.evaluation_statistics",
    "cadcam_numeric.engine.closed_form",
    "cadcam_numeric.engine.explaining_model",
    "cadcam_numeric.engine.held_state",
    "cadcam_numeric.engine.map_methods",
    "cadcam_numeric.engine.pca",
    "cadcam_numeric.engine.results",
    "cadcam_numeric.engine.row_pass",
    "cadcam_numeric.engine.split",
    "cadcam_numeric.engine.split_vit",
    "cadcam_numeric.methods.eigen",
    "cadcam_numeric.metrics.road",
    "cadcam_numeric.metrics.confidence",
    "cadcam_numeric.metrics.similarity",
    "cadcam_numeric.pipeline.figures",
    "cadcam_numeric.pipeline.sources",
    "reports.build",
    "reports.sections",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0, result
