"""fer-serve's page in a real browser: Debian's headless Chromium, driven by Selenium through
Debian's chromedriver (nothing downloaded), against uvicorn on a free loopback port.

Set FER_SERVE_SCREENSHOT=docs/fer_serve_page.png to keep the photo test's screenshot (README's).
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import cv2
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("multipart")
selenium = pytest.importorskip("selenium", reason="selenium is not installed (the serve extra)")

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from pipeline.config import PipelineConfig  # noqa: E402
from pipeline.run import FacePipeline  # noqa: E402
from pipeline.sources import read_image  # noqa: E402
from tests import fixtures  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                                reason="Chromium or chromedriver not installed (apt-get install "
                                       "chromium chromium-driver; .ci/run does)")
WAIT_S = 120  # two shared CPU cores: the first analyses are slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def pipe() -> FacePipeline:
    return FacePipeline.from_config(PipelineConfig())


@pytest.fixture(scope="module")
def server(pipe):
    """fer-serve's app on uvicorn in a thread; yields its base URL."""
    import uvicorn

    from pipeline.serve.app import create_app

    port = free_port()
    config = uvicorn.Config(create_app(pipe), host="127.0.0.1", port=port, log_level="warning")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not uv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    uv.should_exit = True
    thread.join(timeout=10)


def browser(*arguments: str) -> webdriver.Chrome:
    """Headless Chromium with the driver given by path, so Selenium Manager never runs."""
    os.environ["SE_OFFLINE"] = "true"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1040,700", "--hide-scrollbars", *arguments):
        options.add_argument(argument)
    try:
        return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    except Exception as e:  # a Chromium that cannot start here (no /dev/shm, say) is no page bug
        pytest.skip(f"Chromium would not start: {str(e).splitlines()[0][:200]}")


def expected_emotion(pipe: FacePipeline) -> str:
    (face,) = pipe.analyze_frame(read_image(str(fixtures.astronaut_path()))).faces
    return face.emotion


def test_upload_a_photo_and_read_its_emotion(server, pipe, tmp_path):
    driver = browser()
    try:
        driver.get(server + "/")
        wait = WebDriverWait(driver, WAIT_S)
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-state")
                   == "ready")
        assert "happy" in driver.find_element(By.ID, "models").text  # the labels, from /v1/models
        driver.find_element(By.ID, "file").send_keys(str(fixtures.astronaut_path()))
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-state")
                   in ("done", "error"))
        assert driver.find_element(By.TAG_NAME, "body").get_attribute("data-state") == "done", \
            driver.find_element(By.ID, "photo-status").text
        rows = driver.find_elements(By.CSS_SELECTOR, "#faces tbody tr")
        emotion = expected_emotion(pipe)
        assert [r.get_attribute("data-emotion") for r in rows] == [emotion]
        assert emotion in rows[0].text
        assert "1 face found" in driver.find_element(By.ID, "photo-status").text
        assert driver.find_element(By.ID, "photo").get_attribute("data-faces") == "1"
        shot = tmp_path / "page.png"
        driver.save_screenshot(str(shot))
    finally:
        driver.quit()
    image = cv2.imread(str(shot))
    assert image is not None and image.shape[1] >= 900
    keep = os.environ.get("FER_SERVE_SCREENSHOT")
    if keep:  # a 256-colour PNG: the page reads the same at a fraction of the size
        from PIL import Image

        Image.open(shot).convert("RGB").quantize(256).save(keep, optimize=True)


def write_y4m(path: Path, frames: int = 20) -> Path:
    """A YUV4MPEG2 clip of the astronaut photo: what Chromium's fake camera plays in a loop."""
    image = cv2.imread(str(fixtures.astronaut_path()))
    h, w = image.shape[:2]
    planes = cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420).tobytes()  # Y, then U and V at 1/4
    assert len(planes) == w * h * 3 // 2
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            f.write(b"FRAME\n" + planes)
    return path


def test_webcam_frames_get_boxes(server, tmp_path):
    clip = write_y4m(tmp_path / "astronaut.y4m")
    driver = browser("--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                     f"--use-file-for-fake-video-capture={clip}")
    try:
        driver.get(server + "/")
        wait = WebDriverWait(driver, WAIT_S)
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-state")
                   == "ready")
        driver.find_element(By.ID, "mode-camera").click()
        driver.find_element(By.ID, "camera-toggle").click()
        overlay = driver.find_element(By.ID, "overlay")
        wait.until(lambda d: int(overlay.get_attribute("data-frames")) >= 3)
        assert overlay.get_attribute("data-faces") == "1", driver.find_element(
            By.ID, "camera-status").text
        assert "frames a second" in driver.find_element(By.ID, "camera-status").text
        # the boxes are drawn on the overlay, not only counted
        drawn = driver.execute_script(
            "const c = document.getElementById('overlay');"
            "const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
            "let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n;")
        assert drawn > 500
        driver.find_element(By.ID, "camera-toggle").click()  # stops cleanly
        assert driver.find_element(By.ID, "camera-toggle").text == "Start the webcam"
    finally:
        driver.quit()
