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


def _multiband_tiff(path, bands: int, bits: int, width: int = 4, height: int = 3) -> np.ndarray:
    """An uncompressed chunky TIFF of `bands` samples of `bits` bits (what multispectral RS sources ship: RGBN,
    8-band), written by hand (no TIFF writer of Pillow makes these). Returns the pixel values."""
    import struct

    values = (np.arange(width * height * bands) % 200).astype(np.uint8 if bits == 8 else np.uint16)
    values = values.reshape(height, width, bands)
    data = values.tobytes()
    extra = bands - 3
    entries = [  # tag, type (3 short, 4 long), count, value or offset
        (256, 3, 1, width),
        (257, 3, 1, height),
        (258, 3, bands, None),  # bits per sample: an array after the directory
        (259, 3, 1, 1),
        (262, 3, 1, 2),
        (273, 4, 1, 8),
        (277, 3, 1, bands),
        (278, 3, 1, height),
        (279, 4, 1, len(data)),
        (284, 3, 1, 1),
        (338, 3, extra, None if extra > 2 else 0),  # extra samples (unspecified)
    ]
    directory = 8 + len(data)
    arrays = directory + 2 + 12 * len(entries) + 4
    packed, tail = [], b""
    for tag, kind, count, value in entries:
        if value is None:
            value, tail = (
                arrays + len(tail),
                tail + struct.pack(f"<{count}H", *([bits] * count if tag == 258 else [0] * count)),
            )
        packed.append(
            struct.pack("<HHII", tag, kind, count, value)
            if kind == 4
            else struct.pack("<HHIHH", tag, kind, count, value, 0)
        )
    path.write_bytes(
        b"II*\x00"
        + struct.pack("<I", directory)
        + data
        + struct.pack("<H", len(entries))
        + b"".join(packed)
        + b"\0" * 4
        + tail
    )
    return values


def test_multiband_tiffs_first_three_bands_or_a_reject_that_says_what_to_do(tmp_path):
    from rs_reward.data.io import RowError

    for bands in (4, 5):  # 8-bit: the first three bands, exactly
        values = _multiband_tiff(tmp_path / f"b{bands}.tif", bands, 8)
        assert (np.asarray(open_image(f"b{bands}.tif", tmp_path)) == values[..., :3]).all()
    _multiband_tiff(tmp_path / "rgbn16.tif", 4, 16)  # Pillow would read it as black 8-bit RGB
    with pytest.raises(
        RowError, match="4-band 16-bit TIFF, which Pillow misreads; write its RGB bands .*gdal_translate"
    ):
        open_image("rgbn16.tif", tmp_path, verify=True)
    _multiband_tiff(tmp_path / "b8.tif", 8, 8)
    with pytest.raises(RowError, match="a TIFF of more bands or bits than Pillow decodes; write its RGB bands"):
        open_image("b8.tif", tmp_path)


def test_sft_and_rl_rows_reach_the_trainer_as_8_bit_rgb(tmp_path):
    """TRL hands the SFT and GRPO rows' images to the processor as `datasets` decodes them: the loaders convert."""
    import json

    from rs_reward.data.rl import load_rl_prompts
    from rs_reward.data.sft import load_sft_rows

    Image.fromarray(np.array([[0, 32768, 65535]], dtype=np.uint16)).save(tmp_path / "x16.png")
    messages = [{"role": "user", "content": "What is here?"}, {"role": "assistant", "content": "water"}]
    (tmp_path / "sft.jsonl").write_text(json.dumps({"id": "a", "images": ["x16.png"], "messages": messages}))
    prompt = {"id": "b", "images": ["x16.png"], "prompt": "What is here?", "solution": "water", "reward_type": "em"}
    (tmp_path / "rl.jsonl").write_text(json.dumps(prompt))
    for rows in (load_sft_rows(str(tmp_path / "sft.jsonl")), load_rl_prompts(str(tmp_path / "rl.jsonl"))):
        image = rows[0]["images"][0]
        assert image.mode == "RGB" and (np.asarray(image)[0, :, 0] == [0, 128, 255]).all()
        assert next(iter(rows.shuffle(seed=0)))["images"][0].mode == "RGB"
