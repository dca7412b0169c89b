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

from .chat import MAX_PROMPT_CHARS
from .io import Rejects, RowError, UniqueIds, confine_path


def read_canonical(
    path: str | Path, image_root: str | Path | None = None, rejects: Rejects | None = None
) -> list[dict]:
    """JSONL of canonical eval rows; a line that is not JSON, whose image path escapes the root or whose id an
    earlier line has goes to `rejects` (raises without one)."""
    path = Path(path)
    root = Path(image_root) if image_root else path.parent
    rows, ids = [], UniqueIds()
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            row_id = f"line-{number}"
            try:
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as error:
                    raise RowError(f"line {number} is not valid JSON ({error.msg})") from None
                if not isinstance(row, dict):
                    raise RowError(f"line {number} is not a JSON object")
                row_id = str(row.get("id", row_id))
                row["images"] = [str(confine_path(root, p)) for p in row.get("images") or []]
                ids.check(row_id, number)
            except RowError as error:
                if rejects is None:
                    raise RowError(f"{path}: {error}") from None
                rejects.add(row_id, str(error))
                continue
            rows.append(row)
    return rows


EVAL_TASKS = ("cls", "vqa", "mc", "vg", "caption")


def check_eval_rows(
    rows: list[dict], rejects: Rejects, *, questions: bool = True, check_images: bool = True
) -> list[dict]:
    """The rows an evaluation can use, in order; every other row goes to `rejects` with its reason: a repeated id
    (numbered by place in `rows`),
    an unknown task, a missing question (`questions`: a VLM is asked one; CLIP class sets have none) or one longer
    than `MAX_PROMPT_CHARS`, an empty
    answer (a caption row may give `references` instead), a box that is not 4 numbers, an image that does not
    open. Raises if no row is left."""
    from .images import open_image

    kept, ids = [], UniqueIds()
    for number, row in enumerate(rows, 1):
        row_id = str(row.get("id", f"row-{number}"))
        try:
            task = row.get("task")
            if task not in EVAL_TASKS:
                raise RowError(f"unknown task {task!r} (known: {', '.join(EVAL_TASKS)})")
            question = row.get("question", "")
            if not isinstance(question, str) or (questions and task != "caption" and not question.strip()):
                raise RowError(f"a {task} row needs a non-empty string 'question'")
            if len(question) > MAX_PROMPT_CHARS:
                raise RowError(f"question of {len(question)} characters is longer than {MAX_PROMPT_CHARS}")
            answer, references = row.get("answer"), row.get("references")
            if not (isinstance(answer, str) and answer.strip()) and not (task == "caption" and references):
                raise RowError("'answer' must be a non-empty string")
            box = row.get("bbox")
            if task == "vg" and not (
                isinstance(box, list | tuple) and len(box) == 4 and all(isinstance(v, int | float) for v in box)
            ):
                raise RowError(f"a vg row needs 'bbox' [x1, y1, x2, y2], got {box!r}")
            if check_images:
                for image in row.get("images") or []:
                    open_image(image, verify=True)
            ids.check(row_id, number)
        except RowError as error:
            rejects.add(row_id, str(error))
            continue
        kept.append(row)
    if not kept:
        raise ValueError(f"no usable eval row ({rejects.summary()})")
    return kept


def read_eval_rows(
    path: str, fmt: str = "auto", rejects: Rejects | None = None
) -> tuple[list[dict], list[str] | None]:
    """Eval rows (and class names for an ImageFolder) from any supported layout; `fmt="auto"` tells the layout
    from the path: a folder with `Annotations/` is DIOR-RSVG, another folder an ImageFolder, `*_questions.json`
    raw RSVQA, `.jsonl` canonical, a JSON object with `data` LHRS-Bench, another object Karpathy, a list VHM."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"eval data {path!r} not found")
    if fmt == "auto":
        if p.is_dir():
            fmt = "dior_rsvg" if (p / "Annotations").is_dir() else "imagefolder"
        elif p.name.endswith("_questions.json"):
            fmt = "rsvqa"
        elif p.suffix == ".jsonl":
            fmt = "canonical"
        else:
            head = json.loads(p.read_text(encoding="utf-8"))
            fmt = (
                "lhrs"
                if isinstance(head, dict) and "data" in head
                else "karpathy"
                if isinstance(head, dict)
                else "vhm"
            )
    if fmt == "imagefolder":
        return read_image_folder(p)
    if fmt == "canonical":
        return read_canonical(p, rejects=rejects), None
    readers = {
        "vhm": read_vhm,
        "lhrs": read_lhrs_bench,
        "karpathy": read_karpathy,
        "rsvqa": read_rsvqa,
        "dior_rsvg": read_dior_rsvg,
    }
    if fmt not in readers:
        raise ValueError(f"unknown eval_format {fmt!r} (known: canonical, imagefolder, {', '.join(readers)}, auto)")
    return readers[fmt](p), None


def first_per_task(rows: list[dict], limit: int) -> list[dict]:
    """The first `limit` rows of each task, in order."""
    counts: dict[str, int] = {}
    kept = []
    for row in rows:
        counts[row["task"]] = counts.get(row["task"], 0) + 1
        if counts[row["task"]] <= limit:
            kept.append(row)
    return kept


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
