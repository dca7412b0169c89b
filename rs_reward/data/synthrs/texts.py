"""Texts written from a scene's ground truth, their true quality, and named corruption operators.

A caption is held as *claims* (land cover; per object group: kind, count, colour, position) plus the phrasing
choices used to render it, so a corrupted caption differs from its source only where the operator acted.

True quality of a text = fact score x form factor, in [0, 1]:
- fact score: the Jaccard index between the facts the text claims and the scene's true facts
  (|claimed & true| / |claimed | true|): a wrong claim costs more than a missing one, and the complete, correct
  text scores 1;
- form factor: 1, or 0.5 after `repetition`, 0.6 after `truncation` (generic text claims nothing: score 0).
Closed questions have one fact: a right answer scores 1, a wrong one 0.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

from ..chat import GROUNDING_TEMPLATE
from .world import COLOURS, LAND_COVERS, MAX_COUNT, OBJECT_KINDS, POSITIONS, Scene, sample_truth


NUMBER_WORDS = {1: "one", 2: "two", 3: "three", 4: "four"}
KIND_NOUN = {
    "building": ("building", "buildings"),
    "storage_tank": ("storage tank", "storage tanks"),
    "ship": ("ship", "ships"),
    "airplane": ("airplane", "airplanes"),
    "vehicle": ("vehicle", "vehicles"),
}
LAND_COVER_NAME = {lc: lc.replace("_", " ") for lc in LAND_COVERS}  # class names as answers and labels
LAND_COVER_PHRASE = {
    "water": "open water",
    "forest": "dense forest",
    "farmland": "farmland",
    "bare_land": "bare land",
    "residential": "a residential area",
    "industrial": "an industrial area",
}
# Zero-shot class names (eval/classification/classnames.json): the captions' own phrases, without the article, so
# "a satellite photo of {}." asks a CLIP for the words its captions taught it ("residential" alone, which no caption
# says, held the demo's CLIP at 0.18 on residential scenes; "residential area" at 0.63: data card, "What CLIP learns")
CLIP_CLASS_NAME = {lc: phrase.removeprefix("a ").removeprefix("an ") for lc, phrase in LAND_COVER_PHRASE.items()}

POSITION_PHRASE = {
    "top left": "in the top left",
    "top": "at the top",
    "top right": "in the top right",
    "left": "on the left",
    "center": "in the center",
    "right": "on the right",
    "bottom left": "in the bottom left",
    "bottom": "at the bottom",
    "bottom right": "in the bottom right",
}
OPENINGS = (
    "A satellite image of {lc}.",
    "An aerial view of {lc}.",
    "This remote sensing image shows {lc}.",
    "The scene is mostly covered by {lc}.",
)
VAGUE_OPENING = "A satellite image."
GROUP_TEMPLATES = (  # {n}=number, {what}=colour + noun, {be}=is/are, {where}=" in the top left" or ""
    "There {be} {n} {what}{where}.",
    "{N} {what} {be} visible{where}.",
    "The image contains {n} {what}{where}.",
    "We can see {n} {what}{where}.",
)
GENERIC_TEXTS = (
    "This is a satellite image.",
    "The image shows a landscape seen from above.",
    "A beautiful picture with many interesting details.",
    "A cat is sleeping on a sofa next to a window.",
    "An image taken from a high altitude with a camera.",
)
GENERIC_ANSWERS = ("I cannot tell from this image.", "It is hard to say.", "The answer depends on the image.")

# Operators that change what a text says about the image (a text-only scorer should be at chance on them),
# and those that change only how much it says or how it is written (visible without the image).
GROUNDED_OPERATORS = (
    "hallucinated_object",
    "missed_object",
    "wrong_count",
    "wrong_land_cover",
    "wrong_position",
    "wrong_attribute",
    "wrong_comparison",
    "swapped_image",
)
FORM_OPERATORS = ("omission", "repetition", "truncation", "generic")
CAPTION_OPERATORS = (
    "hallucinated_object",
    "wrong_count",
    "wrong_land_cover",
    "wrong_position",
    "wrong_attribute",
    "swapped_image",
    "omission",
    "repetition",
    "truncation",
    "generic",
)
FORM_FACTOR = {"repetition": 0.5, "truncation": 0.6}


# ------------------------------------------------------------------------------------------------ claims


@dataclass
class GroupClaim:
    kind: str
    count: int | None  # None: vague ("some")
    colour: str | None
    cell: int | None
    template: int


@dataclass
class Claims:
    """What a caption-like text says, and how it says it."""

    land_cover: str | None
    groups: list[GroupClaim]
    opening: int
    scope: str = "all"  # "all" (caption) or "objects" (an answer about the objects only)
    form: list[str] = field(default_factory=list)
    truncate_at: tuple[int, int] | None = None  # (sentence index, words kept)
    repeat: int | None = None  # index of the sentence repeated
    generic: int | None = None  # index into GENERIC_TEXTS


def scene_facts(scene: Scene, scope: str = "all") -> set[tuple]:
    facts = set() if scope == "objects" else {("land_cover", scene.land_cover)}
    for g in scene.groups:
        facts |= {("kind", g.kind), ("count", g.kind, g.count), ("colour", g.kind, g.colour), ("cell", g.kind, g.cell)}
    return facts


def _group_facts(g: GroupClaim) -> set[tuple]:
    facts = {("kind", g.kind)}
    if g.count is not None:
        facts.add(("count", g.kind, g.count))
    if g.colour is not None:
        facts.add(("colour", g.kind, g.colour))
    if g.cell is not None:
        facts.add(("cell", g.kind, g.cell))
    return facts


def claimed_facts(claims: Claims) -> set[tuple]:
    if claims.generic is not None:
        return set()
    sentences = _sentence_facts(claims)
    if claims.truncate_at is not None:
        sentences = sentences[: claims.truncate_at[0]]  # the cut sentence claims nothing
    return set().union(*sentences) if sentences else set()


def _sentence_facts(claims: Claims) -> list[set[tuple]]:
    out = []
    if claims.scope == "all":
        out.append({("land_cover", claims.land_cover)} if claims.land_cover else set())
    out += [_group_facts(g) for g in claims.groups]
    return out


def quality(claims: Claims, scene: Scene) -> float:
    true = scene_facts(scene, claims.scope)
    said = claimed_facts(claims)
    fact_score = len(said & true) / len(said | true) if said | true else 0.0
    form = 1.0
    for op in claims.form:
        form *= FORM_FACTOR.get(op, 1.0)
    return round(fact_score * form, 4)


# ------------------------------------------------------------------------------------------------ rendering


def _group_sentence(g: GroupClaim) -> str:
    singular, plural = KIND_NOUN[g.kind]
    if g.count is None:
        n, noun, be = "some", plural, "are"
    else:
        n, noun, be = NUMBER_WORDS[g.count], (singular if g.count == 1 else plural), ("is" if g.count == 1 else "are")
    what = f"{g.colour} {noun}" if g.colour else noun
    where = f" {POSITION_PHRASE[POSITIONS[g.cell]]}" if g.cell is not None else ""
    return GROUP_TEMPLATES[g.template].format(n=n, N=n.capitalize(), what=what, be=be, where=where)


def sentences(claims: Claims) -> list[str]:
    out = []
    if claims.scope == "all":
        if claims.land_cover is None:
            out.append(VAGUE_OPENING)
        else:
            out.append(OPENINGS[claims.opening].format(lc=LAND_COVER_PHRASE[claims.land_cover]))
    out += [_group_sentence(g) for g in claims.groups]
    return out


def render_text(claims: Claims) -> str:
    if claims.generic is not None:
        return GENERIC_TEXTS[claims.generic]
    parts = sentences(claims)
    if claims.repeat is not None:
        i = min(claims.repeat, len(parts) - 1)
        parts = parts[: i + 1] + [parts[i]] * 2 + parts[i + 1 :]
    if claims.truncate_at is not None:
        i, kept = claims.truncate_at
        parts = parts[:i] + [" ".join(parts[i].split()[:kept])]
    return " ".join(parts)


def claims_from_scene(scene: Scene, rng: np.random.Generator, scope: str = "all") -> Claims:
    """The complete, correct text of a scene, with random phrasing and group order."""
    order = rng.permutation(len(scene.groups))
    groups = [
        GroupClaim(g.kind, g.count, g.colour, g.cell, int(rng.integers(len(GROUP_TEMPLATES))))
        for g in (scene.groups[i] for i in order)
    ]
    return Claims(scene.land_cover, groups, int(rng.integers(len(OPENINGS))), scope=scope)


# ------------------------------------------------------------------------------------------------ operators


def _other(rng, values, current):
    choices = [v for v in values if v != current]
    return choices[int(rng.integers(len(choices)))]


def apply_operator(name: str, claims: Claims, scene: Scene, rng: np.random.Generator) -> Claims | None:
    """A corrupted copy of `claims`, or None when the operator does not apply to this text.

    Replacement values are drawn uniformly from the same vocabulary as true values, so that across a dataset
    each phrase is as common in corrupted texts as in correct ones.
    """
    c = copy.deepcopy(claims)
    if c.generic is not None:
        return None
    groups = c.groups
    if name == "wrong_land_cover":
        if c.scope != "all" or c.land_cover is None:
            return None
        c.land_cover = _other(rng, LAND_COVERS, c.land_cover)
    elif name in ("wrong_count", "wrong_attribute", "wrong_position", "hallucinated_object"):
        attribute = {"wrong_count": "count", "wrong_attribute": "colour", "wrong_position": "cell"}.get(name, "kind")
        candidates = [g for g in groups if getattr(g, attribute) is not None]
        if not candidates:
            return None
        g = candidates[int(rng.integers(len(candidates)))]
        if name == "wrong_count":
            g.count = _other(rng, range(1, MAX_COUNT + 1), g.count)
        elif name == "wrong_attribute":
            g.colour = _other(rng, COLOURS, g.colour)
        elif name == "wrong_position":
            taken = {h.cell for h in groups if h is not g}
            g.cell = _other(rng, [p for p in range(9) if p not in taken], g.cell)
        else:  # an object kind that is not in the scene replaces one that is
            absent = [k for k in OBJECT_KINDS if scene.group(k) is None and all(h.kind != k for h in groups)]
            g.kind = absent[int(rng.integers(len(absent)))]
    elif name == "swapped_image":  # a correct text of another scene
        other = sample_truth(rng, "other", scene.size)
        if scene_facts(other, c.scope) == scene_facts(scene, c.scope):
            return None
        swapped = claims_from_scene(other, rng, scope=c.scope)
        swapped.opening = c.opening
        c = swapped
    elif name == "omission":  # vaguer: drop a detail, or a whole group when there are several
        # A truncated text keeps its sentences: dropping one would move the cut (it names a sentence index).
        options = [("drop", i) for i in range(len(groups)) if len(groups) > 1 and c.truncate_at is None]
        options += [
            (a, i) for i, g in enumerate(groups) for a in ("count", "colour", "cell") if getattr(g, a) is not None
        ]
        if not options:
            return None
        what, i = options[int(rng.integers(len(options)))]
        if what == "drop":
            del groups[i]
        else:
            setattr(groups[i], what, None)
    elif name == "repetition":
        c.repeat = int(rng.integers(len(sentences(c))))
        c.form.append(name)
    elif name == "truncation":
        parts = sentences(c)
        i = int(rng.integers(len(parts)))
        words = len(parts[i].split())
        if words < 3:
            return None
        c.truncate_at = (i, int(rng.integers(1, words - 1)))
        c.form.append(name)
    elif name == "generic":
        c.generic = int(rng.integers(len(GENERIC_TEXTS)))
    else:
        raise ValueError(f"operator {name!r} does not apply to captions")
    return c


# ------------------------------------------------------------------------------------------------ questions


@dataclass
class ClosedQA:
    """A closed question with its answer space; `answer` is the correct one."""

    qtype: str
    question: str
    answer: str
    space: tuple[str, ...]
    # The operator a wrong answer counts as, per wrong answer value (default: `wrong_<qtype>` style name).
    wrong_operator: dict[str, str] = field(default_factory=dict)


QTYPE_OPERATOR = {
    "count": "wrong_count",
    "land_cover": "wrong_land_cover",
    "position": "wrong_position",
    "colour": "wrong_attribute",
    "comparison": "wrong_comparison",
    "kind": "hallucinated_object",
}
CLOSED_QTYPES = ("presence", "count", "land_cover", "position", "colour", "comparison", "kind")
# The answer space of each type, for chance levels in reports (presence / comparison: yes or no).
QTYPE_CHANCE = {
    "presence": 1 / 2,
    "count": 1 / MAX_COUNT,
    "land_cover": 1 / len(LAND_COVERS),
    "position": 1 / len(POSITIONS),
    "colour": 1 / len(COLOURS),
    "comparison": 1 / 2,
    "kind": 1 / len(OBJECT_KINDS),
    "description": 1 / 2,
    # The benchmark formats the foundation is also asked in: four options; a box (IoU >= 0.5) by chance ~never.
    "multiple_choice": 1 / 4,
    "grounding": 0.0,
}


def closed_question(scene: Scene, rng: np.random.Generator, qtype: str | None = None, group=None) -> ClosedQA:
    """A closed question of `qtype` (drawn when None); questions about one object group ask about `group`
    (drawn among the scene's groups when None)."""
    qtype = qtype or CLOSED_QTYPES[int(rng.integers(len(CLOSED_QTYPES)))]
    present = [g.kind for g in scene.groups]
    if qtype == "presence":  # half about a present kind, half about an absent one
        absent = [k for k in OBJECT_KINDS if k not in present]
        pool = present if rng.random() < 0.5 else absent
        kind = pool[int(rng.integers(len(pool)))]
        answer = "yes" if kind in present else "no"
        wrong = {"yes": "hallucinated_object", "no": "missed_object"}
        return ClosedQA(qtype, f"Is there any {KIND_NOUN[kind][0]} in the image?", answer, ("yes", "no"), wrong)
    if qtype == "land_cover":
        names = tuple(LAND_COVER_NAME[lc] for lc in LAND_COVERS)
        return ClosedQA(
            qtype, "What is the main land cover type in this image?", LAND_COVER_NAME[scene.land_cover], names
        )
    g = group if group is not None else scene.groups[int(rng.integers(len(scene.groups)))]
    plural = KIND_NOUN[g.kind][1]
    if qtype == "kind":
        nouns = tuple(KIND_NOUN[k][0] for k in OBJECT_KINDS)
        question = f"What kind of object is {POSITION_PHRASE[g.position]} of the image?"
        return ClosedQA(qtype, question, KIND_NOUN[g.kind][0], nouns)
    if qtype == "count":
        space = tuple(str(n) for n in range(1, MAX_COUNT + 1))
        return ClosedQA(qtype, f"How many {plural} are there in the image?", str(g.count), space)
    if qtype == "position":
        return ClosedQA(qtype, f"Where are the {plural} located in the image?", POSITIONS[g.cell], POSITIONS)
    if qtype == "colour":
        return ClosedQA(qtype, f"What colour are the {plural} in the image?", g.colour, COLOURS)
    if qtype == "comparison":
        other = _other(rng, OBJECT_KINDS, g.kind)
        first, second = (g.kind, other) if rng.random() < 0.5 else (other, g.kind)
        answer = "yes" if scene.count(first) > scene.count(second) else "no"
        question = f"Are there more {KIND_NOUN[first][1]} than {KIND_NOUN[second][1]} in the image?"
        return ClosedQA(qtype, question, answer, ("yes", "no"))
    raise ValueError(f"unknown question type {qtype!r}")


def dense_questions(scene: Scene, rng: np.random.Generator) -> list[ClosedQA]:
    """Many short questions about one image (one vision pass, many supervised answers): the land cover, one
    present and one absent kind, and per object group its kind, count, colour and position, in random order."""
    questions = [closed_question(scene, rng, "land_cover")]
    present = {g.kind for g in scene.groups}
    for pool, answer in ((sorted(present), "yes"), ([k for k in OBJECT_KINDS if k not in present], "no")):
        kind = pool[int(rng.integers(len(pool)))]
        questions.append(
            ClosedQA("presence", f"Is there any {KIND_NOUN[kind][0]} in the image?", answer, ("yes", "no"))
        )
    for g in scene.groups:
        questions += [closed_question(scene, rng, qtype, group=g) for qtype in ("kind", "count", "colour", "position")]
    questions.append(closed_question(scene, rng, "comparison"))
    order = rng.permutation(len(questions))
    return [questions[i] for i in order]


DESCRIPTION_QUESTION = 'Is this description of the image correct? "{}" Answer yes or no.'
# The grounded caption operators of the preference pairs: what a description check can get wrong.
DESCRIPTION_OPERATORS = tuple(op for op in CAPTION_OPERATORS if op in GROUNDED_OPERATORS)


def description_check(scene: Scene, rng: np.random.Generator) -> ClosedQA:
    """Image-text matching as a closed question (the yes/no form of BLIP's image-text matching objective): a
    complete description of the scene, correct or, half the time, with one grounded error made by the same
    operators as the preference pairs' rejected captions, and whether it is correct."""
    claims, answer = claims_from_scene(scene, rng), "yes"
    if rng.random() < 0.5:
        for op in rng.permutation(DESCRIPTION_OPERATORS):
            wrong = apply_operator(str(op), claims, scene, rng)
            if wrong is not None:
                claims, answer = wrong, "no"
                break
    return ClosedQA("description", DESCRIPTION_QUESTION.format(render_text(claims)), answer, ("yes", "no"))


def dense_training_questions(scene: Scene, rng: np.random.Generator, descriptions: int = 0) -> list[ClosedQA]:
    """The foundation's training conversation: the questions of `dense_questions` except that presence is asked
    of every kind (one present and one absent kind per conversation would let one answer give the other away),
    then `descriptions` description checks, in random order."""
    questions = [q for q in dense_questions(scene, rng) if q.qtype != "presence"]
    present = {g.kind for g in scene.groups}
    for kind in OBJECT_KINDS:
        answer = "yes" if kind in present else "no"
        questions.append(
            ClosedQA("presence", f"Is there any {KIND_NOUN[kind][0]} in the image?", answer, ("yes", "no"))
        )
    questions += [description_check(scene, rng) for _ in range(descriptions)]
    order = rng.permutation(len(questions))
    return [questions[i] for i in order]


def wrong_answer(qa: ClosedQA, rng: np.random.Generator) -> tuple[str, str]:
    """A wrong answer from the same answer space, and the operator it counts as."""
    value = _other(rng, qa.space, qa.answer)
    return value, qa.wrong_operator.get(value, QTYPE_OPERATOR.get(qa.qtype, "wrong_answer"))


def degenerate_answer(answer: str, rng: np.random.Generator) -> tuple[str, str, float]:
    """A badly formed answer: (text, operator, quality)."""
    if rng.random() < 0.5:
        return " ".join([answer] * 3), "repetition", FORM_FACTOR["repetition"]
    return GENERIC_ANSWERS[int(rng.integers(len(GENERIC_ANSWERS)))], "generic", 0.0


def multiple_choice(qa: ClosedQA, rng: np.random.Generator, n_choices: int = 4) -> tuple[str, list[str], str]:
    """LHRS-Bench style: (choices string "A. x B. y ...", option values, answer letter)."""
    distractors = [v for v in qa.space if v != qa.answer]
    rng.shuffle(distractors)
    options = [qa.answer, *distractors[: n_choices - 1]]
    rng.shuffle(options)
    letters = "ABCD"[: len(options)]
    choices = " ".join(f"{letter}. {value}" for letter, value in zip(letters, options))
    return choices, options, letters[options.index(qa.answer)]


# ------------------------------------------------------------------------------------------------ grounding


def grounding_targets(scene: Scene) -> list[tuple[str, tuple[int, int, int, int]]]:
    """(referring expression, pixel box) for every object that a phrase identifies uniquely (groups of one)."""
    return [(f"the {g.colour} {KIND_NOUN[g.kind][0]}", g.objects[0].box) for g in scene.groups if g.count == 1]


CLASSIFICATION_QUESTION = (
    "Classify the image into one of the following classes: {}. Answer with one word or short phrase."
)


def grounding_question(expression: str) -> str:
    return GROUNDING_TEMPLATE.format(expression)


def classification_question() -> str:
    return CLASSIFICATION_QUESTION.format(", ".join(LAND_COVER_NAME[lc] for lc in LAND_COVERS))


def wrong_box(box, size: int, rng: np.random.Generator) -> tuple[int, int, int, int]:
    """A box of the same size elsewhere in the image that overlaps the true one by IoU < 0.5."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    for _ in range(100):
        nx, ny = int(rng.integers(0, max(1, size - w))), int(rng.integers(0, max(1, size - h)))
        ix = max(0, min(x2, nx + w) - max(x1, nx))
        iy = max(0, min(y2, ny + h) - max(y1, ny))
        inter = ix * iy
        if inter / (2 * w * h - inter) < 0.5:
            return (nx, ny, nx + w, ny + h)
    return (0, 0, w, h) if x1 > w or y1 > h else (size - w, size - h, size, size)


# ------------------------------------------------------------------------------------------------ parsing back


_NUMBER_VALUES = {word: n for n, word in NUMBER_WORDS.items()} | {"a": 1, "an": 1, "some": None, "several": None}
_KIND_OF = {noun: kind for kind, nouns in KIND_NOUN.items() for noun in nouns}
_COLOUR_SET = set(COLOURS)


def _find_phrase(text: str, phrases: dict) -> tuple[object, int] | tuple[None, int]:
    """The value of the longest phrase found in `text`, and where; (None, -1) if none."""
    best = (None, -1, 0)
    for phrase, value in phrases.items():
        at = text.find(phrase)
        if at >= 0 and len(phrase) > best[2]:
            best = (value, at, len(phrase))
    return best[0], best[1]


def parse_caption_facts(text: str) -> set[tuple]:
    """The facts a caption states, read back with the SynthRS vocabulary (the inverse of `render_text`).

    Used to score generated captions by fact accuracy: a sentence naming an object kind gives `("kind", k)` and,
    when stated, its count, colour and cell; a land-cover phrase gives `("land_cover", lc)`. Unknown wording is
    simply not a fact (so it earns nothing and costs nothing but recall).
    """
    import re

    facts = set()

    def words_only(part: str) -> str:
        return " " + " ".join(re.sub(r"[^a-z0-9 ]", " ", part).split()) + " "

    lowered = text.lower()
    land_cover, _ = _find_phrase(
        words_only(lowered),
        {f" {p} ": lc for lc, p in LAND_COVER_PHRASE.items()} | {f" {n} ": lc for lc, n in LAND_COVER_NAME.items()},
    )
    if land_cover is not None:
        facts.add(("land_cover", land_cover))
    cells = {f" {phrase}": POSITIONS.index(position) for position, phrase in POSITION_PHRASE.items()}
    for sentence in re.split(r"[.!?]", lowered):
        sentence = words_only(sentence)
        words = sentence.split()
        for i, word in enumerate(words):
            noun = word
            if i + 1 < len(words) and f"{word} {words[i + 1]}" in _KIND_OF:
                noun = f"{word} {words[i + 1]}"
            if noun not in _KIND_OF:
                continue
            kind = _KIND_OF[noun]
            facts.add(("kind", kind))
            before = words[max(0, i - 2) : i]
            colour = next((w for w in before if w in _COLOUR_SET), None)
            if colour:
                facts.add(("colour", kind, colour))
            count = next(
                (
                    _NUMBER_VALUES[w]
                    for w in reversed(before + words[max(0, i - 3) : max(0, i - 2)])
                    if w in _NUMBER_VALUES
                ),
                None,
            )
            if count is not None:
                facts.add(("count", kind, count))
            cell, _ = _find_phrase(sentence, cells)
            if cell is not None:
                facts.add(("cell", kind, cell))
            break  # one object group per sentence, as SynthRS writes them
    return facts


def caption_fact_scores(text: str, scene: Scene, scope: str = "all") -> dict[str, float]:
    """Precision, recall and Jaccard of the facts a caption states against the scene's true facts."""
    said, true = parse_caption_facts(text), scene_facts(scene, scope)
    if scope == "objects":
        said = {f for f in said if f[0] != "land_cover"}
    right = len(said & true)
    return {
        "precision": right / len(said) if said else 0.0,
        "recall": right / len(true) if true else 0.0,
        "jaccard": right / len(said | true) if said | true else 0.0,
    }
