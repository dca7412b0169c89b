"""SynthRS: a procedural remote-sensing world with exact ground truth (data_cards/synth_rs.md)."""

from .build import SynthRSConfig, build, load_scenes
from .texts import CAPTION_OPERATORS, FORM_OPERATORS, GROUNDED_OPERATORS, quality
from .world import COLOURS, LAND_COVERS, OBJECT_KINDS, POSITIONS, Scene, render, sample_truth


__all__ = [
    "CAPTION_OPERATORS",
    "COLOURS",
    "FORM_OPERATORS",
    "GROUNDED_OPERATORS",
    "LAND_COVERS",
    "OBJECT_KINDS",
    "POSITIONS",
    "Scene",
    "SynthRSConfig",
    "build",
    "load_scenes",
    "quality",
    "render",
    "sample_truth",
]
