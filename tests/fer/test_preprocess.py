import numpy as np
import pytest

from fer.preprocess import ImageError, crop_square, decode_image, square_box, to_model_input
from tests.fixtures import face_like, write_image


def test_square_box_is_centred_and_grown():
    assert square_box((10, 20, 40, 20)) == (10, 10, 40)
    x, y, side = square_box((10, 20, 40, 20), margin=0.25)
    assert side == 60 and (x + side / 2, y + side / 2) == (30, 30)


def test_crop_outside_the_image_is_padded_by_replication():
    image = np.arange(100, dtype=np.uint8).reshape(10, 10)
    crop = crop_square(image, (-2, -2, 6, 6))
    assert crop.shape == (6, 6)
    assert crop[0, 0] == image[0, 0] and crop[2, 2] == image[0, 0] and crop[5, 5] == image[3, 3]


def test_box_fully_outside_is_an_image_error():
    with pytest.raises(ImageError, match="box outside image"):
        crop_square(np.zeros((10, 10), np.uint8), (50, 50, 5, 5))


@pytest.mark.parametrize("shape,dtype", [((60, 50), np.uint8), ((60, 50, 3), np.uint8),
                                         ((60, 50, 4), np.uint8), ((60, 50), np.uint16),
                                         ((60, 50, 1), np.uint8)])
def test_model_input_from_any_layout(shape, dtype):
    image = (np.random.default_rng(0).random(shape) * np.iinfo(dtype).max).astype(dtype)
    for channels in (1, 3):
        out = to_model_input(image, (48, 48), channels)
        assert out.shape == (48, 48, channels) and out.dtype == np.uint8
    assert to_model_input(image, (48, 48), 1).max() > 100  # 16-bit scaled, not clipped to 0/255


def test_rgb_order_for_colour_models():
    bgr = np.zeros((4, 4, 3), np.uint8)
    bgr[..., 0] = 255  # blue in OpenCV order
    assert to_model_input(bgr, (4, 4), 3)[0, 0].tolist() == [0, 0, 255]


def test_decode_errors(tmp_path):
    with pytest.raises(ImageError, match="missing image"):
        decode_image(tmp_path / "none.png")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageError, match="empty image file"):
        decode_image(tmp_path / "empty.png")
    (tmp_path / "junk.jpg").write_bytes(b"\xff\xd8garbage")
    with pytest.raises(ImageError, match="unreadable image"):
        decode_image(tmp_path / "junk.jpg")
    path = write_image(tmp_path / "ok.png", face_like(1))
    assert decode_image(path, gray=True).shape == (48, 48)
