"""Build a SynthRS dataset folder: preference pairs, a curation pool, SFT pre-training data, evaluation splits
and RL prompts, each in the on-disk format of its real counterpart (see data_cards/synth_rs.md).

Every item is generated from its own random stream, seeded by `(seed, part, index)`, so the output does not
depend on the number of worker processes, and splits are disjoint by construction (each item owns its scene).
The folder is written under a staging name and renamed when complete; a folder whose manifest matches the
config is reused unless `force`.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from ..chat import MC_SUFFIX
from ..rl import REWARD_TYPES
from . import texts as T
from .world import IMAGE_FORMATS, LAND_COVERS, POSITIONS, Scene, encode_image, render, sample_truth


SYNTHRS_VERSION = "1"

# Each part has its own random stream; never reuse a code.
PART_CODES = {
    "preference_caption_train": 1,
    "preference_caption_test": 2,
    "preference_instruction_train": 3,
    "preference_instruction_test": 4,
    "pool": 5,
    "pretrain": 6,
    "eval": 7,
    "rl": 8,
}
CAPTION_SOURCE, INSTRUCTION_SOURCE = "synthrs_caption", "synthrs_instruction"
CAPTION_PROMPT = "Describe this image."
OPEN_QUESTIONS = {"all": "Describe this image in detail.", "objects": "Describe the objects in this image."}


@dataclass
class SynthRSConfig:
    """What `rs-reward synth` generates.

    > Parameters of the world

        image_size, object_scale, max_groups, haze_probability

    > Sizes (items; each item is one scene)

        caption_pairs_train/test, instruction_pairs_train/test, pool_size, pretrain_size, eval_size, rl_size

    > Quality knobs

        max_rejected, chosen_omission_probability, pool_bad_fraction, pool_instruction_fraction
    """

    output_dir: str = field(default="runs/synthrs", metadata={"help": "Folder to write the dataset to."})
    seed: int = field(default=0, metadata={"help": "Seed of every random stream; same seed, same bytes."})
    image_size: int = field(default=112, metadata={"help": "Side of the square images in pixels (56..448)."})
    object_scale: float = field(default=1.0, metadata={"help": "Object size relative to the default footprint."})
    max_groups: int = field(default=2, metadata={"help": "Object groups per scene: 1..max_groups (kinds distinct)."})
    haze_probability: float = field(default=0.25, metadata={"help": "Share of scenes with a haze/cloud layer."})
    image_format: str = field(default="jpeg", metadata={"help": "jpeg (quality 95, ~6 KB at 112 px) or png (~23 KB)."})
    caption_pairs_train: int = field(default=2000, metadata={"help": "Caption preference items (train)."})
    caption_pairs_test: int = field(default=300, metadata={"help": "Caption preference items (held-out test)."})
    instruction_pairs_train: int = field(default=2000, metadata={"help": "Instruction preference items (train)."})
    instruction_pairs_test: int = field(default=300, metadata={"help": "Instruction preference items (test)."})
    max_rejected: int = field(default=2, metadata={"help": "Rejected texts per chosen: 1..max_rejected."})
    caption_operators: list[str] = field(
        default_factory=lambda: list(T.CAPTION_OPERATORS),
        metadata={"help": "Corruption operators drawn (uniformly) for rejected captions."},
    )
    chosen_omission_probability: float = field(
        default=0.2, metadata={"help": "Share of chosen captions made vaguer (chosen is not always perfect)."}
    )
    open_question_fraction: float = field(
        default=0.25, metadata={"help": "Share of instruction items with an open question (the rest closed)."}
    )
    pool_size: int = field(default=3000, metadata={"help": "Samples in the curation pool."})
    pool_bad_fraction: float = field(default=0.5, metadata={"help": "Share of pool samples hit by 1-2 operators."})
    pool_instruction_fraction: float = field(default=0.5, metadata={"help": "Share of pool samples that are QA."})
    pretrain_size: int = field(default=2000, metadata={"help": "Scenes of clean SFT data (a caption + a QA each)."})
    eval_size: int = field(default=300, metadata={"help": "Scenes of the clean evaluation splits."})
    rl_size: int = field(default=400, metadata={"help": "RL prompts."})
    num_workers: int = field(
        default=2, metadata={"help": "Processes rendering scenes (output does not depend on it)."}
    )
    force: bool = field(default=False, metadata={"help": "Regenerate even if the folder matches this config."})

    SIZE_FIELDS = (
        "caption_pairs_train",
        "caption_pairs_test",
        "instruction_pairs_train",
        "instruction_pairs_test",
        "pool_size",
        "pretrain_size",
        "eval_size",
        "rl_size",
    )

    @classmethod
    def only(cls, **fields) -> SynthRSConfig:
        """A config that writes only the parts given a size here (every other size is 0), e.g.
        `SynthRSConfig.only(output_dir=..., eval_size=12)`."""
        return cls(**{**dict.fromkeys(cls.SIZE_FIELDS, 0), **fields})

    def __post_init__(self):
        if not 56 <= self.image_size <= 448:
            raise ValueError(f"image_size must be in [56, 448], got {self.image_size}")
        if self.image_format not in IMAGE_FORMATS:
            raise ValueError(f"image_format must be one of {sorted(IMAGE_FORMATS)}, got {self.image_format!r}")
        unknown = set(self.caption_operators) - set(T.CAPTION_OPERATORS)
        if unknown:
            raise ValueError(f"unknown caption operators {sorted(unknown)}; known: {T.CAPTION_OPERATORS}")
        for name in ("pool_bad_fraction", "pool_instruction_fraction", "open_question_fraction", "haze_probability"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1]")

    def fingerprint(self) -> str:
        content = {k: v for k, v in asdict(self).items() if k not in ("output_dir", "num_workers", "force")}
        content["version"] = SYNTHRS_VERSION
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]


# ------------------------------------------------------------------------------------------- item makers


def _scene(config: SynthRSConfig, part: str, index: int) -> tuple[Scene, bytes, np.random.Generator]:
    rng = np.random.default_rng([config.seed, PART_CODES[part], index])
    scene = sample_truth(
        rng, f"{part.split('_')[0]}-{PART_CODES[part]}-{index:06d}", config.image_size, config.max_groups
    )
    image = render(scene, rng, object_scale=config.object_scale, haze_probability=config.haze_probability)
    return scene, encode_image(image, config.image_format), rng


def _pick_rejected(candidates, chosen_quality: float, k: int) -> list[tuple[str, str, float]]:
    """Up to k distinct (text, operator, quality) strictly worse than the chosen text."""
    picked, seen = [], set()
    for text, op, q in candidates:
        if q < chosen_quality - 0.05 and text not in seen:
            picked.append((text, op, q))
            seen.add(text)
        if len(picked) == k:
            break
    return picked


def _caption_candidates(claims, scene, rng, operators):
    while True:  # an endless stream; the caller stops when it has enough
        op = operators[int(rng.integers(len(operators)))]
        corrupted = T.apply_operator(op, claims, scene, rng)
        if corrupted is not None:
            yield T.render_text(corrupted), op, T.quality(corrupted, scene)


def _closed_candidates(qa, rng):
    while True:
        if rng.random() < 0.75:
            text, op = T.wrong_answer(qa, rng)
            yield text, op, 0.0
        else:
            yield T.degenerate_answer(qa.answer, rng)


INSTRUCTION_KINDS = ("vqa", "cls", "mc", "vg")  # the instruction tasks the evaluation reports
MC_TYPES = ("count", "land_cover", "position", "colour")


@dataclass
class Instruction:
    """A closed instruction as the evaluation asks it: `question` is the full user turn (choices and grounding
    template included), `answer` the reference, `wrong` an endless stream of (text, operator, quality) worse
    answers (wrong values of the same answer space, and degenerate ones)."""

    kind: str  # vqa, cls, mc or vg
    qtype: str
    question: str
    answer: str
    wrong: object


def make_instruction(scene, rng: np.random.Generator, kind: str) -> Instruction:
    if kind == "vg":
        targets = T.grounding_targets(scene)
        if not targets:
            kind = "vqa"
        else:
            expression, box = targets[int(rng.integers(len(targets)))]

            def wrong_boxes():
                while True:
                    if rng.random() < 0.75:
                        yield json.dumps(list(T.wrong_box(box, scene.size, rng))), "wrong_position", 0.0
                    else:
                        yield T.GENERIC_ANSWERS[int(rng.integers(len(T.GENERIC_ANSWERS)))], "generic", 0.0

            return Instruction("vg", "vg", T.grounding_question(expression), json.dumps(list(box)), wrong_boxes())
    if kind == "cls":
        names = tuple(T.LAND_COVER_NAME[lc] for lc in LAND_COVERS)
        qa = T.ClosedQA("cls", T.classification_question(), T.LAND_COVER_NAME[scene.land_cover], names)
        qa.wrong_operator = dict.fromkeys(names, "wrong_land_cover")
        return Instruction("cls", "cls", qa.question, qa.answer, _closed_candidates(qa, rng))
    if kind == "mc":
        qa = T.closed_question(scene, rng, qtype=MC_TYPES[int(rng.integers(len(MC_TYPES)))])
        choices, _, letter = T.multiple_choice(qa, rng)
        letters = tuple("ABCD"[: len(choices.split(". ")) - 1])
        mc = T.ClosedQA("mc", qa.question + MC_SUFFIX.format(choices), letter, letters)
        mc.wrong_operator = dict.fromkeys(letters, T.QTYPE_OPERATOR.get(qa.qtype, "wrong_answer"))
        return Instruction("mc", qa.qtype, mc.question, letter, _closed_candidates(mc, rng))
    qa = T.closed_question(scene, rng)
    return Instruction("vqa", qa.qtype, qa.question, qa.answer, _closed_candidates(qa, rng))


def make_preference_item(config: SynthRSConfig, part: str, index: int) -> dict:
    scene, image, rng = _scene(config, part, index)
    k = int(rng.integers(1, config.max_rejected + 1))
    open_question = part.startswith("preference_caption") or rng.random() < config.open_question_fraction
    qtype = "caption"
    if open_question:
        scope = "all"
        question = ""
        if part.startswith("preference_instruction"):
            scope = "objects" if rng.random() < 0.5 else "all"
            question, qtype = OPEN_QUESTIONS[scope], "open"
        claims = T.claims_from_scene(scene, rng, scope=scope)
        if rng.random() < config.chosen_omission_probability:
            claims = T.apply_operator("omission", claims, scene, rng) or claims
        chosen, chosen_quality = T.render_text(claims), T.quality(claims, scene)
        operators = [op for op in config.caption_operators if scope == "all" or op != "wrong_land_cover"]
        rejected = _pick_rejected(_caption_candidates(claims, scene, rng, operators), chosen_quality, k)
    else:
        instruction = make_instruction(scene, rng, INSTRUCTION_KINDS[int(rng.integers(len(INSTRUCTION_KINDS)))])
        question, qtype, chosen, chosen_quality = instruction.question, instruction.qtype, instruction.answer, 1.0
        rejected = _pick_rejected(instruction.wrong, chosen_quality, k)
    return {
        "scene": scene.to_dict(),
        "image": image,
        "question": question,
        "qtype": qtype,
        "chosen": chosen,
        "chosen_quality": chosen_quality,
        "rejected": [r[0] for r in rejected],
        "rejected_operators": [r[1] for r in rejected],
        "rejected_quality": [r[2] for r in rejected],
    }


def make_pool_item(config: SynthRSConfig, part: str, index: int) -> dict:
    """A sample as a generator VLM would write it: good (complete, or a little vague) or bad (1-2 operators)."""
    scene, image, rng = _scene(config, part, index)
    bad = rng.random() < config.pool_bad_fraction
    if rng.random() < config.pool_instruction_fraction:
        instruction = make_instruction(scene, rng, INSTRUCTION_KINDS[index % len(INSTRUCTION_KINDS)])
        text, operators, q = instruction.answer, [], 1.0
        if bad:
            text, op, q = next(instruction.wrong)
            operators = [op]
        return {
            "scene": scene.to_dict(),
            "image": image,
            "question": instruction.question,
            "text": text,
            "task": "instruction",
            "qtype": instruction.qtype,
            "instruction": instruction.kind,
            "quality": q,
            "operators": operators,
        }
    claims = T.claims_from_scene(scene, rng)
    operators = []
    if bad:
        for _ in range(int(rng.integers(1, 3))):
            op = config.caption_operators[int(rng.integers(len(config.caption_operators)))]
            corrupted = T.apply_operator(op, claims, scene, rng)
            if corrupted is not None:
                claims, operators = corrupted, [*operators, op]
    elif rng.random() < 0.4:
        claims = T.apply_operator("omission", claims, scene, rng) or claims
        operators = ["omission"] if claims.groups != scene.groups else []
    return {
        "scene": scene.to_dict(),
        "image": image,
        "question": "",
        "text": T.render_text(claims),
        "task": "caption",
        "qtype": "caption",
        "quality": T.quality(claims, scene),
        "operators": operators,
    }


def make_pretrain_item(config: SynthRSConfig, part: str, index: int) -> dict:
    scene, image, rng = _scene(config, part, index)
    caption = T.render_text(T.claims_from_scene(scene, rng))
    qa = T.closed_question(scene, rng)
    return {
        "scene": scene.to_dict(),
        "image": image,
        "caption": caption,
        "question": qa.question,
        "answer": qa.answer,
        "qtype": qa.qtype,
    }


def make_eval_item(config: SynthRSConfig, part: str, index: int) -> dict:
    scene, image, rng = _scene(config, part, index)
    qa = T.closed_question(scene, rng, qtype=T.CLOSED_QTYPES[index % len(T.CLOSED_QTYPES)])  # types balanced
    mc_qa = T.closed_question(scene, rng, qtype=MC_TYPES[index % len(MC_TYPES)])
    choices, options, letter = T.multiple_choice(mc_qa, rng)
    targets = T.grounding_targets(scene)
    grounding = targets[int(rng.integers(len(targets)))] if targets else None
    captions = [T.render_text(T.claims_from_scene(scene, rng)) for _ in range(2)]
    return {
        "scene": scene.to_dict(),
        "image": image,
        "vqa": (qa.question, qa.answer, qa.qtype),
        "mc": (mc_qa.question, choices, letter, mc_qa.qtype),
        "grounding": grounding,
        "captions": captions,
    }


def make_rl_item(config: SynthRSConfig, part: str, index: int) -> dict:
    scene, image, rng = _scene(config, part, index)
    reward_type = REWARD_TYPES[index % len(REWARD_TYPES)]
    targets = T.grounding_targets(scene)
    if reward_type == "iou" and not targets:
        reward_type = "em"
    if reward_type == "em":
        qa = T.closed_question(scene, rng)
        # Asked as the evaluation split and the pool ask (no answer-style suffix): with one the policy never saw in
        # SFT, the tiny demo policy answered 0.13 of these prompts greedily against 0.75 without it
        prompt, solution = qa.question, qa.answer
    elif reward_type == "mc":
        qa = T.closed_question(scene, rng, qtype=MC_TYPES[index // 4 % len(MC_TYPES)])
        choices, _, letter = T.multiple_choice(qa, rng)
        prompt = qa.question + MC_SUFFIX.format(choices)
        solution = letter
    elif reward_type == "iou":
        expression, box = targets[int(rng.integers(len(targets)))]
        prompt, solution = T.grounding_question(expression), json.dumps(list(box))
    else:
        scope = "objects" if rng.random() < 0.5 else "all"
        prompt, solution = OPEN_QUESTIONS[scope], T.render_text(T.claims_from_scene(scene, rng, scope=scope))
    return {
        "scene": scene.to_dict(),
        "image": image,
        "prompt": prompt,
        "solution": solution,
        "reward_type": reward_type,
    }


MAKERS = {
    "preference_caption_train": make_preference_item,
    "preference_caption_test": make_preference_item,
    "preference_instruction_train": make_preference_item,
    "preference_instruction_test": make_preference_item,
    "pool": make_pool_item,
    "pretrain": make_pretrain_item,
    "eval": make_eval_item,
    "rl": make_rl_item,
}


def _make(job):
    config, part, index = job
    return MAKERS[part](config, part, index)


# ------------------------------------------------------------------------------------------------ writers


def _write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=1, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")


def _write_jsonl(path: Path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, sort_keys=True, ensure_ascii=False) + "\n")


def _save_image(folder: Path, name: str, data: bytes) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)


def _user(content: str) -> list[dict]:
    return [{"role": "user", "content": content}]


def _assistant(content: str) -> list[dict]:
    return [{"role": "assistant", "content": content}]


class _Writer:
    """Receives items in order and writes every format; holds only small rows in memory, never images."""

    def __init__(self, root: Path, ext: str):
        self.root = root
        self.ext = ext
        self.rows: dict[str, list] = {}
        self.scenes: dict[str, list] = {}

    def add(self, part: str, item: dict) -> None:
        scene = item["scene"]
        scene_id = scene["id"]
        self.scenes.setdefault(part, []).append(scene)
        getattr(self, "_add_" + part.split("_")[0])(part, scene_id, item)

    def _add_preference(self, part, scene_id, item):
        _, kind, split = part.split("_")
        source = CAPTION_SOURCE if kind == "caption" else INSTRUCTION_SOURCE
        folder = self.root / "preference" / split
        name = f"{scene_id}{self.ext}"
        _save_image(folder / "images" / source, name, item["image"])
        rsrm = {
            "id": scene_id,
            "image_name": name,
            "chosen": item["chosen"],
            # RSRM allows a string or a list; write both forms, as the real data does.
            "rejected": item["rejected"][0] if len(item["rejected"]) == 1 else item["rejected"],
            "task": "caption" if kind == "caption" else "instruction",
            "qtype": item["qtype"],
            "chosen_quality": item["chosen_quality"],
            "rejected_quality": item["rejected_quality"],
            "rejected_operators": item["rejected_operators"],
        }
        if item["question"]:
            rsrm["question"] = item["question"]
        self.rows.setdefault(f"preference/{split}/{source}.json", []).append(rsrm)

    def _add_pool(self, part, scene_id, item):
        name = f"images/{scene_id}{self.ext}"
        _save_image(self.root / "pool" / "images", f"{scene_id}{self.ext}", item["image"])
        self.rows.setdefault("pool", []).append(
            {
                "id": scene_id,
                "filepath": name,
                "title": item["text"],
                "question": item["question"],
                "task": item["task"],
                "source": "synthrs_pool",
            }
        )
        self.rows.setdefault("pool_truth", []).append(
            {
                "id": scene_id,
                "quality": item["quality"],
                "operators": ",".join(item["operators"]),
                "task": item["task"],
                "qtype": item["qtype"],
                "instruction": item.get("instruction", ""),
            }
        )

    def _add_pretrain(self, part, scene_id, item):
        _save_image(self.root / "pretrain" / "images", f"{scene_id}{self.ext}", item["image"])
        images = [f"images/{scene_id}{self.ext}"]
        rows = self.rows.setdefault("pretrain", [])
        rows.append(
            {
                "id": f"{scene_id}-caption",
                "images": images,
                "task": "caption",
                "source": "synthrs_pretrain",
                "messages": _user(CAPTION_PROMPT) + _assistant(item["caption"]),
            }
        )
        rows.append(
            {
                "id": f"{scene_id}-qa",
                "images": images,
                "task": "instruction",
                "source": "synthrs_pretrain",
                "messages": _user(item["question"]) + _assistant(item["answer"]),
            }
        )

    def _add_eval(self, part, scene_id, item):
        name = f"{scene_id}{self.ext}"
        root = self.root / "eval"
        _save_image(root / "images", name, item["image"])
        scene = item["scene"]
        land_cover = scene["land_cover"]
        _save_image(root / "classification" / land_cover, name, item["image"])
        size = [scene["size"], scene["size"]]
        cls_q = T.classification_question()
        question, answer, qtype = item["vqa"]
        mc_question, choices, letter, mc_type = item["mc"]

        def vhm(q, a, t):
            return _vhm_record(name, size, q, a, t)

        add = self._add
        add("eval/cls_SynthRS.json", vhm(cls_q, T.LAND_COVER_NAME[land_cover], "cls"))
        add("eval/RSVQA_SynthRS.json", vhm(question, answer, qtype))
        images = [f"images/{name}"]
        add(
            "eval_rows",
            {
                "id": f"{scene_id}-cls",
                "images": images,
                "question": cls_q,
                "answer": T.LAND_COVER_NAME[land_cover],
                "task": "cls",
            },
        )
        add(
            "eval_rows",
            {
                "id": f"{scene_id}-vqa",
                "images": images,
                "question": question,
                "answer": answer,
                "task": "vqa",
                "qtype": qtype,
            },
        )
        add(
            "eval/mc",
            {
                "filename": f"images/{name}",
                "qa_pairs": [
                    {
                        "question": mc_question,
                        "choices": choices,
                        "answer": letter,
                        "type": [str(MC_TYPES.index(mc_type) + 1)],
                    }
                ],
            },
        )
        add(
            "eval_rows",
            {
                "id": f"{scene_id}-mc",
                "images": images,
                "question": mc_question,
                "choices": choices,
                "answer": letter,
                "task": "mc",
                "qtype": mc_type,
            },
        )
        if item["grounding"] is not None:
            expression, box = item["grounding"]
            add("eval/VG_SynthRS.json", vhm(expression, json.dumps(list(box)), "vg"))
            add(
                "eval_rows",
                {
                    "id": f"{scene_id}-vg",
                    "images": images,
                    "question": expression,
                    "answer": json.dumps(list(box)),
                    "bbox": list(box),
                    "size": size,
                    "task": "vg",
                },
            )
        for k, caption in enumerate(item["captions"]):
            add(
                "eval_rows",
                {
                    "id": f"{scene_id}-caption{k}",
                    "images": images,
                    "question": CAPTION_PROMPT,
                    "answer": caption,
                    "task": "caption",
                },
            )
        add("eval/captions", (name, item["captions"]))

    def _add(self, key: str, row) -> None:
        self.rows.setdefault(key, []).append(row)

    def _add_rl(self, part, scene_id, item):
        _save_image(self.root / "rl" / "images", f"{scene_id}{self.ext}", item["image"])
        self.rows.setdefault("rl", []).append(
            {
                "id": scene_id,
                "images": [f"images/{scene_id}{self.ext}"],
                "prompt": _user(item["prompt"]),
                "solution": item["solution"],
                "reward_type": item["reward_type"],
                "image_size": [item["scene"]["size"]] * 2,
            }
        )

    def finish(self) -> dict:
        """Write the row files; return counts for the manifest."""
        counts = {}
        for key, rows in sorted(self.rows.items()):
            if key.endswith(".json"):
                _write_json(self.root / key, rows)
                counts[key] = len(rows)
        pool = self.rows.get("pool", [])
        if pool:
            _write_csv(self.root / "pool" / "pool.csv", pool)
            _write_parquet(self.root / "pool" / "pool.parquet", pool)
            _write_parquet(self.root / "pool" / "truth.parquet", self.rows["pool_truth"])
            counts["pool/pool.csv"] = len(pool)
        if "pretrain" in self.rows:
            _write_jsonl(self.root / "pretrain" / "sft.jsonl", self.rows["pretrain"])
            counts["pretrain/sft.jsonl"] = len(self.rows["pretrain"])
        if "eval_rows" in self.rows:
            _write_jsonl(self.root / "eval" / "eval.jsonl", self.rows["eval_rows"])
            counts["eval/eval.jsonl"] = len(self.rows["eval_rows"])
            qtypes = {str(i + 1) + " " + t: t for i, t in enumerate(MC_TYPES)}
            _write_json(self.root / "eval" / "mc_SynthRS.json", {"qtype": qtypes, "data": self.rows["eval/mc"]})
            captions = self.rows["eval/captions"]
            karpathy, sentid = [], 0
            for imgid, (name, sentences) in enumerate(captions):
                ids = list(range(sentid, sentid + len(sentences)))
                karpathy.append(
                    {
                        "filename": name,
                        "imgid": imgid,
                        "split": "test",
                        "sentids": ids,
                        "sentences": [
                            {"raw": s, "tokens": s.lower().rstrip(".").split(), "imgid": imgid, "sentid": i}
                            for s, i in zip(sentences, ids)
                        ],
                    }
                )
                sentid += len(sentences)
            _write_json(self.root / "eval" / "dataset_synthrs.json", {"dataset": "synthrs", "images": karpathy})
            _write_csv(
                self.root / "eval" / "retrieval_synthrs.csv",
                [{"filepath": f"images/{name}", "title": s[0]} for name, s in captions],
            )
            _write_json(
                self.root / "eval" / "classification" / "classnames.json",
                {lc: T.CLIP_CLASS_NAME[lc] for lc in LAND_COVERS},
            )
        if "rl" in self.rows:
            _write_jsonl(self.root / "rl" / "prompts.jsonl", self.rows["rl"])
            counts["rl/prompts.jsonl"] = len(self.rows["rl"])
        for part, scenes in sorted(self.scenes.items()):
            if scenes:
                _write_jsonl(self.root / "truth" / f"scenes_{part}.jsonl", scenes)
        return counts


def _vhm_record(image: str, size: list[int], question: str, answer: str, qtype: str) -> dict:
    """A VHM / ScoreRS evaluation record: the image next to the JSON in `images/`, two turns."""
    return {
        "image": image,
        "image_path": "images",
        "size": size,
        "type": qtype,
        "conversations": [{"from": "human", "value": "<image>\n" + question}, {"from": "gpt", "value": answer}],
    }


def _write_csv(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _write_parquet(path: Path, rows: list[dict]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), path)


def write_preference_parquet(root: Path) -> dict:
    """The RSRM JSON files as canonical preference rows (TRL conversational format, one row per pair) in
    parquet with Hugging Face `datasets` features: `load_dataset("parquet", data_dir=root/"preference/hf")`."""
    from datasets import Dataset, Features, Image, List, Value

    from ..preference import rsrm_pairs

    message = List({"role": Value("string"), "content": Value("string")})
    features = Features(
        {
            "id": Value("string"),
            "images": List(Image()),
            "prompt": message,
            "chosen": message,
            "rejected": message,
            "task": Value("string"),
            "source": Value("string"),
            "operator": Value("string"),
            "chosen_quality": Value("float32"),
            "rejected_quality": Value("float32"),
        }
    )
    counts = {}
    for split in ("train", "test"):
        split_root = root / "preference" / split
        if not split_root.exists():
            continue
        rows = []
        for pair in rsrm_pairs(split_root, split_root / "images"):
            image_path = pair["images"][0]
            rows.append(
                {
                    "id": pair["id"],
                    "images": [{"bytes": Path(image_path).read_bytes(), "path": None}] if image_path else [],
                    "prompt": pair["prompt"],
                    "chosen": pair["chosen"],
                    "rejected": pair["rejected"],
                    "task": pair["task"],
                    "source": pair["source"],
                    "operator": pair["operator"],
                    "chosen_quality": pair["chosen_quality"],
                    "rejected_quality": pair["rejected_quality"],
                }
            )
        out = root / "preference" / "hf" / f"{split}.parquet"
        out.parent.mkdir(parents=True, exist_ok=True)
        Dataset.from_list(rows, features=features).to_parquet(str(out))
        counts[f"preference/hf/{split}.parquet"] = len(rows)
    return counts


# ------------------------------------------------------------------------------------------------ build


def _jobs(config: SynthRSConfig):
    sizes = {
        "preference_caption_train": config.caption_pairs_train,
        "preference_caption_test": config.caption_pairs_test,
        "preference_instruction_train": config.instruction_pairs_train,
        "preference_instruction_test": config.instruction_pairs_test,
        "pool": config.pool_size,
        "pretrain": config.pretrain_size,
        "eval": config.eval_size,
        "rl": config.rl_size,
    }
    return [(config, part, i) for part, n in sizes.items() for i in range(n)]


def build(config: SynthRSConfig, progress: bool = True) -> Path:
    """Generate the dataset folder; return its path. Reuses a complete folder with the same fingerprint."""
    from tqdm.auto import tqdm

    output = Path(config.output_dir)
    manifest_file = output / "manifest.json"
    if (
        not config.force
        and manifest_file.is_file()
        and json.loads(manifest_file.read_text()).get("fingerprint") == config.fingerprint()
    ):
        return output
    staging = output.with_name(f".{output.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    start = time.perf_counter()
    writer = _Writer(staging, IMAGE_FORMATS[config.image_format][1])
    jobs = _jobs(config)
    operators = Counter()
    try:
        bar = tqdm(total=len(jobs), desc="SynthRS scenes", unit="scene", disable=not progress)
        if config.num_workers > 1:
            with get_context("fork").Pool(config.num_workers) as pool:
                for job, item in zip(jobs, pool.imap(_make, jobs, chunksize=32)):
                    writer.add(job[1], item)
                    operators.update(item.get("rejected_operators", []) or item.get("operators", []))
                    bar.update()
        else:
            for job in jobs:
                item = _make(job)
                writer.add(job[1], item)
                operators.update(item.get("rejected_operators", []) or item.get("operators", []))
                bar.update()
        bar.close()
        counts = writer.finish()
        counts.update(write_preference_parquet(staging))
        manifest = {
            "name": "SynthRS",
            "version": SYNTHRS_VERSION,
            "fingerprint": config.fingerprint(),
            "config": {k: v for k, v in asdict(config).items() if k not in ("force",)},
            "counts": counts,
            "scenes": len(jobs),
            "operators": dict(sorted(operators.items())),
            "seconds": round(time.perf_counter() - start, 1),
        }
        _write_json(staging / "manifest.json", manifest)
        if output.exists():
            shutil.rmtree(output)
        staging.rename(output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return output


def load_scenes(root: str | Path, part: str) -> dict[str, Scene]:
    """Ground truth of a part (`pool`, `eval`, `rl`, `pretrain`, `preference_caption_test`, ...) by scene id."""
    path = Path(root) / "truth" / f"scenes_{part}.jsonl"
    with path.open(encoding="utf-8") as f:
        scenes = [Scene.from_dict(json.loads(line)) for line in f]
    return {s.id: s for s in scenes}


__all__ = ["SynthRSConfig", "build", "load_scenes", "POSITIONS"]
