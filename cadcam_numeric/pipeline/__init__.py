"""The end-to-end pipeline: data, backbones, training the head, PCA and SVMs, bundles, figures."""
