"""Code generation: SymPy expressions → batched PyTorch code in ``cadcam_numeric/generated``."""
