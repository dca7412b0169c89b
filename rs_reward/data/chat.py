"""The scored transcript, in one place for training, evaluation, scoring, GRPO rewards and best-of-N.

The paper's layout: user turn = image + question (empty string for captions), assistant turn = the text, no
generation prompt; the score is read at the last token of the transcript. Images travel in their own list
(never inline in message content: Arrow adds `image: None` to text blocks and the template then renders them
as images).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import field

from ..answers import extract_choice


# Prompt layouts of the RS benchmarks (VHM / GeoChat grounding, LHRS-Bench multiple choice), shared by the
# evaluation harness, the RL prompts and SynthRS, so training and evaluation ask the same way.
GROUNDING_TEMPLATE = (
    "Output the bounding box of the following object in the image. <|object_ref_start|>{}<|object_ref_end|>"
)
MC_SUFFIX = "\nChoices: {} Answer from the given choices with A., B., C., D., etc."

# How an answer is asked for, read from the question's wording (the templates above): what a reader of a score
# model's accuracy needs beside the corruption operator (a wrong colour is one word in a caption, one option
# letter in a multiple-choice answer).
ANSWER_FORMATS = ("caption", "question", "multiple_choice", "grounding")


def answer_format(question: str | None) -> str:
    """`caption` (no question), `multiple_choice` (the MC suffix's choices), `grounding` (an object reference),
    else `question` (a short or open answer: VQA, classification, open questions)."""
    if not question:
        return "caption"
    if "\nChoices: " in question:
        return "multiple_choice"
    if "<|object_ref_start|>" in question:
        return "grounding"
    return "question"


_OPTION = re.compile(r"(?:^|\s)([A-H])\. (.+?)(?=\s+[A-H]\. |$)", re.S)
_MC_INSTRUCTION = MC_SUFFIX.split("{}")[1].strip()  # what follows the listed choices


def parse_choices(question: str | None) -> dict[str, str]:
    """The options of a multiple-choice question asked with `MC_SUFFIX` ("A. x B. y ..."), as {letter: option};
    empty for any other question, or when the choices are written another way."""
    if answer_format(question) != "multiple_choice":
        return {}
    listed = question.split("\nChoices: ", 1)[1].split(_MC_INSTRUCTION, 1)[0]
    return dict(_OPTION.findall(listed.strip()))


def resolve_choice(question: str | None, answer: str) -> str:
    """A multiple-choice answer with the option it names written after it ("B" -> "B (red)"); any other answer,
    or one that names no listed letter, unchanged.

    What a score model with `score_resolve_choices` reads: judging "B" needs the letter looked up among the
    choices before the option can be checked against the image, a step a small model learns slowly (data card,
    row 14); written out, the option is judged as a short answer is."""
    options = parse_choices(question)
    letter = extract_choice(answer, "".join(options)) if options else None
    return f"{answer} ({options[letter]})" if letter else answer


# Longest question or RL prompt a generator is asked, in characters (at least one per token, so also a bound on
# tokens): TRL's GRPO and generation have no prompt limit of their own, and one 20,000-word prompt would pad its
# batch to that length. A longer prompt is rejected (never cut: a cut question asks something else).
MAX_PROMPT_CHARS = 8192

# What opens an assistant turn in the Qwen chat template: answer tokens (labels, the score model's likelihood
# term) start after it.
ANSWER_MARKER = "<|im_start|>assistant\n"


# Where the image goes in the user turn of a scored transcript. The authors' reward-model training and pool
# scoring put it first (`[image, question]`, the default here, as training must match); their GRPO reward server
# and both best-of-N scripts put the question first (`[question, image]`). Scoring, GRPO rewards and best-of-N
# take `prompt_order` to match either.
PROMPT_ORDERS = ("image_first", "text_first")


def prompt_order_field():
    """The `prompt_order` field of every task that scores with a score model (one help text, one set of choices)."""
    return field(
        default="image_first",
        metadata={
            "help": "Image place in the scored user turn: image_first (as the score model trains; the authors' pool "
            "scoring) or text_first (the authors' GRPO reward server and best-of-N scripts).",
            "choices": list(PROMPT_ORDERS),
        },
    )


def scored_conversation(
    question: str | None,
    answer: str,
    with_image: bool = True,
    prompt_order: str = "image_first",
    resolve_choices: bool = False,
) -> list[dict]:
    """The conversation a score model reads: `[user: (image) + question, assistant: answer]` (`prompt_order`
    "text_first": `[user: question + image, ...]`; `resolve_choices`: a multiple-choice answer followed by the
    option it names, `resolve_choice`)."""
    if prompt_order not in PROMPT_ORDERS:
        raise ValueError(f"prompt_order must be one of {PROMPT_ORDERS}, got {prompt_order!r}")
    if resolve_choices:
        answer = resolve_choice(question, answer)
    user = [{"type": "text", "text": question or ""}]
    if with_image:
        user.insert(0 if prompt_order == "image_first" else 1, {"type": "image"})
    return [
        {"role": "user", "content": user},
        {"role": "assistant", "content": [{"type": "text", "text": answer}]},
    ]


def resolves_choices(model) -> bool:
    """Whether a score model reads multiple-choice answers with their option written out (its config's
    `score_resolve_choices`, saved with it; absent: the paper's layout, the letter alone)."""
    return bool(getattr(getattr(model, "config", None), "score_resolve_choices", False))


def render(processor, conversation: list[dict], add_generation_prompt: bool = False) -> str:
    return processor.apply_chat_template(conversation, tokenize=False, add_generation_prompt=add_generation_prompt)


def truncate_texts(tokenizer, texts: Sequence[str], max_tokens: int | None) -> tuple[list[str], list[int], int]:
    """Each text cut to its first `max_tokens` tokens (None: no limit); returns (texts, token counts after the cut,
    how many were cut). Memory is then bounded by tokens whatever the input (a 20,000-word caption included)."""
    ids = tokenizer(list(texts), add_special_tokens=False)["input_ids"] if len(texts) else []
    out, lengths, cut = [], [], 0
    for text, tokens in zip(texts, ids):
        if max_tokens is not None and len(tokens) > max_tokens:
            text, tokens, cut = tokenizer.decode(tokens[:max_tokens]), tokens[:max_tokens], cut + 1
        out.append(text)
        lengths.append(len(tokens))
    return out, lengths, cut


def encode_scored(
    processor,
    images: Sequence,
    questions: Sequence[str | None],
    answers: Sequence[str],
    prompt_order: str = "image_first",
    resolve_choices: bool = False,
):
    """Tokenise a batch of (image or None, question, answer) for a score model, padded as the tokenizer says
    (`resolve_choices`: as the model's config says, `resolves_choices`).

    Returns a `BatchFeature` with `input_ids`, `attention_mask` and, when any row has an image,
    `pixel_values`, `image_grid_thw` and `mm_token_type_ids` (Qwen2-VL raises without the last).
    """
    if not (len(images) == len(questions) == len(answers)):
        raise ValueError(
            f"images, questions and answers differ in length: {len(images)}, {len(questions)}, {len(answers)}"
        )
    texts = [
        render(processor, scored_conversation(q, a, image is not None, prompt_order, resolve_choices))
        for image, q, a in zip(images, questions, answers)
    ]
    present = [image for image in images if image is not None]
    kwargs = {"images": present} if present else {}
    return processor(text=texts, padding=True, return_tensors="pt", **kwargs)


def generation_prompt(processor, question: str, with_image: bool = True) -> str:
    """The user turn (image + question) rendered with the generation prompt, for sampling answers."""
    user = [{"type": "text", "text": question}]
    if with_image:
        user.insert(0, {"type": "image"})
    return render(processor, [{"role": "user", "content": user}], add_generation_prompt=True)
