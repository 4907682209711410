"""The ``cadcam`` and ``python -m derivations`` commands, as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from cadcam_numeric.cli import main


def test_verify_json_every_row_passes(capsys):
    assert main(["verify", "--json", "--cases", "3"]) == 0
    doc = json.loads(capsys.readouterr().out)
    names = {r["function"] for r in doc["rows"]}
    assert "activations.relu_derivative" in names and "kernels.rbf_decision_gradient" in names
    assert all(r["passed"] and r["cases"] == 3 and r["dtype"] == "float64" for r in doc["rows"])


def _exit_code(argv: list[str]) -> int:
    """main()'s status; argparse's own refusals (SystemExit) count as their exit code."""
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code)


def test_verify_rejects_bad_cases(capsys):
    """cases=0 is bad input: exit 2 and one sentence naming --cases (was a ValueError traceback)."""
    assert _exit_code(["verify", "--cases", "0"]) == 2
    assert "argument --cases: expected an integer >= 1, got 0" in capsys.readouterr().err


def test_bad_arguments_exit_2_naming_the_argument(tmp_path, capsys):
    a_file = tmp_path / "taken.txt"
    a_file.write_text("mine")
    assert _exit_code(["evaluate", "--bundle", str(tmp_path), "--out", str(a_file)]) == 2
    assert f"--out: {a_file} is a file; expected a directory" in capsys.readouterr().err
    assert a_file.read_text() == "mine"
    for argv in (
        ["evaluate", "--bundle", str(tmp_path), "--out", str(tmp_path / "e"), "--steps", "-1"],
        ["demo", "--out", str(tmp_path / "d"), "--epochs", "0"],
    ):
        assert _exit_code(argv) == 2
        assert "expected an integer >= 1" in capsys.readouterr().err
    if not torch.cuda.is_available():
        out = tmp_path / "never"
        assert _exit_code(["train", "--out", str(out), "--device", "cuda", "--epochs", "1"]) == 2
        assert "--device: 'cuda' was asked for, but this machine has no CUDA device" in capsys.readouterr().err
        assert not out.exists()  # nothing half-made left
    assert _exit_code(["train", "--out", str(tmp_path / "t"), "--device", "tpu"]) == 2
    assert "--device: 'tpu'" in capsys.readouterr().err


def test_a_failed_train_leaves_no_output_folder(tmp_path, capsys):
    out = tmp_path / "run"
    assert _exit_code(["train", "--data", f"folder:{tmp_path / 'missing'}", "--out", str(out)]) == 2
    assert "missing" in capsys.readouterr().err
    assert not out.exists()


def test_outputs_are_readable_by_others(tmp_path):
    """safetensors writes 0600; a bundle handed on must be readable (0644 under umask 022)."""
    import os

    from cadcam_numeric.atomic import atomic_directory

    old = os.umask(0o022)
    try:
        with atomic_directory(tmp_path / "bundle") as tmp:
            private = tmp / "tensors.safetensors"
            private.write_bytes(b"x")
            os.chmod(private, 0o600)
    finally:
        os.umask(old)
    assert (tmp_path / "bundle" / "tensors.safetensors").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "bundle").stat().st_mode & 0o777 == 0o755


def test_derive_checks_the_installed_code_and_never_writes(tmp_path, monkeypatch, capsys):
    """A hand edit of generated code: `cadcam derive` exits 1 with the diff and leaves the edit in place
    (it used to regenerate first and then report "in sync")."""
    import shutil

    import cadcam_numeric.cli.derive as cli

    copy = tmp_path / "generated"
    shutil.copytree(cli.installed_generated_dir(), copy, ignore=shutil.ignore_patterns("__pycache__"))
    blocks = copy / "blocks.py"
    edited = blocks.read_text().replace("return fprime_delta.unsqueeze(-1) * weight", "return weight")
    assert edited != blocks.read_text()
    blocks.write_text(edited)
    real = cli.installed_generated_dir()
    before = {f.name: (f.read_bytes(), f.stat().st_mtime_ns) for f in real.glob("*.py")}
    monkeypatch.setattr(cli, "installed_generated_dir", lambda: copy)
    assert main(["derive"]) == 1
    assert {f.name: (f.read_bytes(), f.stat().st_mtime_ns) for f in real.glob("*.py")} == before  # untouched
    captured = capsys.readouterr()
    assert "-    return weight" in captured.out and "+    return fprime_delta.unsqueeze(-1) * weight" in captured.out
    assert "DRIFT" in captured.err and "Nothing was written" in captured.err
    assert blocks.read_text() == edited  # the user's edit is still there


def test_prove_command_reports_every_proof():
    out = subprocess.run([sys.executable, "-m", "derivations", "prove", "--json"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    proofs = json.loads(out.stdout)["proofs"]
    assert all(p["holds"] for p in proofs)
    assert any(p["name"] == "block/svm/rbf" for p in proofs)
    assert sum(p["name"].startswith("table2/") for p in proofs) == 6


# --- the parser: one definition per option, no torch to read the help -------------------------------


def _sub_parsers(parser):
    action = next(a for a in parser._actions if a.dest == "command")
    return action.choices


def test_every_option_has_one_help_text_across_commands():
    """An option means the same in every command: one flag, one help text (cli/options.py defines it)."""
    from cadcam_numeric.cli import build_parser

    helps: dict[str, set[str]] = {}
    for sub in _sub_parsers(build_parser()).values():
        for action in sub._actions:
            for flag in action.option_strings:
                helps.setdefault(flag, set()).add(action.help)
    twice = {flag: texts for flag, texts in helps.items() if len(texts) > 1}
    assert not twice, twice
    assert {"--out", "--seed", "--device", "--derived", "--bundle"} <= set(helps)


def test_every_command_has_help_and_a_description_that_reads_as_text():
    from cadcam_numeric.cli import COMMANDS, build_parser

    parser = build_parser()
    subs, top = _sub_parsers(parser), " ".join(parser.format_help().split())
    assert list(subs) == [c.NAME for c in COMMANDS]
    for command in COMMANDS:
        sub = subs[command.NAME]
        text = sub.format_help()
        assert text.startswith(f"usage: cadcam {command.NAME} ") and "``" not in text, command.NAME
        assert command.HELP in top  # the one-line summary `cadcam --help` lists
        if command.__doc__:
            assert " ".join(sub.description.split()) in " ".join(text.split())
        assert all(a.help for a in sub._actions), (command.NAME, [a.dest for a in sub._actions if not a.help])


def test_help_and_parsing_import_no_torch_and_no_sympy():
    """`cadcam --help` builds every command's parser without loading torch (4.5 s and 740 MB it used to
    cost); the measure is what was imported, not the clock."""
    code = (
        "import sys\n"
        "from cadcam_numeric.cli import build_parser\n"
        "p = build_parser()\n"
        "for c in ('demo', 'train', 'explain', 'evaluate', 'report', 'derive', 'verify', 'export', 'accepted',\n"
        "          'bench', 'bench-dataset'):\n"
        "    try:\n"
        "        p.parse_args([c, '--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print(sorted(m for m in ('torch', 'sympy', 'sklearn', 'numpy', 'matplotlib') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_bench_dataset_is_its_own_command_and_bench_has_no_dataset_flag(capsys):
    from cadcam_numeric.cli import build_parser

    args = build_parser().parse_args(["bench-dataset", "--sizes", "40,80", "--workers", "0"])
    assert args.command == "bench-dataset" and args.workers == 0
    assert _exit_code(["bench", "--dataset"]) == 2
    assert "unrecognized arguments: --dataset" in capsys.readouterr().err
    assert _exit_code(["bench-dataset", "--sizes", "40"]) == 2
    assert "--sizes: expected two positive integers" in capsys.readouterr().err


def test_the_cpu_thread_count_follows_the_environment_then_the_load():
    from cadcam_numeric.devices import cpu_thread_count
    from cadcam_numeric.errors import CadcamInputError

    assert cpu_thread_count({"CADCAM_THREADS": "3", "OMP_NUM_THREADS": "1"})[0] == 3
    assert cpu_thread_count({"OMP_NUM_THREADS": "1"}) == (1, "OMP_NUM_THREADS=1")
    threads, why = cpu_thread_count({})
    cpus = len(os.sched_getaffinity(0))
    assert 1 <= threads <= cpus and f"{cpus} CPUs, load" in why
    assert cpu_thread_count({"LOCAL_WORLD_SIZE": str(4 * cpus)})[0] == 1  # many ranks: one thread each
    for bad in ("0", "two", "²"):
        with pytest.raises(CadcamInputError, match="CADCAM_THREADS: expected a positive integer"):
            cpu_thread_count({"CADCAM_THREADS": bad})


def test_a_bad_argument_is_refused_in_one_sentence(capsys):
    assert _exit_code(["evaluate", "--bundle", "b", "--out", "o", "--images", "0"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "cadcam evaluate: argument --images/--n: expected an integer >= 1 or 'all', got '0' "
        "(`cadcam evaluate --help` lists the options)\n"
    )
