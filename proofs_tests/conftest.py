"""Shared test configuration: Hypothesis profiles and float64 verification."""

from __future__ import annotations

import os

import pytest
import torch
from hypothesis import HealthCheck, settings

from proofs_tests.goldens import UPDATE_FLAG, Golden


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        UPDATE_FLAG,
        action="store_true",
        help="rewrite the committed goldens (generated package, report reference) from fresh output",
    )


@pytest.fixture
def compare_or_update(request: pytest.FixtureRequest) -> Golden:
    """Compare a test's fresh output with its committed golden, or rewrite it under --update-goldens."""
    return Golden(request.config.getoption(UPDATE_FLAG))


# CI: derandomised (reproducible) and a fixed budget; locally: random, same budget.
_QUIET = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large]}
settings.register_profile("ci", derandomize=True, max_examples=40, print_blob=True, **_QUIET)
settings.register_profile("dev", max_examples=40, print_blob=True, **_QUIET)
settings.register_profile("thorough", max_examples=400, **_QUIET)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
# the commands the suite runs keep this count (cadcam_numeric.devices.cpu_thread_count reads it)
os.environ.setdefault("CADCAM_THREADS", str(torch.get_num_threads()))
