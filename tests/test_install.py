"""What the install must guarantee on this kind of machine (see Makefile and README)."""

import subprocess
import sys

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

    names = {ep.name for ep in entry_points(group="console_scripts")}
    assert {"fd-prep", "fd-train", "fd-eval", "fer-train", "fer-eval", "fer-detect"} <= names
