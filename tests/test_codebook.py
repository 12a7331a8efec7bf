"""Codebook metrics on constructed assignments whose answer is known, the whole-data figure
against per-batch ones, and diagnose_codebook through real vector-quantize-pytorch layers."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from vector_quantize_pytorch import FSQ, LFQ, ResidualVQ, VectorQuantize

from vaecollapse import InputError, diagnose_codebook
from vaecollapse.core.codebook.metrics import (
    batch_perplexities,
    codes_covering,
    dead_codes,
    perplexity,
    usage_counts,
)

K = 512


def _draws(weights: torch.Tensor, count: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.multinomial(weights, count, replacement=True, generator=generator)


def _sixteen_of_512(count: int = 200_000) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices drawn from 16 of the 512 codes with unequal weights, and those weights ``(K,)``."""
    generator = torch.Generator().manual_seed(1)
    codes = torch.randperm(K, generator=generator)[:16]
    weights = torch.zeros(K, dtype=torch.float64)
    weights[codes] = torch.rand(16, generator=generator, dtype=torch.float64) + 0.2
    return _draws(weights / weights.sum(), count), weights / weights.sum()


def test_sixteen_of_512_codes_give_usage_16_their_perplexity_and_496_dead() -> None:
    indices, weights = _sixteen_of_512()
    report = diagnose_codebook(indices.reshape(-1, 1), codebook_size=K)
    p = weights[weights > 0]
    true = math.exp(float(-(p * p.log()).sum()))
    assert report.used == 16 and len(report.dead) == 496
    assert abs(report.perplexity - true) / true < 0.01
    found = report.to_dict()
    assert (found["used"], found["dead_count"]) == (16, 496)
    assert set(found["dead"]) == set(torch.nonzero(weights == 0).flatten().tolist())
    assert found["perplexity"] == report.perplexity and sum(found["counts"]) == len(indices)


def test_a_per_batch_perplexity_depends_on_the_batch_size_and_the_whole_data_one_does_not() -> None:
    indices, _ = _sixteen_of_512(65_536)
    means = [float(batch_perplexities(indices, K, size).mean()) for size in (4, 16, 256, 4096)]
    assert means == sorted(means) and means[0] < 0.5 * means[-1]  # small batches see fewer codes

    class Lookup(nn.Module):  # a "quantiser" whose code for sample i is indices[i]
        codebook_size = K

        def forward(self, rows: torch.Tensor):
            return rows.float(), rows.long().squeeze(1)

    data = indices.reshape(-1, 1).float()
    small = diagnose_codebook(Lookup(), data, batch_size=4).to_dict()
    large = diagnose_codebook(Lookup(), data, batch_size=4096).to_dict()
    assert small == large


def test_perplexity_counts_equally_used_codes() -> None:
    assert perplexity(torch.tensor([0, 7, 0])) == pytest.approx(1.0, abs=1e-12)
    assert perplexity(torch.full((64,), 3)) == pytest.approx(64.0, rel=1e-12)


def test_dead_codes_and_the_codes_covering_a_share() -> None:
    counts = torch.tensor([100, 1, 0, 99])
    assert dead_codes(counts).tolist() == [2]
    assert dead_codes(counts, share=0.01).tolist() == [1, 2]
    assert codes_covering(torch.tensor([5, 50, 15, 30]), 0.95) == 3
    assert codes_covering(torch.tensor([5, 50, 15, 30]), 0.96) == 4


def test_per_position_usage_finds_a_position_that_always_takes_one_code() -> None:
    grid = _draws(torch.ones(8), 400 * 4).reshape(400, 2, 2)
    grid[:, 0, 0] = 3
    positions = diagnose_codebook(grid, codebook_size=8).positions
    assert positions.shape == [2, 2]
    assert positions.used[0] == 1 and positions.perplexity[0] == pytest.approx(1.0)
    assert min(positions.used[1:]) == 8


def test_residual_levels_are_reported_one_by_one() -> None:
    levels = torch.stack([_draws(torch.ones(16), 3000, seed=s).reshape(300, 10) for s in (0, 1)])
    levels = torch.cat([levels, torch.full((1, 300, 10), 5)]).movedim(0, -1)  # (300, 10, 3)
    report = diagnose_codebook(levels, codebook_size=16, levels=3)
    assert [level.used for level in report.levels] == [16, 16, 1]
    assert report.usage == report.levels[0]


def test_dead_codes_far_from_the_data_are_stranded_and_commitment_is_the_noise() -> None:
    generator = torch.Generator().manual_seed(0)
    codebook = torch.cat([torch.eye(4) * 5, torch.full((4, 4), 40.0)])  # codes 4..7 far away
    chosen = _draws(torch.ones(4), 5000)
    noise = 0.1 * torch.randn(5000, 4, generator=generator)
    encodings = codebook[chosen] + noise
    report = diagnose_codebook(chosen, codebook_size=8, encodings=encodings, codebook=codebook)
    assert report.dead == [4, 5, 6, 7]
    assert report.distances.commitment_mean == pytest.approx(float(noise.square().sum(1).mean()))
    assert report.distances.stranded_ratio > 100


