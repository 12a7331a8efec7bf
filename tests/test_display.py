"""Reports people read in a notebook: a short repr, HTML with tables and inline plots, a pandas
table, plots drawn into the caller's axes, and no change to the caller's matplotlib backend."""

from __future__ import annotations

import base64
import re
import subprocess
import sys

import pytest
import torch

from vaecollapse.core.diagnostics import diagnose
from vaecollapse.core.diagnostics.plots import (
    plot_collapse_curves,
    plot_kl_bars,
    plot_std_histograms,
)

from .conftest import REPO_ROOT


@pytest.fixture(scope="module")
def report():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(300, 6, generator=generator)

    def encoder(batch):  # dimensions 0-2 follow x, 3-5 sit at the prior
        mean = torch.cat([batch[:, :3], torch.zeros(len(batch), 3)], dim=1)
        logvar = torch.cat([torch.full((len(batch), 3), -2.0), torch.zeros(len(batch), 3)], 1)
        return mean, logvar

    return diagnose(encoder, x, iwae_k=0)


def test_repr_is_a_short_summary_not_a_tensor_dump(report) -> None:
    text = repr(report)
    assert text.startswith("DiagnosisReport(ε=0.01, δ=0.05)")
    assert "z: 6 dims" in text and "(ε,δ)-collapsed [3, 4, 5]" in text and "I(x;z)" in text
    # the headline comes first, then the cause and fix under it, then the level's numbers
    lines = text.splitlines()
    assert lines[1].startswith("  z: 3 of 6 dimensions collapsed — ")
    assert lines[2].startswith("    cause [undetermined], dimensions [3, 4, 5]: ")
    assert "tensor(" not in text and len(lines) <= 6
    assert "tensor(" not in repr(report.levels["z"])


def test_html_has_a_row_per_dimension_and_two_decodable_plots(report) -> None:
    page = report._repr_html_()
    assert page.count("<tr><td>") == 6 and page.count("collapsed</td>") == 3
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 2
    assert all(base64.b64decode(image).startswith(b"\x89PNG") for image in images)


def test_dataframe_has_one_row_per_dimension(report) -> None:
    frame = report.to_dataframe()
    assert list(frame["dimension"]) == list(range(6))
    assert list(frame.loc[frame["collapsed"], "dimension"]) == [3, 4, 5]
    assert frame["mean_kl"].tolist() == pytest.approx(report.kl_per_dim.tolist())
    assert report.to_dict()["levels"]["z"]["collapsed_dims"] == [3, 4, 5]


def test_plots_draw_into_the_callers_axes_and_return_the_figure(report) -> None:
    from matplotlib.figure import Figure

    figure = Figure()
    axes = figure.subplots(1, 3)
    for axis, plot in zip(
        axes,
        (
            lambda ax: plot_collapse_curves({"m": report}, ax=ax),
            lambda ax: plot_kl_bars(report, ax=ax),
            lambda ax: plot_std_histograms({"m": report}, ax=ax),
        ),
        strict=True,
    ):
        assert plot(axis) is figure
        assert axis.has_data()


def test_the_library_leaves_the_matplotlib_backend_alone() -> None:
    script = (
        "import sys, matplotlib; matplotlib.use('svg')\n"
        "import torch, vaecollapse\n"
        "from vaecollapse.core.diagnostics.plots import plot_kl_bars\n"
        "r = vaecollapse.diagnose(lambda b: (b, torch.zeros_like(b)), torch.randn(50, 3))\n"
        "r._repr_html_(); plot_kl_bars(r)\n"
        "print(matplotlib.get_backend(), 'matplotlib.pyplot' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO_ROOT, check=True
    )
    assert done.stdout.split() == ["svg", "False"]
