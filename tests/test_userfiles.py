"""User .npy / .npz files: what loads, and every bad input giving a clear error (CLI exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vaecollapse.core.data import load_dataset
from vaecollapse.core.errors import InputError


def test_npy_and_npz_load(tmp_path: Path) -> None:
    x = np.random.default_rng(0).random((20, 16))
    np.save(tmp_path / "x.npy", x)
    flat = load_dataset(tmp_path / "x.npy")
    assert flat.train.x.shape == (20, 16) and flat.test is None and flat.image_shape == (1, 4, 4)
    assert np.allclose(flat.train.x.numpy(), x, atol=1e-7)
    quadrants = load_dataset(tmp_path / "x.npy", view="quadrant")
    assert quadrants.x_dim == 4 and quadrants.y_dim == 12
    y = np.ones((20, 3))
    np.savez(tmp_path / "xy.npz", x=x, y=y, labels=np.arange(20), x_test=x[:5], y_test=y[:5])
    paired = load_dataset(tmp_path / "xy.npz")
    assert paired.y_dim == 3 and len(paired.test) == 5 and paired.train.labels[-1] == 19


def test_cli_info_on_user_file(tmp_path: Path, run_cli) -> None:
    np.savez(tmp_path / "d.npz", x=np.zeros((7, 5)), y=np.ones((7, 2)))
    result = run_cli("data", "info", str(tmp_path / "d.npz"), "--json")
    assert result.code == 0, result.err
    info = json.loads(result.out)
    assert info["x_dim"] == 5 and info["y_dim"] == 2 and info["splits"]["train"]["n"] == 7
    assert info["source"]["kind"] == "user-file"


BAD_INPUTS = {
    "nan": (lambda p: np.save(p / "a.npy", np.array([[1.0, np.nan]])), "a.npy", "NaN"),
    "inf": (lambda p: np.save(p / "a.npy", np.array([[np.inf, 1.0]])), "a.npy", "infinite"),
    "rank1": (lambda p: np.save(p / "a.npy", np.zeros(5)), "a.npy", "2-D array"),
    "rank3": (lambda p: np.save(p / "a.npy", np.zeros((2, 3, 3))), "a.npy", "reshape"),
    "strings": (lambda p: np.save(p / "a.npy", np.array([["a", "b"]])), "a.npy", "real numbers"),
    "objects": (
        lambda p: np.save(p / "a.npy", np.array([[{}, 1]], dtype=object)),
        "a.npy",
        "could not be read",
    ),
    "empty": (lambda p: np.save(p / "a.npy", np.zeros((0, 4))), "a.npy", "empty"),
    "mismatch": (
        lambda p: np.savez(p / "a.npz", x=np.zeros((4, 2)), y=np.zeros((3, 2))),
        "a.npz",
        "4 rows",
    ),
    "unknown_key": (lambda p: np.savez(p / "a.npz", x=np.zeros((4, 2)), z=1), "a.npz", "'z'"),
    "no_x": (lambda p: np.savez(p / "a.npz", y=np.zeros((4, 2))), "a.npz", "no array named 'x'"),
    "labels_float": (
        lambda p: np.savez(p / "a.npz", x=np.zeros((2, 2)), labels=np.zeros(2)),
        "a.npz",
        "integer",
    ),
    "test_width": (
        lambda p: np.savez(p / "a.npz", x=np.zeros((2, 2)), x_test=np.zeros((2, 3))),
        "a.npz",
        "width",
    ),
    "garbage": (
        lambda p: (p / "a.npz").write_bytes(b"PK\x03\x04junk"),
        "a.npz",
        "could not be read",
    ),
    "missing": (lambda p: None, "nothing.npy", "no such file"),
    "odd_quadrant": (lambda p: np.save(p / "a.npy", np.zeros((3, 49))), "a.npy", "7x7"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_a_clear_error(tmp_path: Path, case: str, run_cli) -> None:
    write, name, fragment = BAD_INPUTS[case]
    write(tmp_path)
    view = "quadrant" if case == "odd_quadrant" else None
    with pytest.raises(InputError, match=fragment):
        load_dataset(tmp_path / name, view=view)
    args = ["data", "info", str(tmp_path / name)] + (["--view", "quadrant"] if view else [])
    result = run_cli(*args)
    assert result.code == 2 and result.out == ""
    assert fragment in " ".join(result.err.split()) and "Traceback" not in result.err
