"""hack/render-dashboards.py draws a PNG per dashboard from exported panel data (matplotlib)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from kubetune.testing import dashboards

REPO = Path(__file__).resolve().parents[2]


def test_every_dashboard_is_drawn_from_exported_panel_data(tmp_path: Path) -> None:
    queries = [
        {
            "dashboard": q.dashboard,
            "panel": q.panel,
            "ref": q.ref,
            "result": [{"metric": {"namespace": "ns", "name": "j"}, "values": [[100, "1"], [102, "2"]]}],
        }
        for q in dashboards.queries()
    ]
    data = tmp_path / "data.json"
    data.write_text(
        json.dumps({"namespace": "ns", "source": "a test", "start": 100, "end": 102, "queries": queries})
    )
    out = tmp_path / "images"
    result = subprocess.run(
        [sys.executable, str(REPO / "hack" / "render-dashboards.py"), str(data), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == [f"dashboard-{stem}.png" for stem in sorted(dashboards.load())]
    assert all((out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for name in pngs)
