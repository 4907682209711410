"""Run every symbolic proof of the project: blocks (catalogue-driven), Table 2, theorems."""

from __future__ import annotations

from collections.abc import Iterator

from derivations.blocks import all_block_proofs
from derivations.proof import ProofResult
from derivations.table2 import TABLE2_CASES, prove_table2_case

__all__ = ["all_proofs"]


def all_proofs() -> Iterator[ProofResult]:
    """Block proofs for every catalogue entry, then the paper's Table 2 special cases."""
    yield from all_block_proofs()
    for case in TABLE2_CASES:
        yield prove_table2_case(case)
