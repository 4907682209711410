"""The LaTeX derivation report (issue 6): templates and the builder live here.

Data flows one way: ``derivations`` and ``cadcam_numeric`` produce, ``reports`` reads them.
"""
