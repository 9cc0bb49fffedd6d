"""The live camera window on a virtual screen (Xvfb): it opens, draws, and `q` ends the session.
Skips where Xvfb or xdotool is not installed (.ci/run installs both)."""

import os
import shutil
import subprocess
import sys
import time

import pytest

from tests import fixtures

pytestmark = pytest.mark.skipif(not (shutil.which("Xvfb") and shutil.which("xdotool")),
                                reason="needs Xvfb and xdotool")


@pytest.fixture(scope="module")
def display():
    for n in range(90, 110):
        if not os.path.exists(f"/tmp/.X11-unix/X{n}") and not os.path.exists(f"/tmp/.X{n}-lock"):
            break
    proc = subprocess.Popen(["Xvfb", f":{n}", "-screen", "0", "1024x768x24"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(50):
        if os.path.exists(f"/tmp/.X11-unix/X{n}"):
            break
        time.sleep(0.1)
    yield f":{n}"
    proc.terminate()
    proc.wait(10)


def test_q_closes_the_camera_window(display, fer_model, tmp_path):
    video = fixtures.video_with_faces(tmp_path / "cam.mp4", frames=600)
    env = {**os.environ, "DISPLAY": display}
    proc = subprocess.Popen([sys.executable, "-m", "pipeline.cli", "--camera", str(video),
                             "--detector", "haar", "--fer-model", str(fer_model)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=fixtures.astronaut_path().parents[1])
    try:
        window = ""
        for _ in range(300):
            window = subprocess.run(["xdotool", "search", "--name", "fer-detect"], env=env,
                                    capture_output=True, text=True).stdout.split()
            if window or proc.poll() is not None:
                break
            time.sleep(0.1)
        assert window, "no fer-detect window appeared"
        time.sleep(1.0)
        subprocess.run(["xdotool", "windowfocus", "--sync", window[0], "key", "q"], env=env,
                       capture_output=True, timeout=20)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    frames = int(out.split(" frames")[0].rsplit(" ", 1)[-1])
    assert 0 < frames < 600  # q ended the session before the source ran out
    assert "id,first_frame,last_frame" in err  # the session summary
