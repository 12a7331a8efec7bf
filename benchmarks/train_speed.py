"""Training speed, side by side in one run: `vaecollapse train` against a minimal hand-written
PyTorch loop over the same in-memory tensors and against pythae's training pipeline, for the same
architecture, data, batch size and epochs (each evaluates the test split once per epoch).

    VAECOLLAPSE_DATA=../shared/data python benchmarks/train_speed.py [--repeats 3]

Every measurement is a whole process (interpreter start, imports, data loading, training, saving)
timed from outside, with its peak resident memory (ru_maxrss). Repeats are interleaved so that the
three contenders see the same machine state; the median is reported. Cases:

* ``mnist-mlp`` — the paper's ReLU-MLP VAE on MNIST, 784-256-16, batch 128, 3 epochs: arithmetic
  dominates on a CPU.
* ``digits-small`` — a 64-32-4 MLP VAE on the embedded digits, batch 32, 20 epochs: per-step
  overhead dominates.

pythae (`pip install pythae`) is optional; without it its column is skipped.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASES = {
    "mnist-mlp": {"dataset": "mnist", "hidden": 256, "latent": 16, "batch": 128, "epochs": 3},
    "digits-small": {"dataset": "digits", "hidden": 32, "latent": 4, "batch": 32, "epochs": 20},
}
LR = 1e-3


def run_process(command: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one child process."""
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    errors = child.stderr.read().decode()
    child.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{errors[-2000:]}")
    return wall, usage.ru_maxrss / 1024


def ours_command(case: dict, out: Path) -> list[str]:
    return [
        sys.executable, "-m", "vaecollapse", "train", "--dataset", case["dataset"],
        "--backbone", "mlp", "--hidden", str(case["hidden"]), "--latent-dim", str(case["latent"]),
        "--batch-size", str(case["batch"]), "--epochs", str(case["epochs"]), "--lr", str(LR),
        "--device", "cpu", "--out", str(out),
    ]  # fmt: skip


def worker_command(kind: str, case_name: str, out: Path) -> list[str]:
    return [sys.executable, __file__, "--worker", kind, "--case", case_name, "--out", str(out)]


def hand_loop(case: dict) -> None:
    """What a researcher would write: the same tensors, Adam, a permutation per epoch."""
    import torch
    from torch import nn

    from vaecollapse.core.data import load_dataset

    data = load_dataset(case["dataset"])
    x_train, x_test = data.train.x, data.test.x
    dim, hidden, latent = x_train.shape[1], case["hidden"], case["latent"]
    torch.manual_seed(0)
    encoder = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, 2 * latent))
    decoder = nn.Sequential(nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, dim))
    parameters = [*encoder.parameters(), *decoder.parameters()]
    optimizer = torch.optim.Adam(parameters, lr=LR)

    def loss_of(x: torch.Tensor) -> torch.Tensor:
        mean, logvar = encoder(x).chunk(2, dim=1)
        z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
        recon = 0.5 * ((x - decoder(z)) ** 2).sum(1)
        kl = 0.5 * (mean**2 + logvar.exp() - 1 - logvar).sum(1)
        return (recon + kl).mean()

    for _ in range(case["epochs"]):
        for index in torch.randperm(len(x_train)).split(case["batch"]):
            loss = loss_of(x_train[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            sum(float(loss_of(b)) * len(b) for b in x_test.split(1024)) / len(x_test)


def pythae_pipeline(case: dict, out: Path) -> None:
    import logging

    import torch
    from pythae.models import VAE, VAEConfig
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder
    from pythae.pipelines import TrainingPipeline
    from pythae.trainers import BaseTrainerConfig
    from torch import nn

    from vaecollapse.core.data import load_dataset

    logging.disable(logging.INFO)
    data = load_dataset(case["dataset"])
    x_train, x_test = data.train.x, data.test.x
    dim, hidden, latent = x_train.shape[1], case["hidden"], case["latent"]

    class Encoder(BaseEncoder):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU())
            self.mean, self.logvar = nn.Linear(hidden, latent), nn.Linear(hidden, latent)

        def forward(self, x: torch.Tensor) -> ModelOutput:
            h = self.body(x.reshape(len(x), -1))
            return ModelOutput(embedding=self.mean(h), log_covariance=self.logvar(h))

    class Decoder(BaseDecoder):
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Sequential(nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, dim))

        def forward(self, z: torch.Tensor) -> ModelOutput:
            return ModelOutput(reconstruction=self.net(z))

    config = VAEConfig(input_dim=(dim,), latent_dim=latent, reconstruction_loss="mse")
    model = VAE(config, encoder=Encoder(), decoder=Decoder())
    trainer = BaseTrainerConfig(
        output_dir=str(out),
        num_epochs=case["epochs"],
        learning_rate=LR,
        per_device_train_batch_size=case["batch"],
        per_device_eval_batch_size=1024,
        no_cuda=True,
    )
    TrainingPipeline(model=model, training_config=trainer)(
        train_data=x_train.numpy(), eval_data=x_test.numpy()
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--json", help="Also write the results here.")
    parser.add_argument("--worker", choices=["hand", "pythae"], help=argparse.SUPPRESS)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker == "hand":
        return hand_loop(CASES[args.case])
    if args.worker == "pythae":
        return pythae_pipeline(CASES[args.case], Path(args.out))

    contenders = ["vaecollapse", "hand loop"]
    if importlib.util.find_spec("pythae") is not None:
        contenders.append("pythae")
    else:
        print("pythae is not installed: its column is skipped (pip install pythae).")
    results: dict = {}
    for case_name in args.cases.split(","):
        case = CASES[case_name]
        samples: dict[str, list[tuple[float, float]]] = {c: [] for c in contenders}
        for repeat in range(args.repeats):
            for contender in contenders:
                with tempfile.TemporaryDirectory() as scratch:
                    out = Path(scratch) / "run"
                    if contender == "vaecollapse":
                        command = ours_command(case, out)
                    else:
                        kind = "hand" if contender == "hand loop" else "pythae"
                        command = worker_command(kind, case_name, out)
                    samples[contender].append(run_process(command))
                wall, peak = samples[contender][-1]
                print(f"{case_name} #{repeat + 1} {contender}: {wall:.2f} s, {peak:.0f} MiB")
        results[case_name] = {
            c: {
                "seconds": statistics.median(w for w, _ in runs),
                "peak_mib": max(m for _, m in runs),
            }
            for c, runs in samples.items()
        }
    print()
    print("| case | contender | wall s (median) | peak MiB | vaecollapse speed-up |")
    print("|---|---|---|---|---|")
    for case_name, row in results.items():
        ours = row["vaecollapse"]["seconds"]
        for contender, value in row.items():
            ratio = value["seconds"] / ours
            print(
                f"| {case_name} | {contender} | {value['seconds']:.2f} | {value['peak_mib']:.0f} "
                f"| {ratio:.2f}x |"
            )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
