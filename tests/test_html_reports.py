"""Self-contained HTML reports: the markdown they carry, and each command's page rendered by a
headless Chromium — it loads without a console message, every image decodes, and its screenshot
is not blank. CI installs Chromium (.ci/run); elsewhere the rendering tests say how to get it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from matplotlib import image as mpimg

from vaecollapse.core.pages import html_document, image_html, markdown_html

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def _browser() -> str:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    message = "a headless Chromium renders the reports: apt-get install chromium (.ci/run does)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def _render(page: Path, tmp_path: Path) -> tuple[str, str, np.ndarray]:
    """The page's DOM after load, the browser's console lines, and a screenshot (RGB array)."""
    browser = _browser()
    common = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    url = page.resolve().as_uri()
    logged = ["--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000"]
    dumped = subprocess.run(
        [*common, *logged, "--dump-dom", url], capture_output=True, text=True, timeout=120,
        check=True,
    )  # fmt: skip
    console = [line for line in dumped.stderr.splitlines() if ":CONSOLE" in line]
    shot = tmp_path / f"{page.parent.name}-shot.png"
    subprocess.run(
        [*common, "--window-size=1200,1400", f"--screenshot={shot}", url],
        capture_output=True, timeout=120, check=True,
    )  # fmt: skip
    return dumped.stdout, "\n".join(console), mpimg.imread(shot)[..., :3]


def _check_page(page: Path, tmp_path: Path, images: int) -> None:
    text = page.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", text), "fetches from a network"
    assert "<link" not in text and text.count("<img") == images
    dom, console, shot = _render(page, tmp_path)
    assert f'data-images="ok {images}"' in dom, dom[-500:]
    assert console == "", console
    # not blank: a page of text and figures has many dark pixels and many colours
    dark = (shot.mean(axis=2) < 0.5).mean()
    assert dark > 0.005 and shot.std() > 0.05


def test_markdown_becomes_html_with_everything_escaped():
    text = (
        "# Title with <b>\n\nA **bold** `code` line\ncontinued.\n\n- one\n- two <i>\n\n"
        "| a | b |\n|---|---|\n| 1 | <script> |\n\n```\nx < y\n```\n"
    )
    page = markdown_html(text)
    assert "<h1>Title with &lt;b&gt;</h1>" in page
    assert "<p>A <b>bold</b> <code>code</code> line continued.</p>" in page
    assert "<ul><li>one</li><li>two &lt;i&gt;</li></ul>" in page
    assert (
        "<table><tr><th>a</th><th>b</th></tr><tr><td>1</td><td>&lt;script&gt;</td></tr></table>"
        in page
    )
    assert "<pre>x &lt; y</pre>" in page and "<script>" not in page


def test_the_image_check_reports_a_broken_figure(tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    page = broken / "report.html"
    page.write_text(html_document("t", '<p>text</p><img src="data:image/png;base64,AAAA" alt="f">'))
    dom, console, _ = _render(page, tmp_path)
    assert 'data-images="broken 1"' in dom and "could not be shown: f" in dom and console == ""


def test_every_commands_report_renders(run_cli, tmp_path):
    run = tmp_path / "run"
    assert run_cli(
        "train", "--dataset", "digits", "--backbone", "mlp", "--hidden", "16", "--latent-dim", "3",
        "--epochs", "2", "--out", str(run),
    ).code == 0  # fmt: skip
    assert run_cli("diagnose", str(run)).code == 0
    sweep_file = tmp_path / "sweep.toml"
    sweep_file.write_text(
        'model = "vae"\ndataset = "digits"\nbackbone = "mlp"\nhidden = 16\nlatent_dim = 3\n'
        "epochs = 2\n\n[grid]\nbeta = [0.5, 2]\n"
    )
    assert run_cli("sweep", str(sweep_file), "--out", str(tmp_path / "sweep")).code == 0
    phase = run_cli("phase", "--out", str(tmp_path / "phase"), "--grid", "2", "--epochs", "50")
    assert phase.code == 0, phase.err
    bench = run_cli(
        "remedies", "--out", str(tmp_path / "bench"), "--remedies", "none,warmup", "--seeds", "0",
        "--epochs", "2", "--hidden", "16", "--iwae-k", "5",
    )  # fmt: skip
    assert bench.code == 0, bench.err
    reproductions = tmp_path / "reproductions"
    assert run_cli("reproduce", "thm3-synthetic", "--quick", "--out", str(reproductions)).code == 0
    assert run_cli("reproduce", "--collect", "--out", str(reproductions)).code == 0
    figures = len(list((reproductions / "thm3-synthetic").glob("*.png")))
    pages = {
        run / "report.html": 3,
        tmp_path / "sweep" / "report.html": 1,
        tmp_path / "phase" / "report.html": 1,
        tmp_path / "bench" / "report.html": 1,
        reproductions / "report.html": figures,
    }
    for page, images in pages.items():
        _check_page(page, tmp_path, images)


def test_an_embedded_figure_is_the_file_itself(tmp_path):
    import base64

    figure = tmp_path / "f.png"
    figure.write_bytes(b"\x89PNG\r\n\x1a\nrest")
    tag = image_html(figure, figure.parent, alt='a "quoted" name')
    assert base64.b64encode(figure.read_bytes()).decode() in tag and "&quot;quoted&quot;" in tag
