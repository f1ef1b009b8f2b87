"""The examples run end to end (with tiny settings) and write their figures."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

EXAMPLES = {
    "nerf2d.py": ["--steps", "3", "--batch-size", "64", "--width", "16", "--depth", "1"],
    "sdf.py": [
        "--steps",
        "2",
        "--batch",
        "256",
        "--test-points",
        "500",
        "--slice-resolution",
        "24",
    ],
    "samplenet.py": [
        "--points",
        "64",
        "--samples",
        "8",
        "--batch-size",
        "8",
        "--classifier-steps",
        "2",
        "--sampler-steps",
        "2",
        "--test-size",
        "16",
        "--rows",
        "2",
    ],
}


@pytest.mark.slow
@pytest.mark.parametrize("script", EXAMPLES)
def test_example_runs_and_writes_its_figure(script, tmp_path):
    pytest.importorskip("matplotlib")
    pytest.importorskip("tqdm")
    out = tmp_path / "figure.png"
    env = dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg")
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / script), "--out", str(out), *EXAMPLES[script]],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert out.stat().st_size > 1000
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for report in tmp_path.glob("*.json"):
        json.loads(report.read_text())
