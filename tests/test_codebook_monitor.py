"""CodebookMonitor: codes dying and reviving are reported after the hysteresis and dated from
when they began, a blip is not, the stop rule, records that a resumed monitor continues,
TensorBoard scalars read back, and a real vector-quantize-pytorch VQ autoencoder watched while
its codebook collapses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn
from vector_quantize_pytorch import VectorQuantize

from vaecollapse import CodebookMonitor, InputError, load_dataset

K = 8


class Scripted(nn.Module):
    """A quantiser whose codes at each epoch are set by hand: sample i gets ``table[i]``."""

    codebook_size = K

    def __init__(self) -> None:
        super().__init__()
        self.table = torch.arange(40) % K

    def use(self, codes: list[int]) -> None:
        self.table = torch.tensor(codes * (40 // len(codes)) + codes[: 40 % len(codes)])

    def forward(self, rows: torch.Tensor):
        picked = self.table[rows.long().squeeze(1)]
        return rows, picked


def _data() -> torch.Tensor:
    return torch.arange(40).reshape(-1, 1).float()


SCRIPT = [  # codes in use at epochs 1..6
    list(range(K)),
    [c for c in range(K) if c != 3],  # code 3 goes
    [c for c in range(K) if c not in (3, 5)],  # 3 stays gone; 5 blips
    [c for c in range(K) if c != 3],
    list(range(K)),  # 3 returns
    list(range(K)),
]


def _run(monitor: CodebookMonitor, quantiser: Scripted, epochs: range) -> list[str]:
    messages = []
    for epoch in epochs:
        quantiser.use(SCRIPT[epoch - 1])
        messages += monitor.update(epoch)
    return messages


def test_a_code_dying_and_reviving_is_dated_from_when_it_began_and_a_blip_is_not(
    tmp_path: Path,
) -> None:
    quantiser = Scripted()
    seen = []
    monitor = CodebookMonitor(quantiser, _data(), out=tmp_path / "codes.jsonl",
                              on_event=seen.append)  # fmt: skip
    messages = _run(monitor, quantiser, range(1, 7))
    assert [(e.code, e.kind, e.epoch, e.confirmed_at) for e in seen] == [
        (3, "died", 2, 3),
        (3, "revived", 5, 6),
    ]
    assert messages[0].startswith("code 3 died at epoch 2 (never chosen; held through epoch 3)")
    assert monitor.summary() == []
    lines = (tmp_path / "codes.jsonl").read_text().splitlines()
    assert [json.loads(line)["used"] for line in lines] == [8, 7, 6, 7, 8, 8]


def test_a_resumed_monitor_continues_the_records_and_the_states(tmp_path: Path) -> None:
    quantiser = Scripted()
    first = CodebookMonitor(quantiser, _data(), out=tmp_path / "codes.jsonl")
    _run(first, quantiser, range(1, 3))
    resumed = CodebookMonitor(quantiser, _data(), out=tmp_path / "codes.jsonl")
    assert _run(resumed, quantiser, range(3, 4)) == [
        "code 3 died at epoch 2 (never chosen; held through epoch 3)"
    ]
    assert resumed.summary() == [{"code": 3, "since": 2, "deaths": 1, "revivals": 0}]


def test_the_stop_rule_waits_for_patience_checks_below_the_share() -> None:
    quantiser = Scripted()
    monitor = CodebookMonitor(quantiser, _data(), stop_below=0.5)
    for epoch, codes in enumerate([[0, 1, 2, 3, 4], [0, 1, 2], [0, 1]], start=1):
        quantiser.use(codes)
        monitor.update(epoch)
        assert monitor.should_stop is (epoch == 3)
    assert "fewer than 50% of the 8 codes have been used for 2 checks" in monitor.stop_reason


def test_codes_dead_at_the_first_check_are_reported_then() -> None:
    quantiser = Scripted()
    quantiser.use([0, 1])
    monitor = CodebookMonitor(quantiser, _data())
    messages = monitor.update(1)
    assert len(messages) == 6 and messages[0] == (
        "code 2 is dead at the first check, epoch 1 (never chosen)"
    )


def test_tensorboard_gets_the_codebook_scalars(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    quantiser = Scripted()
    monitor = CodebookMonitor(quantiser, _data(), tensorboard=tmp_path / "tb")
    _run(monitor, quantiser, range(1, 3))
    events = EventAccumulator(str(tmp_path / "tb")).Reload()
    assert [e.value for e in events.Scalars("codebook/used")] == [8, 7]
    assert {"codebook/dead", "codebook/perplexity"} <= set(events.Tags()["scalars"])


def test_bad_settings_are_clear_errors() -> None:
    with pytest.raises(InputError, match="stop_below"):
        CodebookMonitor(Scripted(), _data(), stop_below=2.0)
    with pytest.raises(InputError, match="at least 1"):
        CodebookMonitor(Scripted(), _data(), patience=0)


def test_a_vq_autoencoder_is_watched_while_its_codebook_collapses(tmp_path: Path) -> None:
    x = load_dataset("digits").train.x
    torch.manual_seed(0)
    encoder = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 4 * 16))
    decoder = nn.Sequential(nn.Linear(4 * 16, 64), nn.ReLU(), nn.Linear(64, 64), nn.Sigmoid())
    quantizer = VectorQuantize(dim=16, codebook_size=64, decay=0.99)
    parameters = [*encoder.parameters(), *decoder.parameters(), *quantizer.parameters()]
    optimizer = torch.optim.Adam(parameters, lr=1e-3)

    class Tokenizer(nn.Module):  # the user's model: images in, (quantized, indices, loss) out
        codebook_size = 64

        def forward(self, images):
            return quantizer(encoder(images).view(-1, 4, 16))

    monitor = CodebookMonitor(Tokenizer(), x[:512], out=tmp_path / "codes.jsonl")
    for epoch in range(1, 4):
        for batch in x.split(64):
            quantized, _, commitment = quantizer(encoder(batch).view(-1, 4, 16))
            loss = nn.functional.mse_loss(decoder(quantized.flatten(1)), batch)
            optimizer.zero_grad()
            (loss + commitment.sum()).backward()
            optimizer.step()
        monitor.update(epoch)
    used = [record["used"] for record in monitor.records]
    assert used[-1] < 64 // 4 and len(monitor.summary()) == 64 - used[-1]
    assert quantizer.training  # the monitor left the layer as training had it
