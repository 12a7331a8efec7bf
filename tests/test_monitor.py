"""The live collapse monitor: events when a dimension collapses or revives, one JSON line per
update, TensorBoard scalars and histograms, the training loop's state left alone, and the
trainer's --monitor that resumes with the run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from vaecollapse.data import load_dataset
from vaecollapse.errors import InputError
from vaecollapse.monitor import CollapseMonitor
from vaecollapse.train import TrainConfig

from .fault_cases import invoke


class Switchable(nn.Module):
    """An encoder whose dimension j follows the input only while ``alive[j]``."""

    def __init__(self) -> None:
        super().__init__()
        self.alive = [True, True, True]
        self.dropout = nn.Dropout(0.5)

    def forward(self, x: torch.Tensor):
        gate = torch.tensor([1.0 if a else 0.0 for a in self.alive])
        mean = x[:, :3] * gate
        logvar = torch.where(gate > 0, torch.tensor(-2.0), torch.tensor(0.0)).expand_as(mean)
        return mean, logvar


def test_events_name_the_dimension_and_the_epoch(tmp_path: Path) -> None:
    x = torch.randn(400, 5, generator=torch.Generator().manual_seed(0))
    encoder = Switchable()
    monitor = CollapseMonitor(encoder, x, out=tmp_path / "monitor.jsonl")
    assert monitor.update(1) == []
    encoder.alive[2] = False
    assert monitor.update(2) == [
        "dimension 2 of z collapsed at epoch 2 (KL < ε = 0.01 for 100% of the rows; mean KL 0)"
    ]
    encoder.alive[2] = True
    (event,) = monitor.update(3)
    assert event.startswith("dimension 2 of z revived at epoch 3 (KL ≥ ε = 0.01 for ")
    lines = [json.loads(line) for line in (tmp_path / "monitor.jsonl").read_text().splitlines()]
    assert [line["epoch"] for line in lines] == [1, 2, 3]
    assert lines[1]["levels"]["z"]["collapsed"] == [2] and lines[1]["events"]
    assert lines[2]["trend"].startswith("KL of z +")
    # a monitor made again over the same file continues it; epochs at or past an update redo
    again = CollapseMonitor(encoder, x, out=tmp_path / "monitor.jsonl")
    again.update(3)
    assert len((tmp_path / "monitor.jsonl").read_text().splitlines()) == 3


def test_the_training_loops_state_is_left_alone(tmp_path: Path) -> None:
    x = torch.randn(100, 5)
    encoder = Switchable().train()
    monitor = CollapseMonitor(encoder, x, every=2)
    state = torch.get_rng_state()
    assert monitor.update(1) == [] and not monitor.records  # not an update epoch
    monitor.update(2)
    assert encoder.training and encoder.dropout.training
    assert torch.equal(torch.get_rng_state(), state)


def test_tensorboard_gets_a_scalar_per_dimension_and_a_histogram(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    x = torch.randn(200, 5, generator=torch.Generator().manual_seed(1))
    monitor = CollapseMonitor(Switchable(), x, tensorboard=tmp_path / "tb")
    monitor.update(1)
    monitor.update(2)
    events = EventAccumulator(str(tmp_path / "tb")).Reload()
    tags = events.Tags()
    assert {f"kl/z/dim_{j}" for j in range(3)} <= set(tags["scalars"])
    assert "mutual_information/z" in tags["scalars"] and "encoder_std/z" in tags["histograms"]
    assert [e.step for e in events.Scalars("kl/z/dim_0")] == [1, 2]


def test_bad_monitor_settings_are_clear_errors(tmp_path: Path) -> None:
    x = torch.randn(10, 5)
    with pytest.raises(InputError, match="every and rows"):
        CollapseMonitor(Switchable(), x, every=0)
    (tmp_path / "garbage.jsonl").write_text("not json\n")
    with pytest.raises(InputError, match="is not a monitor record"):
        CollapseMonitor(Switchable(), x, out=tmp_path / "garbage.jsonl")


def test_train_monitor_writes_its_record_and_resumes_with_the_run(tmp_path: Path) -> None:
    args = ["train", "--dataset", "digits", "--latent-dim", "6", "--encoder-variance", "shared"]
    args += ["--beta", "4", "--analytic", "--lr", "0.01", "--monitor", "--device", "cpu"]
    straight = invoke(*args, "--epochs", "20", "--out", tmp_path / "a")
    assert straight.code == 0, straight.err
    assert "collapsed at epoch" in straight.err  # the events are printed as they happen
    assert invoke(*args, "--epochs", "12", "--out", tmp_path / "b").code == 0
    assert invoke(*args, "--epochs", "20", "--out", tmp_path / "b").code == 0
    a, b = ((tmp_path / d / "monitor.jsonl").read_text() for d in "ab")
    assert a == b and len(a.splitlines()) == 20
    assert TrainConfig(monitor=True).monitor_every == 1
    assert load_dataset("digits").test is not None  # the monitor watched the test split


def test_the_monitored_rows_are_named_as_many_as_there_are() -> None:
    from vaecollapse.monitor import DEFAULT_ROWS, monitored_rows

    assert monitored_rows(500) == "all 500 test rows"  # a split smaller than the monitor's share
    assert monitored_rows(DEFAULT_ROWS + 1, "training") == f"first {DEFAULT_ROWS} training rows"


def test_the_bench_names_the_split_its_monitor_watches() -> None:
    from dataclasses import replace

    from vaecollapse.remedy_bench import monitored_split

    digits = load_dataset("digits")
    assert digits.evaluation_split is digits.test
    assert monitored_split(digits) == f"all {len(digits.test)} test rows"
    untested = replace(digits, test=None)  # watched on its training rows instead
    assert untested.evaluation_split is digits.train
    assert monitored_split(untested) == f"all {len(digits.train)} training rows"
