"""Every kind of unusable input becomes one named InputError; odd but valid images decode right."""

import cv2
import numpy as np
import pytest
from PIL import Image

from pipeline.errors import InputError
from pipeline.sources import expand_inputs, open_camera, read_image, read_video
from tests import fixtures


def test_photo_decodes_to_bgr(tmp_path):
    frame = read_image(str(fixtures.astronaut_path()))
    assert frame.image.shape == (512, 512, 3) and frame.image.dtype == np.uint8
    assert frame.scale == 1.0 and frame.index is None


@pytest.mark.parametrize("content,match", [(b"", "empty file"),
                                           (b"hello, I am text", "not a readable image"),
                                           (None, "not a readable image")])
def test_bad_files(tmp_path, content, match):
    path = tmp_path / "bad.jpg"
    if content is None:  # a real JPEG cut short
        ok, buf = cv2.imencode(".jpg", fixtures.face_patch())
        content = buf.tobytes()[:200]
    path.write_bytes(content)
    with pytest.raises(InputError, match=match) as info:
        read_image(str(path))
    assert info.value.source == str(path)


def test_16bit_rgba_and_gray_images(tmp_path):
    deep = (np.random.default_rng(0).random((40, 50, 3)) * 65535).astype(np.uint16)
    rgba = np.dstack([fixtures.face_patch(), np.full(fixtures.face_patch().shape[:2], 128, np.uint8)])
    gray = cv2.cvtColor(fixtures.face_patch(), cv2.COLOR_BGR2GRAY)
    for name, image in (("deep.png", deep), ("rgba.png", rgba), ("gray.png", gray)):
        cv2.imwrite(str(tmp_path / name), image)
        frame = read_image(str(tmp_path / name))
        assert frame.image.ndim == 3 and frame.image.shape[2] == 3, name
        assert frame.image.dtype == np.uint8, name
    assert read_image(str(tmp_path / "deep.png")).image.max() > 200  # scaled, not truncated


def test_exif_orientation_is_honoured(tmp_path):
    image = np.zeros((100, 200, 3), np.uint8)
    image[:, :50] = 255  # white strip on the left
    pil = Image.fromarray(image)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    pil.save(tmp_path / "rotated.jpg", exif=exif.tobytes())
    frame = read_image(str(tmp_path / "rotated.jpg"))
    assert frame.image.shape[:2] == (200, 100)
    assert frame.image[:50].mean() > 200 and frame.image[-50:].mean() < 50  # strip now on top


def test_huge_photo_is_decoded_reduced(tmp_path):
    path = tmp_path / "huge.jpg"
    big = np.zeros((9000, 12000, 3), np.uint8)
    big[4000:5000, 6000:7000] = 255
    cv2.imwrite(str(path), big, [cv2.IMWRITE_JPEG_QUALITY, 50])
    del big
    frame = read_image(str(path))
    assert max(frame.image.shape) <= 4096
    assert frame.scale == pytest.approx(0.25)


def test_folders_are_expanded_recursively(tmp_path):
    fixtures.write_image(tmp_path / "a" / "x.png", fixtures.face_like(1))
    fixtures.write_image(tmp_path / "a" / "b" / "y.JPG", fixtures.face_like(2))
    (tmp_path / "a" / "notes.txt").write_text("not an image")
    fixtures.video_with_faces(tmp_path / "a" / "v.mp4", frames=2)
    kinds = sorted(expand_inputs([str(tmp_path / "a"), str(tmp_path / "missing.png")]))
    assert [k for k, _ in kinds] == ["error:not found", "image", "image", "video"]


def test_video_frames_and_bad_videos(tmp_path):
    path = fixtures.video_with_faces(tmp_path / "v.mp4", frames=5, fps=10)
    frames = list(read_video(str(path)))
    assert [f.index for f in frames] == [0, 1, 2, 3, 4]
    assert frames[2].time == pytest.approx(0.2)
    (tmp_path / "junk.mp4").write_bytes(b"\x00" * 1000)
    with pytest.raises(InputError, match="cannot open video"):
        list(read_video(str(tmp_path / "junk.mp4")))


def test_video_with_zero_frames(tmp_path):
    path = tmp_path / "empty.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    writer.release()
    with pytest.raises(InputError, match="(no frames|cannot open)"):
        list(read_video(str(path)))


def test_missing_camera_is_named():
    with pytest.raises(InputError, match="camera 97: cannot be opened"):
        next(open_camera("97"))


def test_fake_camera_through_the_camera_path(tmp_path):
    path = fixtures.video_with_faces(tmp_path / "cam.mp4", frames=3)
    frames = list(open_camera(str(path)))
    assert len(frames) == 3 and frames[0].source == f"camera {path}"
    assert frames[1].time >= frames[0].time
