"""The README's two commands exist, and CI runs the test command verbatim."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)\n```", (ROOT / "README.md").read_text(), flags=re.S)
    return [b.strip() for b in blocks]


def test_readme_has_main_and_test_commands():
    commands = readme_commands()
    assert len(commands) >= 2
    main, tests = commands[0], commands[1]
    for command in (main, tests):
        assert "pip install torch==2.14.1 torchvision==0.29.1" in command
    assert "cadcam" in main
    assert "pytest" in tests


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert readme_commands()[1] in ci.splitlines()


def test_the_spec_loop_in_the_readme_parses_and_names_a_spec_that_exists():
    """Every `cadcam` line of the spec loop is accepted by the CLI's parser (the loop itself runs in
    ``test_architecture_spec.test_cli_loop_demo_explain_report_on_the_example_spec``)."""
    import shlex

    from cadcam_numeric.cli import build_parser
    from derivations.architecture import load_architecture

    loop = next(b for b in readme_commands() if b.startswith("S="))
    spec = loop.splitlines()[0].removeprefix("S=")
    assert load_architecture(ROOT / spec).activations
    lines = [line.split("#")[0].replace("$S", spec) for line in loop.splitlines()[1:]]
    assert [shlex.split(line)[1] for line in lines] == ["derive", "verify", "demo", "explain", "report"]
    for line in lines:
        build_parser().parse_args(shlex.split(line)[1:])
