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
    act = clean.activations["mish_log"]
    evil_act = dataclasses.replace(act, expression=f"x * tanh(log(1 + exp(x))){breaker}#{payload(marker, breaker)}")
    evil_expr = dataclasses.replace(clean, activations={**clean.activations, "mish_log": evil_act})
    try:
        source = render_custom_source(evil_expr)
    except (ExpressionError, ValueError):
        pass
    else:
        assert statements(source) == clean_shape and "touch" not in source
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
