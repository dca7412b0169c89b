"""Evaluation sets in the canonical eval row: `id, images, question, answer, task` (+ `choices`, `bbox`, `size`,
`qtype`, `references`). `task` decides the metric: `cls`, `vqa` (strict match), `mc` (choice letter), `vg`
(IoU >= 0.5), `caption` (SynthRS fact accuracy).

Readers (data_cards/ describes each layout):
- `read_canonical` - JSONL of canonical rows (SynthRS `eval/eval.jsonl`);
- `read_vhm` - VHM / ScoreRS evaluation JSON (`cls_*.json`, `RSVQA_*.json`, `VG_*.json`): `image`, `image_path`,
  `conversations` (human `<image>\\n` + question, gpt answer), optional `size`, `type`;
- `read_lhrs_bench` - LHRS-Bench `qa.json`: `data[].filename`, `qa_pairs[].question/choices/answer/type`;
- `read_image_folder` - ImageFolder class sets (AID, NWPU-RESISC45, EuroSAT, WHU-RS19, SIRI-WHU, ...);
- `read_karpathy` - Karpathy caption JSON (RSICD, UCM-Captions, Sydney-Captions) for captions and retrieval;
- `read_rsvqa` - the raw RSVQA-LR / HR split files (`*_questions.json` + `*_answers.json`, images by id);
- `read_dior_rsvg` - DIOR-RSVG from its XML annotations and split files of object indices.
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


RSVQA_IMAGE_FOLDERS = {"LR": "Images_LR", "USGS": "Data"}


def read_rsvqa(
    questions_file: str | Path,
    image_root: str | Path | None = None,
    types: tuple[str, ...] | None = None,
    suffix: str = "",
) -> list[dict]:
    """The raw RSVQA split files: `{LR|USGS}_split_<split>_{questions,answers,images}.json` (lists indexed by id).

    Only `active` questions are read; the answer is the first of `answers_ids`; the image is
    `<image_root>/<Images_LR|Data>/<img_id>.tif` (image_root defaults to the JSON folder). `types` keeps only some
    question types (ScoreRS drops `count` and `area`); `suffix` is appended to each question.
    """
    questions_file = Path(questions_file)
    name = questions_file.name
    if not name.endswith("_questions.json"):
        raise ValueError(f"{questions_file}: expected a `..._questions.json` RSVQA file")
    prefix = name.removesuffix("_questions.json")
    answers = json.loads((questions_file.parent / f"{prefix}_answers.json").read_text(encoding="utf-8"))["answers"]
    questions = json.loads(questions_file.read_text(encoding="utf-8"))["questions"]
    folder = RSVQA_IMAGE_FOLDERS.get(prefix.split("_")[0], "Images_LR")
    root = Path(image_root) if image_root else questions_file.parent
    rows = []
    for q in questions:
        if not q.get("active", True) or (types and q.get("type") not in types):
            continue
        answer = answers[q["answers_ids"][0]]
        if not answer.get("active", True):
            continue
        rows.append(
            {
                "id": f"rsvqa-{prefix}-{q['id']}",
                "images": [str(confine_path(root, f"{folder}/{q['img_id']}.tif"))],
                "question": q["question"] + suffix,
                "answer": str(answer["answer"]),
                "task": "vqa",
                "qtype": q.get("type"),
            }
        )
    return rows


def read_dior_rsvg(root: str | Path, split: str = "test") -> list[dict]:
    """DIOR-RSVG from its XML annotations: `Annotations/*.xml`, `JPEGImages/`, `<split>.txt` of object indices.

    As the authors' loader: walk the XML files in sorted order, number every `<object>` with a running counter and
    keep those whose number is in the split file; per object the class, the `bndbox` (absolute pixels) and the
    referring expression (`description`). One grounding row (`task: vg`, `bbox` in pixels, `size`) per object.
    """
    import xml.etree.ElementTree as ET

    root = Path(root)
    wanted = {int(line) for line in (root / f"{split}.txt").read_text().split()}
    rows, counter = [], 0
    for xml_file in sorted((root / "Annotations").glob("*.xml")):
        tree = ET.parse(xml_file).getroot()
        filename = tree.findtext("filename") or f"{xml_file.stem}.jpg"
        size = tree.find("size")
        dims = [int(size.findtext("width")), int(size.findtext("height"))] if size is not None else None
        for obj in tree.findall("object"):
            if counter in wanted:
                # by position, as the authors' loader: 0 class, 2 bndbox (xmin, ymin, xmax, ymax), 3 description
                members = list(obj)
                if len(members) < 4 or len(members[2]) < 4:
                    raise ValueError(f"{xml_file}: object {counter} lacks class / bndbox / description")
                rows.append(
                    {
                        "id": f"dior-rsvg-{counter}",
                        "images": [str(confine_path(root, f"JPEGImages/{filename}"))],
                        "question": (members[3].text or "").strip(),
                        "answer": (members[0].text or "").strip(),
                        "bbox": [float(child.text) for child in list(members[2])[:4]],
                        "task": "vg",
                        **({"size": dims} if dims else {}),
                    }
                )
            counter += 1
    return rows
