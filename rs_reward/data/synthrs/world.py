"""SynthRS scenes: ground truth sampled from a prior, and a renderer that draws exactly that truth.

A scene is a land-cover background with 1-2 object groups. A group is `count` objects of one kind and one colour
whose centres lie in one cell of a 3x3 grid. Every object's axis-aligned box is measured on the pixels drawn
for it. Objects are placed independently of the land cover, on purpose: a text that pairs "ships" with "forest"
is then no less likely to be true than one that pairs them with "water", so only the image can tell.
"""

from __future__ import annotations

import io
import math
from dataclasses import asdict, dataclass, field

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


LAND_COVERS = ("water", "forest", "farmland", "bare_land", "residential", "industrial")
OBJECT_KINDS = ("building", "storage_tank", "ship", "airplane", "vehicle")
COLOURS = ("red", "white", "blue")
POSITIONS = ("top left", "top", "top right", "left", "center", "right", "bottom left", "bottom", "bottom right")
MAX_COUNT = 4

COLOUR_RGB = {"red": (205, 45, 40), "white": (240, 240, 235), "blue": (40, 80, 215)}

# Object footprints (length, width) in pixels at a 112 px image and object_scale 1. Kinds differ in size and
# outline as much as in shape (as they do from above): small round tanks, larger square buildings, long thin
# ships, wide airplanes, tiny vehicles, so a patch-14 vision tower can tell them apart.
FOOTPRINT = {
    "building": (13, 13),
    "storage_tank": (10, 10),
    "ship": (22, 6),
    "airplane": (20, 20),
    "vehicle": (8, 4),
}


@dataclass
class SceneObject:
    kind: str
    box: tuple[int, int, int, int]  # x1, y1, x2, y2 in pixels, inclusive of the drawn pixels (x2, y2 exclusive)
    angle: float


@dataclass
class Group:
    kind: str
    colour: str
    count: int
    cell: int  # 0..8, row-major: 0 = top left, 4 = center, 8 = bottom right
    objects: list[SceneObject] = field(default_factory=list)

    @property
    def position(self) -> str:
        return POSITIONS[self.cell]


@dataclass
class Scene:
    id: str
    size: int
    land_cover: str
    groups: list[Group]
    nuisances: dict = field(default_factory=dict)

    def group(self, kind: str) -> Group | None:
        return next((g for g in self.groups if g.kind == kind), None)

    def count(self, kind: str) -> int:
        g = self.group(kind)
        return g.count if g else 0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Scene:
        groups = [
            Group(**{**g, "objects": [SceneObject(o["kind"], tuple(o["box"]), o["angle"]) for o in g["objects"]]})
            for g in d["groups"]
        ]
        return cls(d["id"], d["size"], d["land_cover"], groups, d.get("nuisances", {}))


def sample_truth(rng: np.random.Generator, scene_id: str, size: int, max_groups: int = 2) -> Scene:
    """Sample a scene's facts (no pixels): land cover, 1..max_groups groups of distinct kinds in distinct cells."""
    n_groups = int(rng.integers(1, max_groups + 1))
    kinds = rng.choice(len(OBJECT_KINDS), size=n_groups, replace=False)
    cells = rng.choice(9, size=n_groups, replace=False)
    groups = [
        Group(
            kind=OBJECT_KINDS[k],
            colour=COLOURS[int(rng.integers(len(COLOURS)))],
            count=int(rng.integers(1, MAX_COUNT + 1)),
            cell=int(c),
        )
        for k, c in zip(kinds, cells)
    ]
    return Scene(scene_id, size, LAND_COVERS[int(rng.integers(len(LAND_COVERS)))], groups)


# ---------------------------------------------------------------------------------------------- textures


def _smooth_noise(rng: np.random.Generator, size: int, grid: int) -> np.ndarray:
    """Low-frequency noise in [-1, 1]: a random grid upsampled bilinearly."""
    small = Image.fromarray((rng.random((grid, grid)) * 255).astype(np.uint8), mode="L")
    return np.asarray(small.resize((size, size), Image.BILINEAR), dtype=np.float32) / 127.5 - 1.0


