"""The Lightning callback logs per-dimension KL, active units, the collapsed count and the mutual
information through the module's logger at every validation epoch."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from vaecollapse.core.data import load_dataset


# Lightning's own code, on this torch, warns about torch's pytree API; nothing of ours
@pytest.mark.filterwarnings(
    "ignore:`isinstance\\(treespec, LeafSpec\\)` is deprecated:FutureWarning"
)
def test_callback_logs_collapse_metrics_each_validation_epoch(tmp_path: Path) -> None:
    import lightning
    from lightning.pytorch.loggers import CSVLogger

    from vaecollapse.integrations.lightning import CollapseCallback

    class LitVAE(lightning.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 8))
            self.decoder = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 64))

        def encode(self, x):
            return self.encoder(x).chunk(2, dim=1)

        def _loss(self, x):
            mean, logvar = self.encode(x)
            z = mean + torch.randn_like(mean) * torch.exp(0.5 * logvar)
            recon = 0.5 * (self.decoder(z) - x).square().sum(1)
            kl = 0.5 * (mean**2 + logvar.exp() - 1 - logvar).sum(1)
            return (recon + kl).mean()

        def training_step(self, batch, _):
            return self._loss(batch[0])

        def validation_step(self, batch, _):
            self.log("val_loss", self._loss(batch[0]))

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=3e-3)

    digits = load_dataset("digits")
    train = DataLoader(TensorDataset(digits.train.x), batch_size=128, shuffle=True)
    val = DataLoader(TensorDataset(digits.test.x), batch_size=512)
    callback = CollapseCallback(digits.test.x)
    trainer = lightning.Trainer(
        max_epochs=3, callbacks=[callback], logger=CSVLogger(tmp_path), log_every_n_steps=1,
        enable_progress_bar=False,
        enable_model_summary=False, enable_checkpointing=False, accelerator="cpu",
    )  # fmt: skip
    torch.manual_seed(0)
    trainer.fit(LitVAE(), train, val)
    (metrics_file,) = tmp_path.glob("**/metrics.csv")
    with metrics_file.open() as handle:
        rows = [r for r in csv.DictReader(handle) if r.get("collapse/kl/z/dim_0")]
    assert [int(r["step"]) for r in rows] == [1, 2, 3]  # logged by epoch, the first epoch 1
    for row in rows:
        kls = [float(row[f"collapse/kl/z/dim_{j}"]) for j in range(4)]
        assert all(kl >= 0 for kl in kls)
        assert 0 <= float(row["collapse/active_units/z"]) <= 4
        assert float(row["collapse/collapsed/z"]) in range(5)
        # I(x; z) never exceeds the KL averaged over the data (plus the sampling error)
        assert 0 <= float(row["collapse/mutual_information/z"]) <= sum(kls) + 0.05
    assert len(callback.monitor.records) == 3


def test_a_missing_extra_is_a_clear_error_with_the_install_command(monkeypatch) -> None:
    import importlib
    import sys

    from vaecollapse.core.errors import InputError

    for name in ("lightning.pytorch.callbacks", "pytorch_lightning.callbacks"):
        monkeypatch.setitem(sys.modules, name, None)  # as if not installed
    monkeypatch.delitem(sys.modules, "vaecollapse.integrations.lightning", raising=False)
    with pytest.raises(InputError, match=r"pip install 'vaecollapse\[lightning\]'"):
        importlib.import_module("vaecollapse.integrations.lightning")
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    from vaecollapse.core.monitor import CollapseMonitor

    with pytest.raises(InputError, match=r"pip install 'vaecollapse\[tensorboard\]'"):
        CollapseMonitor(lambda b: (b, b * 0), torch.randn(4, 2), tensorboard="runs")


@pytest.mark.filterwarnings(
    "ignore:`isinstance\\(treespec, LeafSpec\\)` is deprecated:FutureWarning"
)
def test_the_callback_stops_a_collapsed_run_and_restores_its_healthy_weights() -> None:
    import lightning

    from vaecollapse.integrations.lightning import CollapseCallback

    class Collapsing(lightning.LightningModule):
        """A VAE that does not learn (learning rate 0) and whose encoder is set to the prior at
        the start of its third epoch: healthy through epoch 2, collapsed from epoch 3 on."""

        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.encoder = nn.Linear(64, 8)
            self.decoder = nn.Linear(4, 64)

        def encode(self, x):
            return self.encoder(x).chunk(2, dim=1)

        def on_train_epoch_start(self) -> None:
            if self.current_epoch == 2:
                with torch.no_grad():
                    self.encoder.weight.zero_()
                    self.encoder.bias.zero_()

        def training_step(self, batch, _):
            mean, logvar = self.encode(batch[0])
            return (self.decoder(mean) - batch[0]).square().sum(1).mean() + logvar.sum() * 0

        def validation_step(self, batch, _):
            return None

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.0)

    digits = load_dataset("digits")
    train = DataLoader(TensorDataset(digits.train.x), batch_size=256)
    val = DataLoader(TensorDataset(digits.test.x), batch_size=512)
    callback = CollapseCallback(digits.test.x, stop_when="level-collapsed", restore_healthy=True)
    trainer = lightning.Trainer(
        max_epochs=20, callbacks=[callback], logger=False, enable_progress_bar=False,
        enable_model_summary=False, enable_checkpointing=False, accelerator="cpu",
    )  # fmt: skip
    module = Collapsing()
    trainer.fit(module, train, val)
    # collapsed at the checks of epochs 3 and 4 (patience 2): stopped at 4, weights of epoch 2
    assert callback.stopped_epoch == 4 and trainer.current_epoch == 4
    assert callback.healthy_epoch == 2 and bool(module.encoder.weight.abs().sum() > 0)
    assert "every dimension of z has been collapsed for 2 checks" in callback.monitor.stop_reason
