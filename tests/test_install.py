"""What the install must guarantee on this kind of machine (see Makefile and README)."""

import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.parametrize("order", [("tensorflow", "torchvision"), ("torchvision", "tensorflow")])
def test_tensorflow_and_torchvision_import_in_either_order(order):
    """With triton installed, tensorflow before torchvision segfaults (exit 139)."""
    code = f"import {order[0]}; import {order[1]}; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr[-2000:]


def test_opencv_has_the_haar_cascade_and_a_gui():
    import cv2

    assert int(cv2.__version__.split(".")[0]) == 4  # OpenCV 5 moved CascadeClassifier out
    assert not cv2.CascadeClassifier(cv2.data.haarcascades +
                                     "haarcascade_frontalface_default.xml").empty()
    gui = [line for line in cv2.getBuildInformation().splitlines() if line.strip().startswith("GUI:")]
    assert gui and "NONE" not in gui[0].upper(), gui  # the GUI build won over the headless one


def test_console_scripts_are_installed():
    from importlib.metadata import entry_points

    ours = {ep.name: ep.value for ep in entry_points(group="console_scripts")
            if ep.value.split(".")[0] in ("fd", "fer", "pipeline")}
    assert set(ours) == {"fd-prep", "fd-train", "fd-eval", "fd-quantize", "fer-prep", "fer-train",
                         "fer-eval", "fer-detect", "fer-serve"}
    assert ours["fer-serve"] == "pipeline.serve.cli:main"


# --- the core install (issue 12): what `make demo` builds, ONNX Runtime + OpenCV, no extras ------

#: Modules of the extras that the inference path must never even try to import.
EXTRAS_ONLY = {"tensorflow", "torch", "torchvision", "keras", "ultralytics", "albumentations",
               "sklearn", "onnx", "tf2onnx", "onnxslim", "fastapi", "uvicorn", "ray"}

CORE_ONLY = r"""
import importlib.abc, importlib.machinery, json, sys, sysconfig

allowed = set(json.loads(sys.argv[1]))
stdlib = tuple({sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib")})
blocked = []


def standard(top):
    if top in sys.stdlib_module_names or top in sys.builtin_module_names:
        return True
    spec = importlib.machinery.PathFinder.find_spec(top)  # _sysconfigdata_*, say
    return spec is not None and (spec.origin or "").startswith(stdlib) and \
        "site-packages" not in (spec.origin or "")


class CoreOnly(importlib.abc.MetaPathFinder):
    '''Every module outside the core distributions is missing, as in a core install.'''

    def find_spec(self, name, path=None, target=None):
        top = name.partition(".")[0]
        if top in allowed or standard(top):
            return None
        blocked.append(name)
        raise ModuleNotFoundError(f"No module named {name!r} (not in the core install)", name=name)


sys.meta_path.insert(0, CoreOnly())
import importlib
module, _, name = (sys.argv[3] if len(sys.argv) > 3 else "pipeline.cli:main").partition(":")
main = getattr(importlib.import_module(module), name)

codes = []
for args in json.loads(sys.argv[2]):
    try:
        main(args)
    except SystemExit as e:
        codes.append(e.code)
print("RESULT", json.dumps({"codes": codes, "blocked": sorted(set(blocked))}))
"""


def core_modules() -> set[str]:
    """Top-level modules of the distributions `pip install fer-detect` brings (no extras): the
    dependencies pyproject.toml declares and theirs, as installed here, plus the project's own."""
    import importlib.metadata as md

    tomllib = pytest.importorskip("tomllib")
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    from tests.conftest import ROOT

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    todo, dists = [Requirement(r) for r in declared], set()
    while todo:
        req = todo.pop()
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        name = canonicalize_name(req.name)
        if name in dists:
            continue
        dists.add(name)
        try:
            todo += [Requirement(r) for r in md.requires(req.name) or []]
        except md.PackageNotFoundError:
            pytest.fail(f"core dependency {req.name} is not installed in this environment")
    provided = md.packages_distributions()
    return {module for module, owners in provided.items()
            if any(canonicalize_name(d) in dists for d in owners)} | {"fd", "fer", "pipeline"}


def test_fer_detect_runs_on_the_core_install_alone(tmp_path):
    """fer-detect on a photo and a video (annotated copies, JSON, timeline PNG and CSV), with the
    YOLO ONNX detector and with Haar, while every module outside the core distributions is made
    unimportable: a new import on the inference path that needs an extra fails here, not on a
    user's `make demo`."""
    import json

    from tests import fixtures
    from tests.conftest import ROOT

    video = fixtures.video_with_faces(tmp_path / "clip.mp4", frames=4)
    photo = str(fixtures.astronaut_path())
    runs = [[photo, str(video), "--out", str(tmp_path / "yolo"), "--json", str(tmp_path / "a.jsonl")],
            [photo, "--detector", "haar", "--out", str(tmp_path / "haar")]]
    allowed = core_modules()
    assert not allowed & EXTRAS_ONLY, allowed & EXTRAS_ONLY  # an extra crept into the core list
    out = subprocess.run([sys.executable, "-c", CORE_ONLY, json.dumps(sorted(allowed)),
                          json.dumps(runs)], capture_output=True, text=True, cwd=ROOT, timeout=300)
    lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, out.stdout[-2000:] + out.stderr[-3000:]
    result = json.loads(lines[0].removeprefix("RESULT "))
    assert result["codes"] == [None, None] or result["codes"] == [0, 0], out.stderr[-3000:]
    assert not {b.partition(".")[0] for b in result["blocked"]} & EXTRAS_ONLY, result["blocked"]
    written = {p.name for p in tmp_path.rglob("*") if p.is_file()}  # --out mirrors the inputs' tree
    assert {"astronaut.png", "clip_fer.mp4", "clip_timeline.png", "clip_summary.csv"} <= written
    assert (tmp_path / "haar" / "astronaut.png").is_file()
    faces = json.loads((tmp_path / "a.jsonl").read_text().splitlines()[0])["faces"]
    assert [f["emotion"] for f in faces] == ["happy"]


