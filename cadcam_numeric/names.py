"""The names a user types, defined once and importable without torch (the command line builds its
parser from them before anything heavy loads).

* :data:`METHOD_LABELS` — map method key -> its label in tables and figures; the engine's registry
  (:data:`cadcam_numeric.engine.map_methods.MAP_METHODS`) holds one rule per key;
* :data:`CLASSIFIER_NAMES` — the extra classifiers ``--classifier`` fits beside the paper's four SVMs;
  :data:`cadcam_numeric.pipeline.fitting.CLASSIFIER_KINDS` builds one estimator per name.

>>> list(METHOD_LABELS)
['grad-cam', 'xgrad-cam', 'hires-cam']
>>> CLASSIFIER_NAMES
('lda', 'linear-svc', 'logistic', 'ridge')
"""

from __future__ import annotations

__all__ = ["CLASSIFIER_NAMES", "METHOD_LABELS"]

METHOD_LABELS: dict[str, str] = {"grad-cam": "Grad-CAM", "xgrad-cam": "XGrad-CAM", "hires-cam": "HiRes-CAM"}
CLASSIFIER_NAMES: tuple[str, ...] = ("lda", "linear-svc", "logistic", "ridge")
