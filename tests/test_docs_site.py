"""The documentation site builds with `mkdocs build --strict` (a broken link, a page outside the
navigation or an API name that does not resolve fails it), and its home and API pages render in
a headless Chromium with their text and are not blank."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO_ROOT
from .test_html_reports import _render


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=600, stdin=subprocess.DEVNULL,
        env=dict(os.environ, NO_MKDOCS_2_WARNING="1"),
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-3000:]
    return out


@pytest.mark.parametrize(
    ("page", "expected"),
    [
        ("index.html", "Diagnose your own VAE"),
        ("api.html", "Diagnose ANY VAE on"),  # diagnose's docstring, rendered by mkdocstrings
    ],
)
def test_a_page_renders_with_its_text(site: Path, tmp_path: Path, page: str, expected: str) -> None:
    dom, _console, shot = _render(site / page, tmp_path)
    assert expected in dom
    dark = (shot.mean(axis=2) < 0.5).mean()
    assert dark > 0.005 and shot.std() > 0.05, "the page looks blank"


def test_every_public_name_has_its_entry_in_the_api_page(site: Path) -> None:
    import vaecollapse

    text = (site / "api.html").read_text(encoding="utf-8")
    ids = set(re.findall(r'id="(vaecollapse[\w.]*)"', text))
    names = [n for n in vaecollapse.__all__ if n != "__version__"]
    missing = [n for n in names if not any(i.endswith("." + n) for i in ids)]
    assert missing == []
