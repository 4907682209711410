"""A spec handed to you cannot run code: no string of it reaches generated Python as text.

Every string field of a spec is given a payload that would become module-level code if any
line-ending or control character survived into ``cadcam_custom.py`` (issue 13, item 1). The
loader refuses each, naming the key; and even with validation bypassed, the rendered module's
statements are exactly the clean module's and the payload's marker file is never created.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import os
from pathlib import Path

import pytest

from cadcam_numeric.cli import main
from cadcam_numeric.errors import CadcamInputError
from cadcam_numeric.spec.architecture import spec_from_text
from cadcam_numeric.spec.code import module_from_source, render_custom_source
from derivations.architecture import plain_text_problem
from derivations.expressions import ExpressionError

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = (ROOT / "derivations" / "examples" / "custom_head.toml").read_text()
#: every character Python, TOML or str.splitlines treats as (part of) a line end, and NUL
BREAKERS = ["\r", "\n", "\r\n", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029", "\x00"]
#: (TOML line to replace, key as the error names it)
FIELDS = [
    ('name = "digits: dense 40-30-20', "spec.name"),
    ('expression = "x * tanh(log(1 + exp(x)))"', "activations.mish_log.expression"),
    ('expression = "1 / (1 + gamma * rho)"', "kernels.inverse_quadratic.expression"),
]


def payload(marker: Path, breaker: str) -> str:
    return f"x{breaker}import os;os.system('touch {marker}'){breaker}#"


def statements(source: str) -> list[str]:
    """The module's top-level statements, names and values elided: its shape."""
    return [type(node).__name__ for node in ast.parse(source).body]


def with_field(line_start: str, value: str) -> str:
    lines = EXAMPLE.splitlines()
    i = next(i for i, line in enumerate(lines) if line.startswith(line_start))
    key = line_start.split(" = ")[0]
    lines[i] = f"{key} = {json.dumps(value)}"  # a JSON string is a TOML basic string with the same escapes
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("breaker", BREAKERS, ids=[repr(b) for b in BREAKERS])
@pytest.mark.parametrize(("line", "key"), FIELDS, ids=[k for _, k in FIELDS])
def test_a_control_character_in_any_string_field_is_refused_by_name(tmp_path, line, key, breaker):
    marker = tmp_path / "marker"
    with pytest.raises(CadcamInputError, match=rf"{key}: expected plain one-line text; character \d+ is"):
        spec_from_text(with_field(line, payload(marker, breaker)))
    assert not marker.exists()


@pytest.mark.parametrize("breaker", BREAKERS, ids=[repr(b) for b in BREAKERS])
def test_even_unvalidated_strings_never_become_code(tmp_path, breaker):
    """Bypass the loader: a payload in the name is not printed at all; one in an expression is
    either refused by the whitelist parser or printed by SymPy from the parse, never as text."""
    marker = tmp_path / "marker"
    clean = spec_from_text(EXAMPLE)
    clean_shape = statements(render_custom_source(clean))
    evil_name = dataclasses.replace(clean, name=payload(marker, breaker))
    source = render_custom_source(evil_name)
    assert statements(source) == clean_shape and "touch" not in source
    module_from_source(source, evil_name.sha256())
    act, kernel = clean.activations["mish_log"], clean.kernels["inverse_quadratic"]
    # a breaker inside a valid expression: refused by the parser, or printed by SymPy from the parse
    for evil in (
        {"activations": {**clean.activations, "mish_log": dataclasses.replace(act, expression=f"x{breaker}+ 0")}},
        {"kernels": {"inverse_quadratic": dataclasses.replace(kernel, expression=f"1 / (1 + gamma * rho){breaker}")}},
    ):
        try:
            source = render_custom_source(dataclasses.replace(clean, **evil))
        except ExpressionError:
            continue
        assert statements(source) == clean_shape
        assert all(not plain_text_problem(line) for line in source.split("\n"))
    assert not marker.exists()


def test_verify_and_derive_on_a_payload_spec_exit_2_and_create_nothing(tmp_path, capsys):
    marker = tmp_path / "marker"
    spec = tmp_path / "evil.toml"
    spec.write_text(with_field(FIELDS[0][0], payload(marker, "\r")))
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        assert main(["verify", str(spec)]) == 2
        assert "spec.name: expected plain one-line text" in capsys.readouterr().err
        assert main(["derive", str(spec), "--out", str(tmp_path / "derived")]) == 2
    finally:
        os.chdir(cwd)
    assert not marker.exists() and not (tmp_path / "derived").exists()


# --- resource exhaustion ---------------------------------------------------------------------------


def _allocate(gib: int) -> int:
    return len(bytearray(gib << 30))


