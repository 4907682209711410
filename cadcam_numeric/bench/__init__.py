"""``cadcam bench``: the closed form against autograd, torch.func and pytorch-grad-cam, with the
VGG16 forward pass as the floor. See :mod:`cadcam_numeric.bench.suite`."""

from cadcam_numeric.bench.suite import BenchConfig, run_suite

__all__ = ["BenchConfig", "run_suite"]
