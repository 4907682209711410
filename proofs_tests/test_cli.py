"""The ``cadcam`` and ``python -m derivations`` commands, as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys

from cadcam_numeric.cli import main


def test_verify_json_every_row_passes(capsys):
    assert main(["verify", "--json", "--cases", "3"]) == 0
    doc = json.loads(capsys.readouterr().out)
    names = {r["function"] for r in doc["rows"]}
    assert "activations.relu_derivative" in names and "kernels.rbf_decision_gradient" in names
    assert all(r["passed"] and r["cases"] == 3 and r["dtype"] == "float64" for r in doc["rows"])


def test_verify_rejects_bad_cases(capsys):
    try:
        main(["verify", "--cases", "0"])
    except ValueError as exc:
        assert "cases must be >= 1" in str(exc)
    else:
        raise AssertionError("cases=0 must be rejected")


def test_prove_command_reports_every_proof():
    out = subprocess.run([sys.executable, "-m", "derivations", "prove", "--json"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    proofs = json.loads(out.stdout)["proofs"]
    assert all(p["holds"] for p in proofs)
    assert any(p["name"] == "block/svm/rbf" for p in proofs)
    assert sum(p["name"].startswith("table2/") for p in proofs) == 6


def test_help_lists_commands():
    out = subprocess.run([sys.executable, "-m", "cadcam_numeric.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "derive" in out.stdout and "verify" in out.stdout