def _texture(rng: np.random.Generator, land_cover: str, size: int) -> np.ndarray:
    s = size
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32)
    fine = rng.normal(0, 1, (s, s)).astype(np.float32)
    low = _smooth_noise(rng, s, 6)
    if land_cover == "water":
        angle = rng.uniform(0, math.pi)
        ripple = np.sin((xx * math.cos(angle) + yy * math.sin(angle)) * rng.uniform(0.5, 0.9))
        base = np.array([28, 62, 118]) + (low * 12 + ripple * 5 + fine * 2)[..., None]
    elif land_cover == "forest":
        crowns = _smooth_noise(rng, s, max(8, s // 5))
        base = np.array([34, 84, 38]) + (crowns * 28 + low * 10 + fine * 5)[..., None] * np.array([0.6, 1.0, 0.5])
    elif land_cover == "farmland":
        width = rng.integers(9, 17)
        coord = xx if rng.random() < 0.5 else yy
        stripe = (coord // width).astype(int)
        palette = np.array([[118, 152, 62], [164, 142, 84], [92, 132, 52], [184, 172, 112]], dtype=np.float32)
        base = palette[(stripe * 7 + rng.integers(4)) % 4] + (fine * 4 + low * 6)[..., None]
    elif land_cover == "bare_land":
        base = np.array([176, 144, 104]) + (low * 18 + fine * 7)[..., None]
    elif land_cover == "residential":
        block = int(rng.integers(18, 27))
        offset = rng.integers(0, block, size=2)
        streets = (((xx + offset[0]) % block) < 3) | (((yy + offset[1]) % block) < 3)
        lots = np.array([168, 160, 150]) + (low * 10 + fine * 9)[..., None]
        base = np.where(streets[..., None], np.array([92, 92, 96]), lots)
    elif land_cover == "industrial":
        patches = _smooth_noise(rng, s, 4)
        quantised = np.round(patches * 2) / 2
        base = np.array([126, 128, 134]) + (quantised * 22 + fine * 4)[..., None]
    else:
        raise ValueError(f"unknown land cover {land_cover!r}")
    return base


# ---------------------------------------------------------------------------------------------- objects


def _rotate(points: np.ndarray, angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return points @ np.array([[c, s], [-s, c]], dtype=np.float32)


def _shape_polygons(kind: str, length: float, width: float) -> list[tuple[str, np.ndarray]]:
    """Polygons centred at the origin, as (role, points): role "body" gets the group colour, "detail" a darker one."""
    half_l, half_w = length / 2, width / 2
    if kind == "building":
        body = np.array([[-half_l, -half_w], [half_l, -half_w], [half_l, half_w], [-half_l, half_w]])
        ridge = np.array([[-half_l, -1], [half_l, -1], [half_l, 1], [-half_l, 1]])
        return [("body", body), ("detail", ridge)]
    if kind == "storage_tank":
        t = np.linspace(0, 2 * math.pi, 20, endpoint=False)
        ring = np.stack([np.cos(t), np.sin(t)], 1)
        return [("body", ring * half_l), ("detail", ring * half_l * 0.45)]
    if kind == "ship":
        hull = np.array(
            [[-half_l, -half_w], [half_l * 0.55, -half_w], [half_l, 0], [half_l * 0.55, half_w], [-half_l, half_w]]
        )
        cabin = np.array(
            [
                [-half_l * 0.6, -half_w * 0.5],
                [-half_l * 0.1, -half_w * 0.5],
                [-half_l * 0.1, half_w * 0.5],
                [-half_l * 0.6, half_w * 0.5],
            ]
        )
        return [("body", hull), ("detail", cabin)]
    if kind == "airplane":
        fw = max(2.0, length * 0.14)
        fuselage = np.array([[-half_l, -fw / 2], [half_l, -fw / 2], [half_l, fw / 2], [-half_l, fw / 2]])
        wings = np.array(
            [[0.1 * half_l, -half_w], [0.35 * half_l, -half_w], [0.35 * half_l, half_w], [0.1 * half_l, half_w]]
        )
        tail = np.array(
            [
                [-half_l, -half_w * 0.4],
                [-0.8 * half_l, -half_w * 0.4],
                [-0.8 * half_l, half_w * 0.4],
                [-half_l, half_w * 0.4],
            ]
        )
        return [("body", fuselage), ("body", wings), ("body", tail)]
    if kind == "vehicle":
        body = np.array([[-half_l, -half_w], [half_l, -half_w], [half_l, half_w], [-half_l, half_w]])
        windscreen = np.array(
            [
                [half_l * 0.2, -half_w * 0.6],
                [half_l * 0.5, -half_w * 0.6],
                [half_l * 0.5, half_w * 0.6],
                [half_l * 0.2, half_w * 0.6],
            ]
        )
        return [("body", body), ("detail", windscreen)]
    raise ValueError(f"unknown object kind {kind!r}")


def _strokes(kind: str, cx: float, cy: float, angle: float, length: float, width: float) -> list:
    """What to draw for one object: (fill role, polygon points in image coordinates), in paint order."""
    centre = np.array([cx, cy])
    strokes = []
    for role, poly in _shape_polygons(kind, length, width):
        if role == "body":
            # A dark rim (shadow) under a lighter body, so objects stand out from any background.
            strokes.append(("rim", [tuple(p) for p in (_rotate(poly, angle) + centre).tolist()]))
            strokes.append(("body", [tuple(p) for p in (_rotate(poly * 0.78, angle) + centre).tolist()]))
        else:
            strokes.append(("detail", [tuple(p) for p in (_rotate(poly, angle) + centre).tolist()]))
    order = {"rim": 0, "body": 1, "detail": 2}
    return sorted(strokes, key=lambda stroke: order[stroke[0]])


def _footprint_mask(bodies: list[np.ndarray], cx: float, cy: float, angle: float, size: int):
    """The object's pixels (its `bodies`, `_shape_polygons` at the origin) as a boolean mask over a small window of
    the image, and the window's (x0, y0). Working on a window around the object rather than the whole image keeps
    placement (many tries) cheap."""
    centre = np.array([cx, cy])
    outlines = [_rotate(poly, angle) + centre for poly in bodies]
    points = np.concatenate(outlines)
    x0, y0 = (max(0, int(v) - 2) for v in points.min(0))
    x1, y1 = (min(size, int(v) + 3) for v in points.max(0))
    if x1 <= x0 or y1 <= y0:
        return np.zeros((0, 0), dtype=bool), (0, 0)
    mask = Image.new("L", (x1 - x0, y1 - y0), 0)
    mask_draw = ImageDraw.Draw(mask)
    for outer in outlines:
        mask_draw.polygon((outer - (x0, y0)).ravel().tolist(), fill=255)
    return np.frombuffer(mask.tobytes(), dtype=np.uint8).reshape(y1 - y0, x1 - x0) > 0, (x0, y0)


def _place_group(rng, group: Group, size: int, scale: float, occupied: np.ndarray, tries: int = 20) -> list:
    """Objects whose centres lie in the group's cell and whose pixels (plus a 1 px gap) overlap nothing placed
    before. When a crowded cell cannot take the group, the whole group is placed again a little smaller; if it
    still does not fit at a third of its size, the group keeps the objects that fit (its count is lowered, and
    the texts, written after rendering, say the new count). Returns (full-image mask, strokes, angle) per object."""
    cell = size / 3
    row, col = divmod(group.cell, 3)
    base_length, base_width = (v * scale * size / 112 for v in FOOTPRINT[group.kind])
    best: list = []
    best_taken = occupied
    for shrink in (1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.33):
        length, width = base_length * shrink, base_width * shrink
        bodies = [poly for role, poly in _shape_polygons(group.kind, length, width) if role == "body"]
        taken = occupied.copy()
        placed = []
        for _ in range(group.count):
            for _ in range(tries):
                cx = (col + rng.uniform(0.08, 0.92)) * cell
                cy = (row + rng.uniform(0.08, 0.92)) * cell
                if group.kind == "storage_tank":
                    angle = 0.0
                elif group.kind == "building":
                    angle = float(rng.choice([0.0, math.pi / 2]) + rng.uniform(-0.3, 0.3))
                else:
                    angle = float(rng.uniform(0, 2 * math.pi))
                local, (x0, y0) = _footprint_mask(bodies, cx, cy, angle, size)
                if not local.any():
                    continue
                # One pixel of dilation keeps objects separable (checked and recorded on the window alone).
                h, w = local.shape
                grown = np.zeros((h + 2, w + 2), dtype=bool)
                for dy, dx in ((1, 1), (0, 1), (2, 1), (1, 0), (1, 2)):
                    grown[dy : dy + h, dx : dx + w] |= local
                ys, ye, xs, xe = max(0, y0 - 1), min(size, y0 + h + 1), max(0, x0 - 1), min(size, x0 + w + 1)
                region = taken[ys:ye, xs:xe]
                grown_in = grown[ys - y0 + 1 : ye - y0 + 1, xs - x0 + 1 : xe - x0 + 1]
                if not (grown_in & region).any():
                    region |= grown_in
                    mask = np.zeros((size, size), dtype=bool)
                    mask[y0 : y0 + h, x0 : x0 + w] = local
                    placed.append((mask, _strokes(group.kind, cx, cy, angle, length, width), angle))
                    break
            else:
                break
        if len(placed) == group.count:
            occupied |= taken
            return placed
        if len(placed) > len(best):
            best, best_taken = placed, taken
    if not best:
        raise RuntimeError(f"could not place a single {group.kind} in cell {group.cell} of a {size} px image")
    group.count = len(best)
    occupied |= best_taken
    return best


def render(
    scene: Scene,
    rng: np.random.Generator,
    object_scale: float = 1.0,
    haze_probability: float = 0.25,
    draw_objects: bool = True,
) -> Image.Image:
    """Draw the scene; fill in each object's exact box and record the nuisances in `scene.nuisances`.

    `draw_objects=False` places the objects (same random draws, same boxes) without painting them: the same
    scene with its objects removed, a counterfactual for tests and probes.
    """
    size = scene.size
    canvas = _texture(rng, scene.land_cover, size)
    image = Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8), mode="RGB")
    draw = ImageDraw.Draw(image)
    occupied = np.zeros((size, size), dtype=bool)
    shades = {"rim": 0.35, "body": 1.0, "detail": 0.6}
    for group in scene.groups:
        colour = np.array(COLOUR_RGB[group.colour])
        group.objects = []
        for mask, strokes, angle in _place_group(rng, group, size, object_scale, occupied):
            for role, points in strokes if draw_objects else ():
                draw.polygon(points, fill=tuple(int(v) for v in colour * shades[role]))
            ys, xs = np.nonzero(mask)
            box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
            group.objects.append(SceneObject(group.kind, box, round(float(angle), 4)))

    pixels = np.asarray(image, dtype=np.float32)
    haze = 0.0
    if rng.random() < haze_probability:  # a soft cloud that never hides an object completely
        cloud = np.clip(_smooth_noise(rng, size, 3) * 0.5 + 0.25, 0, 1)[..., None]
        haze = float(rng.uniform(0.15, 0.35))
        pixels = pixels * (1 - haze * cloud) + 235 * haze * cloud
    brightness = float(rng.uniform(0.85, 1.15))
    noise = float(rng.uniform(1.0, 6.0))
    pixels = pixels * brightness + rng.normal(0, noise, pixels.shape)
    scene.nuisances = {"haze": round(haze, 3), "brightness": round(brightness, 3), "noise": round(noise, 2)}
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), mode="RGB")
    if rng.random() < 0.3:
        image = image.filter(ImageFilter.GaussianBlur(radius=0.6))
        scene.nuisances["blur"] = 0.6
    return image


IMAGE_FORMATS = {"jpeg": ("JPEG", ".jpg", {"quality": 95}), "png": ("PNG", ".png", {"compress_level": 6})}


def encode_image(image: Image.Image, image_format: str = "jpeg") -> bytes:
    """Encoded bytes (deterministic for a given Pillow build)."""
    name, _, options = IMAGE_FORMATS[image_format]
    buffer = io.BytesIO()
    image.save(buffer, format=name, **options)
    return buffer.getvalue()
