#!/usr/bin/env bash
# cadcam's set-up, the one the README's two commands and CI (.ci/run) call: system packages where
# apt-get can run (LaTeX for the PDF report; Chromium and KaTeX for the browser tests of the HTML
# report and the documentation site), then a virtual environment in .venv with torch pinned and cadcam
# installed editable with its test extra. Each optional part says so and goes on when it cannot be
# installed; what needs it is skipped, saying why. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")"

apt_install() {  # apt_install WHAT PACKAGE...: install with apt-get, or say why not and go on
  local what=$1
  shift
  (apt-get update -qq && apt-get install -y -qq --no-install-recommends "$@") ||
    echo "setup.sh: $what could not be installed (apt-get needs root and a Debian mirror); the tests that need it are skipped"
}

command -v pdflatex >/dev/null || apt_install "LaTeX" texlive-latex-base texlive-latex-recommended poppler-utils
(command -v chromium >/dev/null && test -f /usr/share/javascript/katex/katex.min.js) ||
  apt_install "Chromium or KaTeX" chromium libjs-katex

python3 -m venv .venv
# torch is pinned here, not only in pyproject.toml: a bare requirement lets pip pick whatever build is newest
.venv/bin/pip install torch==2.14.1 torchvision==0.29.1
.venv/bin/pip install -e '.[test]'