def test_a_vector_quantize_layer_is_diagnosed_over_all_data_and_keeps_its_mode() -> None:
    torch.manual_seed(0)
    layer = VectorQuantize(dim=8, codebook_size=32)
    data = torch.randn(300, 5, 8)
    layer.train()
    report = diagnose_codebook(layer, data, batch_size=64)
    assert layer.training
    layer.eval()
    with torch.no_grad():
        _, expected, _ = layer(data)
    assert report.usage.counts == usage_counts(expected, 32).tolist()
    assert report.samples == 300 and report.positions.shape == [5]
    assert report.distances is not None and report.distances.commitment_mean > 0


def test_image_feature_maps_residual_fsq_and_lfq_layers() -> None:
    torch.manual_seed(0)
    fmap = VectorQuantize(dim=4, codebook_size=16, accept_image_fmap=True)
    report = diagnose_codebook(fmap, torch.randn(20, 4, 3, 3))
    assert report.positions.shape == [3, 3] and report.usage.assignments == 180
    assert report.distances is not None
    residual = ResidualVQ(dim=8, num_quantizers=3, codebook_size=16)
    report = diagnose_codebook(residual, torch.randn(40, 6, 8))
    assert len(report.levels) == 3 and all(level.assignments == 240 for level in report.levels)
    fsq = FSQ(levels=[5, 4, 3], dim=8)
    assert diagnose_codebook(fsq, torch.randn(50, 4, 8)).usage.codebook_size == 60
    lfq = LFQ(dim=8, codebook_size=16)
    report = diagnose_codebook(lfq, torch.randn(50, 4, 8))
    assert report.usage.assignments == 200 and report.distances is None


def test_bad_inputs_get_one_paragraph_errors() -> None:
    with pytest.raises(InputError, match="integers"):
        diagnose_codebook(torch.rand(10), codebook_size=4)
    with pytest.raises(InputError, match=r"\[0, 4\)"):
        diagnose_codebook(torch.tensor([0, 4]), codebook_size=4)
    with pytest.raises(InputError, match="codebook_size"):
        diagnose_codebook(torch.tensor([0, 1]))

    class Plain(nn.Module):
        codebook_size = 4

        def forward(self, x):
            return x

    with pytest.raises(InputError, match=r"\(quantized, indices"):
        diagnose_codebook(Plain(), torch.randn(3, 2))
    with pytest.raises(InputError, match="needs data"):
        diagnose_codebook(Plain())


def _clusters(count: int = 4000) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Encodings around four centres 5·e_k (their cluster ids, the centres)."""
    centres = torch.eye(4) * 5
    chosen = _draws(torch.ones(4), count)
    noise = 0.1 * torch.randn(count, 4, generator=torch.Generator().manual_seed(3))
    return centres[chosen] + noise, chosen, centres


def test_the_verdict_names_stranded_codes_and_not_a_lagging_codebook() -> None:
    encodings, chosen, centres = _clusters()
    codebook = torch.cat([centres, torch.full((4, 4), 40.0)])
    report = diagnose_codebook(chosen, codebook_size=8, encodings=encodings, codebook=codebook)
    assert [f.code for f in report.findings] == ["codebook-collapsing", "codes-stranded"]
    assert report.summary().startswith("[codebook-collapsing] 4 of 8 codes (50%) are dead")


def test_the_verdict_names_a_codebook_that_does_not_follow_its_encodings() -> None:
    encodings, chosen, centres = _clusters()
    codebook = torch.cat([centres + 4.0, centres + 0.2])  # used codes off, dead ones on the data
    report = diagnose_codebook(chosen, codebook_size=8, encodings=encodings, codebook=codebook)
    assert [f.code for f in report.findings] == ["codebook-collapsing", "codebook-lagging"]


def test_a_codebook_in_use_has_no_findings() -> None:
    encodings, chosen, centres = _clusters()
    report = diagnose_codebook(chosen, codebook_size=4, encodings=encodings, codebook=centres)
    assert report.findings == [] and report.to_dict()["findings"] == []
    assert report.summary().startswith("4 of 4 codes used")


def test_the_token_sequences_entropy_is_the_information_they_carry() -> None:
    ten = (torch.arange(1000) % 10).reshape(-1, 1).repeat(1, 2)  # 10 sequences, equally often
    report = diagnose_codebook(ten, codebook_size=16)
    assert report.distinct_sequences == 10
    assert report.sequence_entropy == pytest.approx(math.log(10), rel=1e-12)
    unique = torch.stack([torch.arange(1000) % 32, torch.arange(1000) // 32], 1)  # all distinct
    report = diagnose_codebook(unique, codebook_size=32)
    assert report.distinct_sequences == 1000
    assert report.sequence_entropy == pytest.approx(math.log(1000), rel=1e-12)
