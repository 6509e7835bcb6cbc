"""The first-half worker's files (validator.first_half): named after the validator, and those of a
validator that was killed outright removed when the next worker starts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from validator import first_half


def test_files_of_a_dead_validator_go_and_those_of_a_live_one_stay(tmp_path: Path) -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    dead = tmp_path / f"{first_half.PREFIX}{gone.stdout.strip()}-rows-abc"
    live = tmp_path / f"{first_half.PREFIX}{os.getppid()}-rows-def"
    other = tmp_path / "unrelated"
    for path in (dead, live, other):
        path.write_bytes(b"x")
    findings, rows = first_half.new_paths(str(tmp_path))
    assert not dead.exists()
    assert live.exists() and other.exists()
    for path in (findings, rows):
        assert Path(path).name.startswith(f"{first_half.PREFIX}{os.getpid()}-")
        assert Path(path).parent == tmp_path
