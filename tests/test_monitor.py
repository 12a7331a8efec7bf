"""The live collapse monitor: events when a dimension collapses or revives, one JSON line per
update, TensorBoard scalars and histograms, the training loop's state left alone, and the
trainer's --monitor that resumes with the run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from vaecollapse.core.data import load_dataset
from vaecollapse.core.errors import InputError
from vaecollapse.core.monitor import CollapseMonitor
from vaecollapse.training.config import TrainConfig

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
    monitor = CollapseMonitor(encoder, x, out=tmp_path / "monitor.jsonl", patience=1)
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
    again = CollapseMonitor(encoder, x, out=tmp_path / "monitor.jsonl", patience=1)
    again.update(3)
    assert len((tmp_path / "monitor.jsonl").read_text().splitlines()) == 3


def test_a_dimension_collapsed_at_the_first_check_is_reported() -> None:
    x = torch.randn(300, 5, generator=torch.Generator().manual_seed(0))
    encoder = Switchable()
    encoder.alive[1] = False
    (event,) = CollapseMonitor(encoder, x).update(1)
    assert event.startswith("dimension 1 of z is collapsed at the first check, epoch 1 (KL < ε")


def test_hysteresis_keeps_an_oscillating_dimension_quiet_and_dates_a_real_change() -> None:
    x = torch.randn(300, 5, generator=torch.Generator().manual_seed(0))
    encoder = Switchable()
    quiet, eager = CollapseMonitor(encoder, x), CollapseMonitor(encoder, x, patience=1)
    heard: list = []
    dated = CollapseMonitor(encoder, x, on_event=heard.append)
    events = {"quiet": [], "eager": [], "dated": []}
    for epoch in range(1, 31):
        encoder.alive[2] = epoch % 2 == 1  # dimension 2 flips at every epoch
        encoder.alive[0] = epoch < 20  # dimension 0 dies at epoch 20 for good
        events["quiet"] += quiet.update(epoch)
        events["eager"] += eager.update(epoch)
        events["dated"] += dated.update(epoch)
    assert len(events["eager"]) == 30  # 29 flips of dimension 2 and dimension 0's collapse
    assert events["quiet"] == events["dated"] and len(events["quiet"]) <= 2
    (death,) = [e for e in heard if e.dim == 0]
    assert (death.kind, death.epoch, death.confirmed_at) == ("collapsed", 20, 21)
    assert death.message.startswith("dimension 0 of z collapsed at epoch 20 (KL < ε = 0.01")
    assert death.message.endswith("held through epoch 21)")
    summary = quiet.summary()["z"]
    assert summary[0] == {"dim": 0, "state": "collapsed", "since": 20, "collapses": 1,
                          "revivals": 0}  # fmt: skip
    assert summary[2]["collapses"] == 0 and summary[1]["state"] == "active"


def test_stop_when_a_level_stays_collapsed(tmp_path: Path) -> None:
    x = torch.randn(300, 5, generator=torch.Generator().manual_seed(0))
    encoder = Switchable()
    monitor = CollapseMonitor(encoder, x, stop_when="level-collapsed", out=tmp_path / "m.jsonl")
    for epoch in range(1, 11):
        encoder.alive = [epoch < 4] * 3  # every dimension dies at epoch 4
        monitor.update(epoch)
        if monitor.should_stop:
            break
    assert epoch == 5 and "every dimension of z has been collapsed for 2 checks" in (
        monitor.stop_reason
    )
    # the rule's count is part of the record: a monitor made again over the file stops alike
    again = CollapseMonitor(encoder, x, stop_when="level-collapsed", out=tmp_path / "m.jsonl")
    again.update(5)
    assert again.should_stop
    asked = CollapseMonitor(encoder, x, stop_when=lambda record: record["epoch"] >= 2)
    asked.update(1)
    assert not asked.should_stop
    asked.update(2)
    assert asked.stop_reason == "stop_when returned True"


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
    with pytest.raises(InputError, match="every, rows and patience"):
        CollapseMonitor(Switchable(), x, every=0)
    with pytest.raises(InputError, match="stop_when must be one of"):
        CollapseMonitor(Switchable(), x, stop_when="whenever")
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
    from vaecollapse.core.monitor import DEFAULT_ROWS, monitored_rows

    assert monitored_rows(500) == "all 500 test rows"  # a split smaller than the monitor's share
    assert monitored_rows(DEFAULT_ROWS + 1, "training") == f"first {DEFAULT_ROWS} training rows"


def test_the_bench_names_the_split_its_monitor_watches() -> None:
    from dataclasses import replace

    from vaecollapse.studies.remedy_bench import monitored_split

    digits = load_dataset("digits")
    assert digits.evaluation_split is digits.test
    assert monitored_split(digits) == f"all {len(digits.test)} test rows"
    untested = replace(digits, test=None)  # watched on its training rows instead
    assert untested.evaluation_split is digits.train
    assert monitored_split(untested) == f"all {len(digits.train)} training rows"
