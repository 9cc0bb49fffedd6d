"""The models inside the package: found through package resources, used by default, offline."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.models import default_fer_model
from tests import fixtures
from tests.conftest import ROOT

BLOCK_NETWORK = (
    "import socket\n"
    "def refuse(*a, **k):\n    raise OSError('network disabled by the test')\n"
    "socket.socket.connect = refuse\nsocket.create_connection = refuse\n"
)


def test_a_fer_model_ships_with_the_package():
    path = default_fer_model()
    assert path is not None and path.parent.name == "models"
    assert path.stat().st_size < 15_000_000
    total = sum(p.stat().st_size for p in path.parent.iterdir() if p.is_file())
    assert total < 30_000_000  # both shipped models together stay under 30 MB


def test_fer_detect_on_the_example_photo_offline_with_only_shipped_files(tmp_path):
    code = BLOCK_NETWORK + (
        "import sys\nfrom pipeline.cli import main\n"
        "main(sys.argv[1:], standalone_mode=False)\n")
    out = subprocess.run(
        [sys.executable, "-c", code, str(fixtures.astronaut_path()), "--json", "-"],
        capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr
    (record,) = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    (face,) = record["faces"]
    assert face["emotion"] == "happy"  # the astronaut is smiling broadly
    assert face["probabilities"]["happy"] > 0.5


@pytest.mark.parametrize("name", ["fer.onnx", "fer.keras"])
def test_shipped_keras_and_onnx_agree(name):
    import numpy as np

    from fer.predict import load_classifier

    crops = np.stack([fixtures.face_like(i)[:, :, None] for i in range(8)])
    ref = load_classifier(default_fer_model()).predict(crops)
    got = load_classifier(default_fer_model().with_name(name)).predict(crops)
    assert np.abs(ref - got).max() < 1e-4


def test_the_wheel_carries_the_models(tmp_path):
    """A regular (non-editable) install gets the models: they are package data of the wheel."""
    import zipfile

    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path), str(ROOT)], check=True, capture_output=True,
                   timeout=300)
    (wheel,) = tmp_path.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"pipeline/models/fer.onnx", "pipeline/models/fer.keras",
            "pipeline/models/labels.json"} <= names


def test_fer_eval_reproduces_the_model_card_figure(tmp_path):
    """The shipped model's FER2013 PublicTest accuracy and calibration (the temperature stored in
    its labels.json, and the ECE before and after it), recomputed from the shipped ONNX file."""
    from click.testing import CliRunner

    from fer.cli import eval_cmd
    from tests.conftest import shared_path

    publictest = shared_path("fer2013", "publictest")
    meta = json.loads(default_fer_model().with_name("labels.json").read_text())
    report = tmp_path / "eval.json"
    result = CliRunner().invoke(eval_cmd, ["--model", str(default_fer_model()), "--data",
                                           str(publictest), "--json", str(report),
                                           "--cache-dir", str(tmp_path / "cache")])
    assert result.exit_code == 0, result.output
    measured = json.loads(report.read_text())
    assert measured["samples"] == meta["validation"]["faces"] == 3589
    assert abs(measured["accuracy"] - meta["validation"]["accuracy"]) <= 0.005
    card = (ROOT / "MODEL_CARD.md").read_text()
    assert f"{meta['validation']['accuracy'] * 100:.2f}%" in card  # the card states this figure
    stored, calibration = meta["calibration"], measured["calibration"]
    assert calibration["temperature"] == stored["temperature"] and stored["faces"] == 3589
    assert calibration["ece"] == pytest.approx(stored["ece_after"], abs=1e-3)
    assert calibration["ece_uncalibrated"] == pytest.approx(stored["ece_before"], abs=1e-3)
    assert calibration["ece"] <= 0.03  # issue 14's target
    for figure in (stored["ece_before"], stored["ece_after"], stored["temperature"]):
        assert f"{figure:.4f}" in card


def test_shipped_face_model_beats_haar_on_the_held_out_split(tmp_path):
    """fd-prep's held-out WIDER FACE images: the packaged detector against the Haar cascade."""
    from click.testing import CliRunner

    from fd.cli import eval_cmd, prep_cmd
    from pipeline.models import default_face_model
    from tests.conftest import shared_path

    face_model = default_face_model()
    if face_model is None:
        pytest.skip("no face model shipped yet")
    faces = tmp_path / "faces"
    assert CliRunner().invoke(prep_cmd, ["--widerface", str(shared_path("widerface")), "--out",
                                         str(faces), "--no-progress"]).exit_code == 0
    ap50 = {}
    for model in (str(face_model), "haar"):
        out = tmp_path / f"{Path(model).stem}.json"
        result = CliRunner().invoke(eval_cmd, ["--model", model, "--data", str(faces), "--json",
                                               str(out), "--no-progress"])
        assert result.exit_code == 0, result.output
        ap50[model] = json.loads(out.read_text())["AP50"]
    assert ap50[str(face_model)] > ap50["haar"] + 0.1
    # fd-eval reproduces the card's figure for the shipped detector on this split
    stated = re.search(r"earlier by-image split[^|]*\| 149 \| 850 \| \*\*(0\.\d{4})\*\*",
                       (ROOT / "MODEL_CARD.md").read_text())
    assert stated is not None
    assert abs(ap50[str(face_model)] - float(stated.group(1))) <= 0.005


HELD_OUT_FIGURES = ROOT / "docs" / "model_card" / "face_heldout.json"


@pytest.mark.slow
def test_fd_eval_reproduces_the_cards_held_out_event_figures(tmp_path):
    """The card's per-event and close-up figures, from the shipped file, on WIDER FACE val images of
    events no training image came from. Needs a WIDER FACE root with WIDER_val/images (not in
    ../shared): set FD_WIDER_ROOT, else skipped."""
    import os

    from click.testing import CliRunner

    from fd.cli import eval_cmd
    from pipeline.models import default_face_model

    root = Path(os.environ.get("FD_WIDER_ROOT", "/nonexistent"))
    if not (root / "WIDER_val" / "images").is_dir():
        pytest.skip("set FD_WIDER_ROOT to a WIDER FACE root with WIDER_val/images")
    card = json.loads(HELD_OUT_FIGURES.read_text())
    out = tmp_path / "eval.json"
    result = CliRunner().invoke(eval_cmd, ["--model", str(default_face_model()), "--data", str(root),
                                           "--events", ",".join(card["events"]), "--json", str(out),
                                           "--no-progress"])
    assert result.exit_code == 0, result.output
    got, stated = json.loads(out.read_text()), card["models"]["shipped"]
    assert got["images"] == stated["images"]
    assert abs(got["mean_event_AP50"] - stated["mean_event_AP50"]) <= 0.005
    assert abs(got["mean_event_AP50_small"] - stated["mean_event_AP50_small"]) <= 0.005
    for event, figures in stated["events"].items():
        assert abs(got["events"][event]["AP50"] - figures["AP50"]) <= 0.005, event
    assert abs(got["closeups"]["found_share"] - stated["closeups"]["found_share"]) <= 0.005
