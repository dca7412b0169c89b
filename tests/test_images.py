"""Every image mode Pillow opens becomes the 8-bit RGB a viewer would show (pixel by pixel), through a file too."""

import numpy as np
import pytest
from PIL import Image

from rs_reward.data.images import open_image, to_rgb


def _gray(image) -> np.ndarray:
    rgb = np.asarray(to_rgb(image))
    assert rgb.dtype == np.uint8 and rgb.shape[2] == 3
    assert (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()
    return rgb[..., 0]


def test_16_bit_grayscale_is_scaled_not_saturated(tmp_path):
    values = np.array([[0, 257, 1000, 32768, 65535]], dtype=np.uint16)
    expected = np.array([[0, 1, 4, 128, 255]], dtype=np.uint8)  # round(v / 257)
    image = Image.fromarray(values)
    assert image.mode == "I;16"
    assert (_gray(image) == expected).all()
    for suffix in (".png", ".tif"):  # and the same after a round trip through the formats RS data comes in
        image.save(tmp_path / f"x{suffix}")
        assert (np.asarray(open_image(f"x{suffix}", tmp_path))[..., 0] == expected).all()
    big_endian = Image.frombytes("I;16B", (5, 1), values.astype(">u2").tobytes())
    assert (_gray(big_endian) == expected).all()


def test_32_bit_integer_and_float_grayscale():
    as_16_bit = Image.fromarray(np.array([[0, 514, 65535]], dtype=np.int32), "I")
    assert (_gray(as_16_bit) == [[0, 2, 255]]).all()
    wide = Image.fromarray(np.array([[-100, 0, 300]], dtype=np.int32), "I")  # outside 0..65535: min-max stretch
    assert (_gray(wide) == [[0, 64, 255]]).all()
    unit = Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32), "F")
    assert (_gray(unit) == [[0, 128, 255]]).all()
    reflectance = Image.fromarray(np.array([[10.0, 20.0, np.nan, 30.0]], dtype=np.float32), "F")
    assert (_gray(reflectance) == [[0, 128, 0, 255]]).all()
    flat = Image.fromarray(np.full((2, 2), 7.5, dtype=np.float32), "F")
    assert (_gray(flat) == 0).all()


@pytest.mark.parametrize(
    "mode, pixel, expected",
    [
        ("L", 77, (77, 77, 77)),
        ("1", 1, (255, 255, 255)),
        ("LA", (90, 0), (90, 90, 90)),  # alpha dropped, not composited
        ("RGBA", (10, 20, 30, 0), (10, 20, 30)),
        ("CMYK", (0, 255, 255, 0), (255, 0, 0)),
        ("YCbCr", (76, 85, 255), (254, 0, 0)),
    ],
)
def test_other_modes_by_pillow(mode, pixel, expected):
    image = Image.new(mode, (2, 2), pixel)
    rgb = to_rgb(image)
    assert rgb.mode == "RGB" and rgb.getpixel((1, 1)) == expected


def test_palette_images_go_through_their_palette():
    image = Image.new("P", (2, 1))
    image.putpalette([0, 0, 0, 200, 100, 50] + [0] * (256 * 3 - 6))
    image.putpixel((1, 0), 1)
    rgb = to_rgb(image)
    assert rgb.getpixel((0, 0)) == (0, 0, 0) and rgb.getpixel((1, 0)) == (200, 100, 50)
