"""Shared-prefix scoring: K answers to one image and question scored in one sequence, the prefix run once.

Every use of a score model scores several answers to the same image and question (a preference pair's chosen and
rejected answers, best-of-N candidates, GRPO completions). Plain scoring re-runs the vision tower and the whole
prefix (system, image, question) for each answer. Here a group of K rows is packed into one sequence

    [prefix][answer 1][answer 2] ... [answer K]

with a block attention mask (the prefix is causal; each answer sees the prefix and itself, never another answer)
and position ids that restart every answer where the prefix ends (Qwen2-VL / Qwen2.5-VL / Qwen3-VL multimodal
positions for the prefix, text positions after it). Each answer's score is read at its own last token, so a row's
score is the one plain scoring gives (tests/test_shared_prefix.py, fp32, atol 1e-4), and gradients are the same:
the reward trainer packs each pair this way.

The prefix of a group is the longest common prefix of the rows' token ids (the rows are tokenised exactly as for
plain scoring, then split), so no template knowledge is needed and nothing is re-tokenised. It needs `sdpa` or
`eager` attention (a 4D mask); with another implementation `supports_shared_prefix` is False and callers score
plainly.

    packed = pack_groups(encode_scored(processor, images, questions, answers), groups, pad_token_id)
    scores = model(**packed).logits   # row i scores plain row i, as model(**batch).logits would
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch


SHARED_PREFIX_ATTENTION = ("sdpa", "eager")


def supports_shared_prefix(model) -> bool:
    """Whether `model` (a reward model of this package, possibly wrapped by peft) can score packed groups."""
    config = getattr(model, "config", None)
    if config is None or not hasattr(model, "get_input_embeddings"):
        return False
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    implementation = getattr(text, "_attn_implementation", None) or getattr(config, "_attn_implementation", None)
    return implementation in SHARED_PREFIX_ATTENTION


def image_key(image) -> object:
    """A key equal for the same image: the path for a path, a digest of the pixels for a PIL image, None for none."""
    if image is None or isinstance(image, str):
        return image
    if hasattr(image, "tobytes"):
        digest = hashlib.blake2b(image.tobytes(), digest_size=16).hexdigest()
        return (image.mode, image.size, digest)
    return id(image)


def group_rows(images: Sequence, questions: Sequence[str | None], max_group: int | None = None) -> list[list[int]]:
    """Row indices grouped by (image, question), in first-seen order; groups split at `max_group` rows."""
    groups: dict[object, list[int]] = {}
    for i, (image, question) in enumerate(zip(images, questions)):
        groups.setdefault((image_key(image), question or ""), []).append(i)
    out = []
    for rows in groups.values():
        step = max_group or len(rows)
        out.extend(rows[start : start + step] for start in range(0, len(rows), step))
    return out


_GROUP_HINT = "group rows by image and question (shared_prefix.group_rows)"


def _pixels(pixel_values, starts, image: int):
    return pixel_values[starts[image] : starts[image + 1]] if image >= 0 else pixel_values[:0]


def _common_prefix_length(sequences: list[torch.Tensor]) -> int:
    shortest = min(len(s) for s in sequences)
    first = sequences[0][:shortest]
    length = shortest
    for s in sequences[1:]:
        differ = (s[:shortest] != first).nonzero()
        if len(differ):
            length = min(length, int(differ[0]))
    return min(length, shortest - 1)  # every answer keeps at least its last token


def pack_groups(batch, groups: list[list[int]], pad_token_id: int) -> dict:
    """A plain scored batch (one row per answer, any padding side) -> one packed row per group.

    `groups` lists row indices; the rows of a group must share their image and question. Returns `input_ids`,
    `attention_mask` (2D, the real tokens), `segment_ids` (0 = prefix, k = answer k, -1 = padding),
    `score_index` (packed row, token) of every answer's last token, in the order of the plain rows (so the model's
    output row i scores plain row i; `groups` must cover every row once), and the image tensors of one image per
    group.
    """
    input_ids, mask = batch["input_ids"], batch["attention_mask"].bool()
    types = batch.get("mm_token_type_ids")
    grid = batch.get("image_grid_thw")
    if grid is not None:
        has_image = (types != 0).any(-1) if types is not None else torch.ones(len(input_ids), dtype=torch.bool)
        image_of_row = torch.full((len(input_ids),), -1, dtype=torch.long)
        image_of_row[has_image] = torch.arange(int(has_image.sum()))
        patches = grid.prod(-1)
        starts = torch.cat([patches.new_zeros(1), patches.cumsum(0)])

    rows_ids, rows_types, rows_segments, score_index, pixel_parts, grids = [], [], [], [], [], []
    for g, group in enumerate(groups):
        sequences = [input_ids[i][mask[i]] for i in group]
        kinds = [types[i][mask[i]] if types is not None else torch.zeros_like(s) for i, s in zip(group, sequences)]
        length = _common_prefix_length(sequences)
        ids, kind, segments = [sequences[0][:length]], [kinds[0][:length]], [torch.zeros(length, dtype=torch.long)]
        position = length
        for k, (sequence, sequence_kind) in enumerate(zip(sequences, kinds), start=1):
            if (sequence_kind[length:] != 0).any():
                raise ValueError(
                    f"rows {group} of a shared-prefix group differ before their image ends: {_GROUP_HINT}"
                )
            ids.append(sequence[length:])
            kind.append(sequence_kind[length:])
            segments.append(torch.full((len(sequence) - length,), k, dtype=torch.long))
            position += len(sequence) - length
            score_index.append((g, position - 1))
        rows_ids.append(torch.cat(ids))
        rows_types.append(torch.cat(kind))
        rows_segments.append(torch.cat(segments))
        if grid is not None and image_of_row[group[0]] >= 0:
            pixels = [_pixels(batch["pixel_values"], starts, int(image_of_row[i])) for i in group]
            if any(p.shape != pixels[0].shape or not torch.equal(p, pixels[0]) for p in pixels[1:]):
                raise ValueError(f"rows {group} of a shared-prefix group have different images: {_GROUP_HINT}")
            pixel_parts.append(pixels[0])
            grids.append(grid[int(image_of_row[group[0]])])

    width = max(len(r) for r in rows_ids)

    def pad(rows, value):
        out = torch.full((len(rows), width), value, dtype=rows[0].dtype)
        for r, row in enumerate(rows):
            out[r, : len(row)] = row
        return out

    flat = torch.tensor([i for group in groups for i in group])
    packed = {
        "input_ids": pad(rows_ids, pad_token_id),
        "segment_ids": pad(rows_segments, -1),
        "score_index": torch.tensor(score_index, dtype=torch.long)[flat.argsort()],  # in the order of the rows
    }
    packed["attention_mask"] = (packed["segment_ids"] >= 0).long()
    if types is not None:
        packed["mm_token_type_ids"] = pad(rows_types, 0)
    if pixel_parts:
        packed["pixel_values"] = torch.cat(pixel_parts)
        packed["image_grid_thw"] = torch.stack(grids)
    return packed


def shared_prefix_mask(segment_ids: torch.Tensor, dtype: torch.dtype, implementation: str) -> torch.Tensor:
    """The (G, 1, L, L) mask: causal, and an answer token sees the prefix and its own answer only.

    Boolean (True = attend) for sdpa, additive float for eager. Padding tokens see themselves (no empty rows)."""
    length = segment_ids.shape[-1]
    causal = torch.ones(length, length, dtype=torch.bool, device=segment_ids.device).tril()
    query, key = segment_ids.unsqueeze(-1), segment_ids.unsqueeze(-2)
    allowed = ((key == 0) & (query >= 0)) | ((key == query) & (query > 0))
    allowed = (allowed & causal) | torch.eye(length, dtype=torch.bool, device=segment_ids.device)
    allowed = allowed.unsqueeze(1)
    if implementation == "eager":
        zero = torch.zeros((), dtype=dtype, device=segment_ids.device)
        return torch.where(allowed, zero, torch.finfo(dtype).min)
    return allowed


def shared_prefix_positions(
    backbone, input_ids, segment_ids, mm_token_type_ids=None, image_grid_thw=None
) -> torch.Tensor:
    """(3, G, L) positions: the backbone's multimodal positions for the prefix, and every answer numbered on
    from the prefix's end, as if it followed the prefix alone."""
    prefix = (segment_ids == 0).long()
    types = mm_token_type_ids if mm_token_type_ids is not None else torch.zeros_like(input_ids)
    positions, _ = backbone.get_rope_index(
        input_ids, mm_token_type_ids=types, image_grid_thw=image_grid_thw, attention_mask=prefix
    )
    positions = positions.clone()
    # The prefix's next position, per row (0 when a group has no common prefix).
    following = torch.where(prefix.any(-1), (positions * prefix).amax(dim=(0, 2)) + 1, 0)
    for g in range(segment_ids.shape[0]):
        segments = segment_ids[g]
        for k in segments[segments > 0].unique().tolist():
            where = (segments == k).nonzero().squeeze(-1)
            positions[:, g, where] = following[g] + torch.arange(len(where), device=positions.device)
    return positions
