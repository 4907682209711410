"""The report's context, section by section: what each pure function of :mod:`reports.build` returns.

Each section is a frozen dataclass whose fields are the names the template (``templates/report.tex.j2``)
reads; :func:`merged` flattens the sections into the template's context. Text fields hold LaTeX (already
escaped where they came from user input); ``Rows`` are the lists of small dicts the template loops over.

>>> merged(TheoremsSection([], 0, 0))["theorems_total"]
0
"""

from __future__ import annotations

from dataclasses import dataclass, fields

__all__ = [
    "ArchitectureSection",
    "BundleSection",
    "CatalogueSection",
    "EnvironmentSection",
    "KernelSection",
    "ProofsSection",
    "Rows",
    "TheoremsSection",
    "VerificationSection",
    "merged",
]

#: rows of a table or list in the template: one dict of LaTeX snippets (and flags) per row
Rows = list[dict[str, object]]


@dataclass(frozen=True)
class ArchitectureSection:
    """The head: sizes, layers, the PCA and the classifier, and the chain rules (Eq. 9, 13)."""

    spec_name: str
    spec_name_plain: str
    T: int
    M: int
    N: int
    M2: int
    N2: int
    D0: int
    pooling_in_head: bool
    layers: Rows
    B: int
    pca_after: int
    pca_reads: str
    pca_kind: str
    pca_scaler: bool
    svm_kind: str
    pca_latex: str
    pca_jacobian_latex: str
    svm_input: str
    activations: Rows
    flatten_order: str
    chain_gradcam: str
    chain_pca: str


@dataclass(frozen=True)
class KernelSection:
    """The classifier's kernel, its parameters and gradient, and Fig. 4's caption."""

    kernel_name: str
    kernel_latex: str
    kernel_params: str
    kernel_params_math: str
    kernel_gradient_latex: str
    kernel_profile: str
    kernel_profile_derivative: str
    kernel_variable: str
    gamma: str
    fig4_caption: str


@dataclass(frozen=True)
class ProofsSection:
    """Every block proof, Table 2, the spec's own steps and proofs, and their counts."""

    spec_steps: Rows
    spec_proofs: Rows
    block_proofs: Rows
    table2: Rows
    table2_method: str
    proofs_total: int
    proofs_held: int


@dataclass(frozen=True)
class TheoremsSection:
    """Theorems 1–2, the erratum and the extensions, with their proof steps."""

    theorems: Rows
    theorems_total: int
    theorems_held: int


@dataclass(frozen=True)
class VerificationSection:
    """The autograd verification table, run when the report was built (empty without verification)."""

    verification: Rows
    verify_cases: int
    verify_seed: int
    verify_passed: int
    verify_total: int
    verify_worst_latex: str


@dataclass(frozen=True)
class EnvironmentSection:
    """The build's date, the versions and hashes, and the command that rebuilds it."""

    date: str
    versions: dict[str, str]
    catalogue_hash: str
    spec_hash: str
    command: str


@dataclass(frozen=True)
class CatalogueSection:
    """The activation and kernel catalogue, printed from SymPy."""

    catalogue: Rows
    kernels: Rows


@dataclass(frozen=True)
class BundleSection:
    """A bundle's results: its path (relative to the report), Table 3, its figures and what they say."""

    path: str
    table3: Rows
    figures: Rows
    words: str


def merged(*sections: object) -> dict[str, object]:
    """The template's context: every field of every section, by name (no name may come twice)."""
    context: dict[str, object] = {}
    for section in sections:
        for f in fields(section):
            if f.name in context:
                raise ValueError(f"report context: {f.name!r} is in two sections")
            context[f.name] = getattr(section, f.name)
    return context
