"""Opening images, one place for every stage: paths confined to a root, bytes, HF Image dicts or PIL images,
decoded lazily, converted to RGB, guarded against decompression bombs, with errors that name the problem."""

from __future__ import annotations

import io
import os
import warnings

from PIL import Image, UnidentifiedImageError

from .io import RowError, confine_path


# Largest image accepted, in pixels (Pillow's own guard warns at 89 M and raises at twice that).
MAX_IMAGE_PIXELS = 64 * 1024 * 1024


def open_image(source, root: str | os.PathLike | None = None, verify: bool = False) -> Image.Image:
    """An RGB PIL image from a path (relative to `root` when one is given), bytes, `{"bytes", "path"}` or PIL.

    Raises `RowError` with the reason for a missing, empty, truncated, non-image or too large file.
    `verify=True` only checks the file (header and size) and returns the unloaded image.
    """
    if isinstance(source, Image.Image):
        return source.convert("RGB") if source.mode != "RGB" else source
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
            if verify:
                image.verify()
                return image
            image.load()
    except RowError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise RowError(f"unreadable image {name!r}: {type(error).__name__}") from None
    except (OSError, SyntaxError, ValueError) as error:  # truncated or corrupt data
        raise RowError(f"corrupt image {name!r}: {error}") from None
    return image.convert("RGB") if image.mode != "RGB" else image
