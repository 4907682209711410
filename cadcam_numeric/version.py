"""The package version, in one place (the package and its bundles read it)."""

__version__ = "0.1.0"
