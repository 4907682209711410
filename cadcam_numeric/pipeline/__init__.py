"""The end-to-end pipeline: data, backbones, training the head, PCA and SVMs, bundles, figures, and
the map store that ``cadcam explain`` writes over a dataset (:class:`MapStore` reads it)."""

from cadcam_numeric.pipeline.store import MapStore

__all__ = ["MapStore"]
