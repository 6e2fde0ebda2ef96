"""The project's own promises: CI runs exactly the README's commands."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def readme_setup_commands():
    block = re.search(r"## Set-up.*?```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    return [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]


def test_ci_runs_the_readme_commands():
    install, test, demo = readme_setup_commands()
    assert demo == "arignote demo"  # the main job, right after the install (tests/test_demo.py runs it)
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert install.startswith("pip install") and install in ci
    assert test.startswith("python -m pytest") and test in ci
    assert ci.index(install) < ci.index(test)