def test_pt_and_keras_models_on_the_core_install_ask_for_the_extra():
    """`--fd-model x.pt` needs PyTorch and `--fer-model x.keras` Keras: on the core install, one
    line each naming the extra, not an import traceback or a 'bad model'."""
    import json

    from pipeline.models import packaged
    from tests import fixtures
    from tests.conftest import ROOT

    pt, keras = packaged("face_yolov8n.pt"), packaged("fer.keras")
    if pt is None or keras is None:
        pytest.skip("no .pt or .keras model in this checkout")
    photo = str(fixtures.astronaut_path())
    runs = [[photo, "--fd-model", str(pt)], [photo, "--fer-model", str(keras)]]
    out = subprocess.run([sys.executable, "-c", CORE_ONLY, json.dumps(sorted(core_modules())),
                          json.dumps(runs)], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert '"codes": [1, 1]' in out.stdout, out.stdout[-2000:] + out.stderr[-3000:]
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 2, lines
    for line, model in zip(lines, (pt, keras), strict=True):
        assert line.startswith(f"Error: {model} needs the Python package") and "fer-detect[train]" in line


def test_training_commands_on_the_core_install_ask_for_the_extra(tmp_path):
    """fer-eval (scikit-learn) on the core install: one line naming the package and the extra."""
    import json

    from fer.labels import LABELS
    from fer.metadata import make_metadata
    from tests import fixtures
    from tests.conftest import ROOT
    from tests.fer.test_calibrate import linear_onnx

    model = linear_onnx(tmp_path / "m.onnx", make_metadata(LABELS, 48, 1, tta_flip=False))
    data = fixtures.class_folders(tmp_path / "val", LABELS, per_class=1)
    runs = [["--model", str(model), "--data", str(data), "--cache-dir", str(tmp_path / "c")]]
    out = subprocess.run([sys.executable, "-c", CORE_ONLY, json.dumps(sorted(core_modules())),
                          json.dumps(runs), "fer.cli:eval_cmd"], capture_output=True, text=True,
                         cwd=ROOT, timeout=300)
    assert '"codes": [1]' in out.stdout, out.stdout[-2000:] + out.stderr[-3000:]
    assert "Traceback" not in out.stderr
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith("Error: ") and "needs the Python package 'sklearn'" in line
    assert "pip install 'fer-detect[train]'" in line


# --- the name `fer`: PyPI's package 'fer' has the same import name -------------------------------

def fake_pypi_fer(root: Path, merged: bool = False) -> Path:
    """A stand-in for PyPI's 'fer' under `root`: its own __init__ (which needs TensorFlow, as the
    real one does) and, with `merged`, this project's module names beside it plus the dist-info
    that says the files are PyPI's, as when pip installed both into one site-packages."""
    package = root / "fer"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("import tensorflow\nfrom .fer import FER\n")
    (package / "fer.py").write_text("class FER:\n    pass\n")
    if merged:
        for name in ("labels.py", "metadata.py", "predict.py", "preprocess.py"):
            (package / name).write_text("")
        info = root / "fer-22.5.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fer\nVersion: 22.5.1\n")
        (info / "RECORD").write_text("fer/__init__.py,,\nfer/fer.py,,\n")
    return root


def test_fer_detect_names_the_wrong_fer_package_instead_of_a_traceback(tmp_path):
    script = Path(sys.executable).with_name("fer-detect")
    if not script.exists():
        pytest.skip("the fer-detect console script is not installed beside this Python")
    from tests import fixtures

    fake = fake_pypi_fer(tmp_path / "other")
    env = {**__import__("os").environ, "PYTHONPATH": str(fake)}
    out = subprocess.run([str(script), str(fixtures.astronaut_path())], capture_output=True,
                         text=True, env=env, cwd=tmp_path, timeout=120)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "Traceback" not in out.stderr
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith("fer-detect: the Python package 'fer' found first, ")
    assert str(fake / "fer") in line and "separate virtual environments" in line

    api = subprocess.run([sys.executable, "-c", "import pipeline; pipeline.FacePipeline"],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert api.returncode == 1 and "ImportError: fer-detect: the Python package 'fer'" in api.stderr


def test_pypi_fer_files_over_this_projects_are_found(tmp_path):
    code = "from pipeline.fer_package import wrong_fer; print(wrong_fer())"
    env = {**__import__("os").environ, "PYTHONPATH": str(fake_pypi_fer(tmp_path / "site", True))}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         cwd=tmp_path, timeout=60)
    assert "PyPI's 'fer' 22.5.1 is installed in this environment" in out.stdout, out.stderr

    from pipeline.fer_package import wrong_fer

    assert wrong_fer() is None  # this checkout's own
