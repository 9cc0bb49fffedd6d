"""fd-train --device 0,1 (issue 11): ultralytics runs DDP over the GPUs a device list names, so
the list must reach it unchanged. No GPU is needed: the YOLO training call is replaced and its
arguments checked."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

import fd.train
from fd.cli import train_cmd


class Stopped(Exception):
    """Raised by the stand-in trainer once it has the arguments."""


@pytest.mark.parametrize("device", ["0,1", "0,1,2,3", "cpu"])
def test_the_device_list_reaches_ultralytics_unchanged(tmp_path, monkeypatch, device):
    seen = {}

    class FakeYolo:
        def __init__(self, source, task=None):
            seen["source"] = source

        def train(self, **args):
            seen.update(args)
            raise Stopped

    monkeypatch.setattr(fd.train, "offline_ultralytics", lambda: type("U", (), {"YOLO": FakeYolo}))
    (tmp_path / "data.yaml").write_text("path: .\ntrain: images/train\nval: images/val\n")
    (tmp_path / "w.pt").write_bytes(b"weights")
    result = CliRunner().invoke(train_cmd, ["--data", str(tmp_path / "data.yaml"), "--out",
                                            str(tmp_path / "run"), "--weights", str(tmp_path / "w.pt"),
                                            "--device", device, "--epochs", "1"])
    assert isinstance(result.exception, Stopped), result.output
    assert seen["device"] == device and seen["source"] == str(tmp_path / "w.pt")
    assert seen["epochs"] == 1
