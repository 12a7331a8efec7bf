"""A PyTorch Lightning callback that watches collapse: at the end of every validation epoch it
diagnoses the module's VAE on a fixed set of rows and logs, through the module's logger, the KL
of every latent dimension, the active units, the (ε,δ)-collapsed count and the mutual
information of each level (the ``lightning`` extra).

    trainer = lightning.Trainer(callbacks=[CollapseCallback(x_val)], ...)
"""

from __future__ import annotations

from typing import Any

from .errors import InputError
from .monitor import CollapseMonitor

LIGHTNING_EXTRA = "pip install 'vaecollapse[lightning]'  (or: pip install lightning)"

try:
    from lightning.pytorch.callbacks import Callback
except ImportError:  # the older package name
    try:
        from pytorch_lightning.callbacks import Callback
    except ImportError:
        raise InputError(
            f"vaecollapse.lightning needs PyTorch Lightning, which is not installed: "
            f"{LIGHTNING_EXTRA}."
        ) from None


class CollapseCallback(Callback):
    """``data`` (and ``y``): the rows to diagnose; ``model``: the VAE inside the LightningModule
    when it is not the module itself (an attribute name such as ``"vae"``, or a function of the
    module); ``every``: validation epochs between two diagnoses; ``out``: an optional JSONL
    record; the other options are those of :class:`vaecollapse.monitor.CollapseMonitor` (the
    adapter's for a user's encoder). Logged keys: ``collapse/kl/<level>/dim_<j>``,
    ``collapse/active_units/<level>``, ``collapse/collapsed/<level>`` and
    ``collapse/mutual_information/<level>``."""

    def __init__(
        self, data: Any, y: Any = None, *, model: Any = None, every: int = 1, **options: Any
    ) -> None:
        super().__init__()
        self.data, self.y, self.model, self.every, self.options = data, y, model, every, options
        self.monitor: CollapseMonitor | None = None
        self.events: list[str] = []

    def _vae(self, module: Any) -> Any:
        if self.model is None:
            return module
        if isinstance(self.model, str):
            return getattr(module, self.model)
        return self.model(module)

    def on_validation_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if getattr(trainer, "sanity_checking", False):
            return
        if self.monitor is None:
            self.monitor = CollapseMonitor(
                self._vae(pl_module), self.data, self.y, every=self.every, **self.options
            )
        epoch = trainer.current_epoch + 1
        self.events += self.monitor.update(epoch)
        if not self.monitor.records or self.monitor.records[-1]["epoch"] != epoch:
            return
        metrics = {}
        for name, level in self.monitor.records[-1]["levels"].items():
            for j, kl in enumerate(level["kl_per_dim"]):
                metrics[f"collapse/kl/{name}/dim_{j}"] = kl
            metrics[f"collapse/active_units/{name}"] = float(level["active_units"])
            metrics[f"collapse/collapsed/{name}"] = float(len(level["collapsed"]))
            if level["mutual_information"] is not None:
                metrics[f"collapse/mutual_information/{name}"] = level["mutual_information"]
        pl_module.log_dict(metrics)
