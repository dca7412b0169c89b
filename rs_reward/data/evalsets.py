"""Evaluation sets in the canonical eval row: `id, images, question, answer, task` (+ `choices`, `bbox`, `size`,
`qtype`, `references`). `task` decides the metric: `cls`, `vqa` (strict match), `mc` (choice letter), `vg`
(IoU >= 0.5), `caption` (SynthRS fact accuracy).

Readers (data_cards/ describes each layout):
- `read_canonical` - JSONL of canonical rows (SynthRS `eval/eval.jsonl`);
- `read_vhm` - VHM / ScoreRS evaluation JSON (`cls_*.json`, `RSVQA_*.json`, `VG_*.json`): `image`, `image_path`,
  `conversations` (human `<image>\\n` + question, gpt answer), optional `size`, `type`;
- `read_lhrs_bench` - LHRS-Bench `qa.json`: `data[].filename`, `qa_pairs[].question/choices/answer/type`;
- `read_image_folder` - ImageFolder class sets (AID, NWPU-RESISC45, EuroSAT, WHU-RS19, SIRI-WHU, ...);
- `read_karpathy` - Karpathy caption JSON (RSICD, UCM-Captions, Sydney-Captions) for captions and retrieval.
Image paths are absolute after reading, confined to their folder.
"""

from __future__ import annotations

import json
from pathlib import Path

from .io import confine_path


def read_canonical(path: str | Path, image_root: str | Path | None = None) -> list[dict]:
    path = Path(path)
    root = Path(image_root) if image_root else path.parent
    rows = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                row["images"] = [str(confine_path(root, p)) for p in row.get("images", [])]
                rows.append(row)
    return rows


def _vhm_task(path: Path, record: dict) -> str:
    name = path.name.lower()
    if name.startswith("cls_") or record.get("type") == "cls":
        return "cls"
    if name.startswith("vg_") or record.get("type") in ("vg", "bbox"):
        return "vg"
    return "vqa"


def read_vhm(path: str | Path) -> list[dict]:
    """VHM-style evaluation JSON; image at `<json dir>/<image_path>/<image>` (or `<json dir>/<json stem>/<image>`)."""
    path = Path(path)
    rows = []
    for index, record in enumerate(json.loads(path.read_text(encoding="utf-8"))):
        turns = record.get("conversations") or record.get("conversation")
        question = turns[0]["value"].replace("<image>\n", "").replace("<image>", "").strip()
        answer = turns[1]["value"].strip()
        folder = Path(record.get("image_path") or path.stem)
        image = confine_path(folder if folder.is_absolute() else path.parent / folder, record["image"])
        task = _vhm_task(path, record)
        row = {
            "id": f"{path.stem}-{index}",
            "images": [str(image)],
            "question": question,
            "answer": answer,
            "task": task,
            "qtype": record.get("type"),
        }
        if task == "vg":
            row["bbox"] = json.loads(answer)
            row["size"] = record.get("size")
        rows.append(row)
    return rows


def read_lhrs_bench(path: str | Path, image_root: str | Path | None = None) -> list[dict]:
    """LHRS-Bench multiple choice; the answer is the option letter."""
    path = Path(path)
    root = Path(image_root) if image_root else path.parent
    data = json.loads(path.read_text(encoding="utf-8"))
    rows = []
    for i, item in enumerate(data["data"]):
        for j, qa in enumerate(item["qa_pairs"]):
            rows.append(
                {
                    "id": f"{path.stem}-{i}-{j}",
                    "images": [str(confine_path(root, item["filename"]))],
                    "question": qa["question"],
                    "choices": qa["choices"],
                    "answer": qa["answer"].strip().rstrip("."),
                    "task": "mc",
                    "qtype": ",".join(qa.get("type", [])),
                }
            )
    return rows


def class_name(folder: str) -> str:
    """Folder name -> class name used in prompts (`_` and `-` become spaces, as RS5M does)."""
    return folder.replace("_", " ").replace("-", " ")


def read_image_folder(root: str | Path, classnames: dict[str, str] | None = None) -> tuple[list[dict], list[str]]:
    """Rows of an ImageFolder class set and the class names (sorted folder order). A `classnames.json` in the
    root (folder -> name) overrides the default naming."""
    root = Path(root)
    if classnames is None and (root / "classnames.json").is_file():
        classnames = json.loads((root / "classnames.json").read_text())
    folders = sorted(p.name for p in root.iterdir() if p.is_dir())
    names = [(classnames or {}).get(f, class_name(f)) for f in folders]
    suffixes = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp"}
    rows = [
        {"id": f"{folder}/{image.name}", "images": [str(image)], "answer": name, "task": "cls", "label": k}
        for k, (folder, name) in enumerate(zip(folders, names))
        for image in sorted((root / folder).iterdir())
        if image.suffix.lower() in suffixes
    ]
    return rows, names


def read_karpathy(path: str | Path, image_root: str | Path | None = None, split: str = "test") -> list[dict]:
    """Karpathy-style caption JSON: one row per image of `split`, with every reference sentence (`raw`)."""
    path = Path(path)
    root = Path(image_root) if image_root else path.parent
    data = json.loads(path.read_text(encoding="utf-8"))
    rows = []
    for image in data["images"]:
        if image.get("split", split) != split:
            continue
        references = [s["raw"] for s in image["sentences"]]
        folder = root / "images" if (root / "images" / image["filename"]).exists() else root
        rows.append(
            {
                "id": str(image.get("imgid", image["filename"])),
                "images": [str(confine_path(folder, image["filename"]))],
                "question": "Describe this image.",
                "answer": references[0],
                "references": references,
                "task": "caption",
            }
        )
    return rows
