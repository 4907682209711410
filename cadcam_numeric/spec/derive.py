"""``cadcam derive SPEC --out DIR``: derive, prove, generate and verify one architecture spec.

Steps, each of which must succeed before anything is written:

1. read and validate the TOML spec (errors name the key);
2. parse its expressions with the whitelist parser and derive its chain with SymPy; every
   proof (custom forward = the user's expression, f′ = d/dz of it, each dense block, the PCA
   block, the SVM block) must hold;
3. render ``cadcam_custom.py`` and run it in memory;
4. verify it against autograd and SymPy (:func:`cadcam_numeric.spec.code.verify_custom`).

Then DIR receives, as one directory swapped in whole: ``cadcam_custom.py``, ``derivation.tex``
(every step in LaTeX, a standalone document) and ``summary.json`` (the derivation, the proofs,
the verification rows, timings).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cadcam_numeric.atomic import atomic_directory, check_replaceable
from cadcam_numeric.errors import CadcamInputError
from cadcam_numeric.spec.architecture import read_spec_file
from cadcam_numeric.spec.code import CUSTOM_MODULE, CustomCode, module_from_source, render_custom_source, verify_custom
from cadcam_numeric.verification.errors import VerificationRow

if TYPE_CHECKING:  # annotations only: importing derivations loads SymPy
    from derivations.custom import ArchitectureDerivation

__all__ = ["SpecDerivation", "derive_spec"]


@dataclass
class SpecDerivation:
    derivation: ArchitectureDerivation
    code: CustomCode
    rows: list[VerificationRow]
    timings: dict[str, float]
    written: list[Path]

    @property
    def ok(self) -> bool:
        return self.derivation.holds and all(r.passed for r in self.rows)


def derive_spec(spec_path: str | Path, out_dir: str | Path, cases: int = 20, seed: int = 0) -> SpecDerivation:
    """Run the four steps (module docstring); write DIR only when every proof and check passes."""
    from derivations.custom import derive_architecture
    from derivations.expressions import ExpressionError

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    check_replaceable(Path(out_dir), "out")  # before the work, not after
    _, spec = read_spec_file(spec_path)
    try:
        derivation = derive_architecture(spec)
    except ExpressionError as exc:
        raise CadcamInputError(str(exc)) from exc
    timings["derive_and_prove_s"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    source = render_custom_source(spec, derivation.catalogue)
    code = module_from_source(source, spec.sha256())
    timings["generate_s"] = time.perf_counter() - t1
    t2 = time.perf_counter()
    rows = verify_custom(spec, code, cases=cases, seed=seed)
    timings["verify_s"] = time.perf_counter() - t2
    result = SpecDerivation(derivation, code, rows, timings, [])
    if not result.ok:
        return result
    out_dir = Path(out_dir)
    with atomic_directory(out_dir) as tmp:
        (tmp / CUSTOM_MODULE).write_text(source, encoding="utf-8")
        (tmp / "derivation.tex").write_text(derivation.latex_document(), encoding="utf-8")
        summary = {
            **derivation.to_json(),
            "spec_file": str(spec_path),
            "verification": [r.to_json() for r in rows],
            "timings_s": {k: round(v, 3) for k, v in timings.items()},
        }
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    result.written = [out_dir / CUSTOM_MODULE, out_dir / "derivation.tex", out_dir / "summary.json"]
    return result
