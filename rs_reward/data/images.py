"""Opening images, one place for every stage: paths confined to a root, bytes, HF Image dicts or PIL images,
decoded lazily, converted to 8-bit RGB (`to_rgb`: 16-bit, 32-bit and float grayscale scaled, not saturated;
TIFFs of 4 or more 8-bit bands read as their first three, multi-band TIFFs of more bits refused with what to do),
guarded against decompression bombs, with errors that name the problem."""

from __future__ import annotations

import io
import os
import warnings

from PIL import Image, UnidentifiedImageError

from .io import RowError, confine_path


# Largest image accepted, in pixels (Pillow's own guard warns at 89 M and raises at twice that).
MAX_IMAGE_PIXELS = 64 * 1024 * 1024
TIFF_MAGIC = (b"II*\x00", b"MM\x00*")
CONVERT_HINT = "write its RGB bands to an 8-bit RGB file first (e.g. gdal_translate -b 1 -b 2 -b 3 -ot Byte -scale)"


def _check_tiff_bands(image: Image.Image, name: str) -> None:
    """Pillow opens a multi-band TIFF of more than 8 bits a sample as 8-bit RGB with wrong values (the 16-bit RGBN
    GeoTIFFs of many RS sources come out black): refuse those. 8-bit TIFFs of 4 or more bands read as their first
    three bands, which is kept."""
    if image.format != "TIFF":
        return
    samples = int(image.tag_v2.get(277, 1))
    bits = image.tag_v2.get(258, (8,))
    bits = max(bits) if isinstance(bits, tuple) else int(bits)
    if samples > 1 and bits > 8:
        raise RowError(f"image {name!r} is a {samples}-band {bits}-bit TIFF, which Pillow misreads; {CONVERT_HINT}")


def to_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB of any mode Pillow opens, with the values a viewer would show.

    - `I;16*` (16-bit grayscale, e.g. 16-bit PNG or GeoTIFF): value / 257, so 0..65535 maps onto 0..255;
    - `I` (32-bit integers): the same when every value is in 0..65535 (16-bit data read as `I`), otherwise stretched
      linearly from the image's minimum to its maximum;
    - `F` (32-bit float): value x 255 when every value is in 0..1, otherwise stretched from minimum to maximum
      (NaN and infinities become 0);
    - every other mode by Pillow (`P` / `PA` through the palette, `L`, `1`, `CMYK`, `YCbCr`, `LAB`); an alpha
      channel (`LA`, `PA`, `RGBA`) is dropped, not composited.
    """
    import numpy as np

    mode = image.mode
    if mode == "RGB":
        return image
    if not (mode.startswith("I") or mode == "F"):
        return image.convert("RGB")
    values = np.asarray(image).astype(np.float64)
    finite = np.isfinite(values)
    values = np.where(finite, values, 0.0)
    low, high = (float(values[finite].min()), float(values[finite].max())) if finite.any() else (0.0, 0.0)
    if mode.startswith("I;16") or (mode == "I" and low >= 0 and high <= 65535):
        scaled = values / 257.0
    elif mode == "F" and low >= 0 and high <= 1:
        scaled = values * 255.0
    else:
        scaled = (values - low) * (255.0 / (high - low)) if high > low else np.zeros_like(values)
    gray = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    return Image.fromarray(np.repeat(gray[..., None], 3, axis=2), "RGB")


def _head(stream) -> bytes:
    if isinstance(stream, io.BytesIO):
        return stream.getvalue()[:4]
    with open(stream, "rb") as f:
        return f.read(4)


def rgb_images(batch: dict) -> dict:
    """A `datasets` transform (`Dataset.with_transform`): every decoded image of the `images` column to 8-bit RGB
    by `to_rgb`, so that rows handed straight to TRL (SFT, GRPO) reach the processor as the scorer sees them
    (the stock processors' `convert("RGB")` saturates 16-bit images to white)."""
    if "images" in batch:
        batch["images"] = [[to_rgb(image) for image in row] if row else row for row in batch["images"]]
    return batch


def open_image(source, root: str | os.PathLike | None = None, verify: bool = False) -> Image.Image:
    """An RGB PIL image from a path (relative to `root` when one is given), bytes, `{"bytes", "path"}` or PIL.

    Raises `RowError` with the reason for a missing, empty, truncated, non-image or too large file.
    `verify=True` only checks the file (header and size) and returns the unloaded image.
    """
    if isinstance(source, Image.Image):
        return to_rgb(source)
    if isinstance(source, dict):
        if source.get("bytes"):
            source = source["bytes"]
        elif source.get("path"):
            source = source["path"]
        else:
            raise RowError("image dict has neither bytes nor path")
    if isinstance(source, (bytes, bytearray)):
        if not source:
            raise RowError("image bytes are empty")
        stream, name = io.BytesIO(source), "<bytes>"
    elif isinstance(source, (str, os.PathLike)):
        path = confine_path(root, str(source)) if root is not None else source
        name = str(source)
        if not os.path.isfile(path):
            raise RowError(f"missing image file {name!r}")
        if os.path.getsize(path) == 0:
            raise RowError(f"empty image file {name!r}")
        stream = path
    else:
        raise RowError(f"unsupported image value of type {type(source).__name__}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(stream)
            if image.width * image.height > MAX_IMAGE_PIXELS:
                raise RowError(f"image {name!r} is too large ({image.width}x{image.height} pixels)")
            _check_tiff_bands(image, name)
            if verify:
                image.verify()
                return image
            image.load()
    except RowError:
        raise
    except UnidentifiedImageError:
        if _head(stream) in TIFF_MAGIC:
            raise RowError(
                f"unreadable image {name!r}: a TIFF of more bands or bits than Pillow decodes; {CONVERT_HINT}"
            ) from None
        raise RowError(f"unreadable image {name!r}: UnidentifiedImageError") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise RowError(f"unreadable image {name!r}: {type(error).__name__}") from None
    except (OSError, SyntaxError, ValueError) as error:  # truncated or corrupt data
        raise RowError(f"corrupt image {name!r}: {error}") from None
    return to_rgb(image)
