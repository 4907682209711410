"""The LaTeX/PDF derivation report: ``cadcam report`` (templates in ``reports/templates``).

Data flows one way: ``derivations`` and ``cadcam_numeric`` produce, ``reports`` reads them.
"""