def _sleep_then_mark(seconds: float, marker: str) -> float:
    import time
    from pathlib import Path

    time.sleep(seconds)
    Path(marker).write_text("the work ran to its end")
    return seconds


def test_the_budget_stops_time_and_memory_overruns_and_names_the_work(tmp_path):
    """The overrun is held by what the child did, not by the clock: a child stopped at its budget never
    reaches the line after its sleep, so its marker file never appears."""
    from derivations.budget import Budget, BudgetExceeded, run_within_budget

    finished = tmp_path / "finished"
    assert run_within_budget(_sleep_then_mark, 0.01, str(finished), what="nap", budget=Budget(10, 256)) == 0.01
    assert finished.exists()
    finished.unlink()
    with pytest.raises(BudgetExceeded, match=r"^a long nap: SymPy needed more than 1 s"):
        run_within_budget(_sleep_then_mark, 30, str(finished), what="a long nap", budget=Budget(1, 256))
    assert not finished.exists(), "the child ran past its budget"
    with pytest.raises(BudgetExceeded, match=r"^a big list: SymPy needed more than 100 MiB"):
        run_within_budget(_allocate, 8, what="a big list", budget=Budget(30, 100))
    from derivations.custom import parse_custom_catalogue

    bad = spec_from_text(EXAMPLE.replace("tanh(log", "tanhh(log"))
    with pytest.raises(ExpressionError, match="tanhh"):  # the child's errors come back as themselves
        run_within_budget(parse_custom_catalogue, bad, what="x")


def test_a_high_power_is_derived_without_expanding_it(tmp_path):
    """`(1 + rho)**64` used to expand into a polynomial in every coordinate (5.5 GiB and growing):
    the SVM block is now proved for a generic profile k plus the one-variable lemma k' = dk/du."""
    from derivations.custom import derive_architecture

    spec = spec_from_text(EXAMPLE.replace('expression = "1 / (1 + gamma * rho)"', 'expression = "(1 + rho)**64"'))
    derivation = derive_architecture(spec)  # under the derivation's own budget: an expansion would overrun it
    assert derivation.holds
    svm = next(p for p in derivation.proofs if p.name == "block/svm/inverse_quadratic")
    assert svm.method.startswith("generic-k chain identity")


def test_a_wrong_kernel_gradient_or_profile_derivative_is_not_proved():
    import sympy as sp

    from derivations.blocks import prove_svm_block
    from derivations.kernels import Kernel, U

    class WrongGradient(Kernel):
        def gradient_closed_form(self, s, p):  # 3 k'(ρ)(p − s) instead of 2 k'(ρ)(p − s)
            return super().gradient_closed_form(s, p) * sp.Rational(3, 2)

    class WrongDerivative(Kernel):  # the closed form differentiates itself; only the printed k' is wrong
        @property
        def profile_derivative(self):
            return -2 * sp.exp(-U) if self.profile == sp.exp(-U) else sp.diff(self.profile, U)

    assert prove_svm_block(Kernel("ok", "stationary", sp.exp(-U), (), "", "")).holds
    wrong_gradient = prove_svm_block(WrongGradient("bad", "stationary", sp.exp(-U), (), "", ""))
    assert not wrong_gradient.holds and "profile lemma (identical)" in wrong_gradient.method
    wrong_derivative = prove_svm_block(WrongDerivative("bad", "stationary", sp.exp(-U), (), "", ""))
    assert not wrong_derivative.holds and "chain identity (" in wrong_derivative.method
    assert "profile lemma (not reduced)" in wrong_derivative.method


def test_deriving_a_slow_expression_is_refused_naming_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CADCAM_DERIVE_SECONDS", "3")
    spec = tmp_path / "slow.toml"
    spec.write_text(EXAMPLE.replace("x * tanh(log(1 + exp(x)))", "max(x,1)*max(x,2)*max(x,3)"))
    assert main(["derive", str(spec), "--out", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err
    assert "activations.mish_log = 'max(x,1)*max(x,2)*max(x,3)'" in err and "more than 3 s" in err
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize(
    "body",
    ["x = " + "[" * 5000 + "]" * 5000, "x = " + "{a = " * 3000 + "1" + "}" * 3000],
    ids=["5000 nested arrays", "3000 nested inline tables"],
)
def test_a_spec_nested_thousands_deep_is_exit_2_with_a_sentence(tmp_path, capsys, body):
    """Hardening 4: tomllib's RecursionError becomes one sentence, as the JSON reader's does."""
    spec = tmp_path / "deep.toml"
    spec.write_text(body + "\n")
    assert main(["derive", str(spec), "--out", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err
    assert "nested too deeply to be a spec" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "d").exists()
