"""Checks of generated code against PyTorch autograd: the catalogue (``cadcam verify``) and the
one chain-vs-autograd check that ``cadcam verify``, ``cadcam derive SPEC`` and the report share."""
