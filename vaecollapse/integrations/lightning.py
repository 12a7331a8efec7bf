"""A PyTorch Lightning callback that watches collapse: at the end of every validation epoch it
diagnoses the module's VAE on a fixed set of rows and logs, through the trainer's loggers by
epoch, the KL of every latent dimension, the active units, the (ε,δ)-collapsed count and the
mutual information of each level; optionally it stops a run whose level has collapsed and puts
back its last healthy weights (the ``lightning`` extra).

    trainer = lightning.Trainer(callbacks=[CollapseCallback(x_val, stop_when="level-collapsed",
                                                            restore_healthy=True)], ...)
"""

from __future__ import annotations

from typing import Any

from vaecollapse.core.errors import InputError
from vaecollapse.core.logs import LOGGER
from vaecollapse.core.monitor import CollapseMonitor

LIGHTNING_EXTRA = "pip install 'vaecollapse[lightning]'  (or: pip install lightning)"

try:
    from lightning.pytorch.callbacks import Callback
except ImportError:  # the older package name
    try:
        from pytorch_lightning.callbacks import Callback
    except ImportError:
        raise InputError(
            f"vaecollapse.integrations.lightning needs PyTorch Lightning, which is not installed: "
            f"{LIGHTNING_EXTRA}."
        ) from None


class CollapseCallback(Callback):
    """``data`` (and ``y``): the rows to diagnose; ``model``: the VAE inside the LightningModule
    when it is not the module itself (an attribute name such as ``"vae"``, or a function of the
    module); ``every``: validation epochs between two diagnoses; ``out``: an optional JSONL
    record; the other options are those of :class:`vaecollapse.core.monitor.CollapseMonitor` (its
    ``patience``, ``on_event``, ``stop_when``; the adapter's for a user's encoder).

    Logged through every logger of the trainer with the epoch (1 for the first) as the step:
    ``collapse/kl/<level>/dim_<j>`` (a latent grid's: ``channel_<c>``),
    ``collapse/active_units/<level>``,
    ``collapse/collapsed/<level>`` and ``collapse/mutual_information/<level>``. With
    ``stop_when`` the trainer stops once the rule holds (``"level-collapsed"``: a level fully
    collapsed for ``patience`` checks); ``restore_healthy``: the module's weights are then put
    back as they were at the last check where no level was fully collapsed."""

    def __init__(
        self,
        data: Any,
        y: Any = None,
        *,
        model: Any = None,
        every: int = 1,
        restore_healthy: bool = False,
        **options: Any,
    ) -> None:
        super().__init__()
        if restore_healthy and options.get("stop_when") is None:
            raise InputError("restore_healthy acts when the run is stopped: give stop_when too.")
        self.data, self.y, self.model, self.every, self.options = data, y, model, every, options
        self.restore_healthy = restore_healthy
        self.monitor: CollapseMonitor | None = None
        self.events: list[str] = []
        self.healthy: dict | None = None  # the weights at the last healthy check
        self.healthy_epoch: int | None = None
        self.stopped_epoch: int | None = None

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
            unit, values = ("channel", level["kl_per_channel"]) if "kl_per_channel" in level else (
                "dim", level["kl_per_dim"])  # fmt: skip
            for j, kl in enumerate(values):
                metrics[f"collapse/kl/{name}/{unit}_{j}"] = kl
            metrics[f"collapse/active_units/{name}"] = float(level["active_units"])
            metrics[f"collapse/collapsed/{name}"] = float(len(level["collapsed"]))
            if level["mutual_information"] is not None:
                metrics[f"collapse/mutual_information/{name}"] = level["mutual_information"]
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=epoch)
        fully = any(run > 0 for run in self.monitor.collapsed_run.values())
        if self.restore_healthy and not fully:
            self.healthy = {k: v.detach().cpu().clone() for k, v in pl_module.state_dict().items()}
            self.healthy_epoch = epoch
        if self.monitor.should_stop:
            trainer.should_stop = True
            self.stopped_epoch = epoch
            LOGGER.info(f"stopping: {self.monitor.stop_reason}")
            if self.restore_healthy and self.healthy is not None:
                pl_module.load_state_dict(self.healthy)
                LOGGER.info(f"restored the weights of epoch {self.healthy_epoch}")
