"""The browser pages: what they hold (bounded samples, escaped texts, thumbnails) and, in headless Chromium, that
their images decode, the slider moves the cut, an injected `<script>` does not run and the console stays clean."""

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from rs_reward.cli import main
from rs_reward.pages import write_bon_page, write_grpo_page
from rs_reward.pages.browser import find_chromium


ROOT = Path(__file__).resolve().parent.parent
INJECTED = "<script>window.__pwned = 1</script><b>bold?</b>"


def _pool(root: Path, instructions: int) -> Path:
    """8 captions (one holding a script tag) and `instructions` answers, with a SynthRS-style truth file."""
    (root / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows, truth = [], []
    for i in range(8 + instructions):
        caption = i < 8
        Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(root / "images" / f"{i}.png")
        rows.append(
            {
                "id": f"r{i:04d}",
                "filepath": f"images/{i}.png",
                "title": (INJECTED if i == 3 else f"farmland with {i % 4} ships") if caption else str(i % 5),
                "question": "" if caption else "How many ships?",
                "task": "caption" if caption else "instruction",
            }
        )
        truth.append({"id": f"r{i:04d}", "quality": float(i % 3 != 0), "operators": "" if i % 3 else "wrong_count"})
    pd.DataFrame(rows).to_csv(root / "pool.csv", index=False)
    pd.DataFrame(truth).to_parquet(root / "truth.parquet")
    return root / "pool.csv"


def _score(pool: Path, out: Path, seed: int) -> Path:
    recipe = str(ROOT / "recipes/tiny/score/config_random.yaml")
    assert main(["score", "--config", recipe, "--pool", str(pool), "--output_dir", str(out), "--seed", str(seed)]) == 0
    return out


def _browse(scores: Path, compare: Path, out: Path) -> Path:
    args = ["browse", "--scores", str(scores), "--compare", str(compare), "--output_dir", str(out)]
    assert (
        main(
            [
                *args,
                "--max_rows",
                "4",
                "--sample_rows",
                "10",
                "--scatter_points",
                "20",
                "--fractions",
                "0.3",
                "caption=0.5,instruction=0.2",
            ]
        )
        == 0
    )
    return out / "index.html"


# per task: top 4 + bottom 4 + the slider's sample (all 8 captions, 10 answers) + 4 largest disagreements
IMAGES_ON_PAGE = (4 + 4 + 8 + 4) + (4 + 4 + 10 + 4)


@pytest.fixture(scope="module")
def pool_page(tmp_path_factory):
    root = tmp_path_factory.mktemp("pages")
    pool = _pool(root / "pool", 30)
    return _browse(_score(pool, root / "a", 0), _score(pool, root / "b", 1), root / "page")


def test_pool_page_holds_bounded_views_with_thumbnails_and_escaped_texts(pool_page, tmp_path):
    html = pool_page.read_text()
    assert html.count('<section class="task"') == 2
    assert html.count('<img src="thumbs/') == IMAGES_ON_PAGE
    assert "data:image" not in html  # thumbnails are files beside the page, never inlined
    for thumb in (pool_page.parent / "thumbs").glob("*.jpg"):
        with Image.open(thumb) as image:
            assert image.format == "JPEG" and max(image.size) <= 128
    assert INJECTED not in html and "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in html
    assert html.count("wrong_count") > 0 and "true quality" in html  # truth.parquet beside the pool was found
    assert "caption=0.5,instruction=0.2" in html and "Largest rank disagreements" in html

    # ten times the rows: the same views, about the same size (written over a page of the small pool)
    _browse(pool_page.parent.parent / "a", pool_page.parent.parent / "b", tmp_path / "page")
    big = _pool(tmp_path / "big", 300)
    big_page = _browse(_score(big, tmp_path / "a", 0), _score(big, tmp_path / "b", 1), tmp_path / "page")
    big_html = big_page.read_text()
    assert big_html.count('<img src="thumbs/') == IMAGES_ON_PAGE
    assert 0.8 < len(big_html) / len(html) < 1.25
    # the thumbnails folder holds exactly what the page shows (an earlier page's leftovers are removed)
    referenced = set(re.findall(r'<img src="thumbs/([0-9a-f]+\.jpg)"', big_html))
    assert {p.name for p in (big_page.parent / "thumbs").iterdir()} == referenced


def test_a_bad_fraction_fails_before_anything_is_written(pool_page, tmp_path):
    scores = pool_page.parent.parent / "a"
    with pytest.raises(ValueError, match="keep fraction must be in"):
        main(["browse", "--scores", str(scores), "--fractions", "1.5", "--output_dir", str(tmp_path / "page")])
    assert not (tmp_path / "page").exists()


def test_filter_writes_the_page_and_links_it_from_each_card(tmp_path):
    pool = _pool(tmp_path / "pool", 12)
    scores = _score(pool, tmp_path / "s", 0)
    args = ["filter", "--config", str(ROOT / "recipes/tiny/filter/config_demo.yaml"), "--scores", str(scores)]
    assert main([*args, "--pool", str(pool), "--output_dir", str(tmp_path / "f"), "--fractions", "0.3", "0.5"]) == 0
    html = (tmp_path / "f" / "browse" / "index.html").read_text()
    assert "<code>0.3</code>" in html and "<code>0.5</code>" in html
    assert "../browse/index.html" in (tmp_path / "f" / "keep-0p3" / "README.md").read_text()


def _bon_page(tmp_path: Path) -> Path:
    image = tmp_path / "scene.png"
    Image.new("RGB", (64, 64), (20, 120, 40)).save(image)
    rows = [
        {"id": f"q{i}", "task": "vqa", "images": [str(image)], "question": "How many ships?", "answer": "2"}
        for i in range(3)
    ]
    candidates = [["2", "3", INJECTED, "2"] for _ in rows]
    metrics = [[1.0, 0.0, 0.0, 1.0] for _ in rows]
    scores = {"score_model": [[0.1, 0.9, 0.2, 0.3] for _ in rows]}
    picks = {"score_model": [1, 1, 1], "oracle": [0, 0, 0]}
    results = {"score_model": {1: {"mean": 0.5}, 4: {"mean": 0.0}}, "oracle": {1: {"mean": 0.5}, 4: {"mean": 1.0}}}
    return write_bon_page(
        tmp_path / "bon",
        rows=rows,
        candidates=candidates,
        metrics=metrics,
        scores=scores,
        picks=picks,
        results=results,
        metric_names={"vqa": "correct"},
        n=4,
    )


def test_bon_page_marks_each_pick_right_or_wrong(tmp_path):
    html = _bon_page(tmp_path).read_text()
    assert html.count('class="badge wrong">score_model &rarr; #1') == 3
    assert html.count('class="badge right">oracle &rarr; #0') == 3
    assert INJECTED not in html and html.count('<img src="thumbs/') == 3


def _grpo_page(tmp_path: Path) -> Path:
    logs = tmp_path / "completions"
    logs.mkdir()
    image = Image.new("RGB", (64, 64), (200, 30, 30))
    for step in (5, 10):
        prompt = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Describe it."}]}]
        frame = pd.DataFrame(
            {
                "step": [step] * 4,
                "prompt": [prompt] * 4,
                "completion": [[{"role": "assistant", "content": text}] for text in ("red", INJECTED, "a", "b")],
                "accuracy": [1.0, 0.0, 0.5, 0.2],
                "id": ["p0", "p0", "p1", "p1"],
                "rule": [None] * 4,
                "score": [0.3, -0.2, 0.1, 0.0],
                "advantage": [1.0, -1.0, 0.5, -0.5],
            }
        )
        frame.to_parquet(logs / f"completions_{step:05d}.parquet")
    return write_grpo_page(tmp_path / "grpo", logs, image_of={"p0": image, "p1": image}.get)


def test_grpo_page_shows_each_prompt_with_its_completions_and_rewards(tmp_path):
    html = _grpo_page(tmp_path).read_text()
    assert html.count('<section class="step"') == 2 and html.count('class="card prompt"') == 4
    assert html.count('<img src="thumbs/') == 4 and "Describe it." in html
    assert all(f"<th>{column}</th>" in html for column in ("accuracy", "rule", "score", "advantage"))
    assert INJECTED not in html


# ---------------------------------------------------------------------------------------------------- in Chromium


@pytest.fixture(scope="module")
def browser():
    found = find_chromium()
    try:
        import selenium  # noqa: F401
    except ImportError:
        found = None
    if found is None:
        reason = "no Chromium with ChromeDriver (Debian packages chromium, chromium-driver) or no selenium"
        if os.environ.get("RS_REWARD_REQUIRE_BROWSER") == "1":
            pytest.fail(f"RS_REWARD_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    from rs_reward.pages.browser import chromium

    with chromium() as driver:
        yield driver


def _load(driver, page: Path) -> dict:
    """Open the page; return its images' decode state, the console's errors and whether the injection ran."""
    from rs_reward.pages.browser import open_page

    driver.get_log("browser")  # drop what an earlier page logged
    open_page(driver, page)
    state = driver.execute_script(
        "return {images: Array.from(document.images).map(i => i.naturalWidth), pwned: window.__pwned === 1,"
        " bold: Array.from(document.querySelectorAll('b')).filter(b => b.textContent === 'bold?').length}"
    )
    state["errors"] = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    return state


def test_pool_page_in_chromium(browser, pool_page):
    state = _load(browser, pool_page)
    assert len(state["images"]) == IMAGES_ON_PAGE and min(state["images"]) > 0
    assert not state["pwned"] and state["errors"] == []
    assert "<script>window.__pwned = 1</script>" in browser.find_element("tag name", "body").text

    section = browser.find_elements("css selector", "section.task")[1]  # instructions: 30 rows
    label = section.find_element("css selector", ".kept-count")
    slider = section.find_element("css selector", "input[type=range]")
    assert label.text.startswith("30 % kept: 9 of 30 rows")
    kept_before = len(section.find_elements("css selector", "tr.kept"))
    from selenium.webdriver.common.keys import Keys

    for _ in range(40):
        slider.send_keys(Keys.ARROW_RIGHT)
    assert label.text.startswith("70 % kept: 21 of 30 rows") and "precision" in label.text
    assert len(section.find_elements("css selector", "tr.kept")) > kept_before
    sample = section.find_elements("css selector", "tr[data-rank]")
    ranks = [int(tr.get_attribute("data-rank")) for tr in sample]
    shown = [r for tr, r in zip(sample, ranks) if tr.is_displayed()]
    # the 5 sampled rows just above the cut and the (at most 5) just below, nothing else
    assert shown == sorted(r for r in ranks if r <= 21)[-5:] + sorted(r for r in ranks if r > 21)[:5]


def test_bon_and_grpo_pages_in_chromium(browser, tmp_path):
    for page, images in ((_bon_page(tmp_path), 3), (_grpo_page(tmp_path), 4)):
        state = _load(browser, page)
        assert len(state["images"]) == images and min(state["images"]) > 0, page
        assert not state["pwned"] and state["bold"] == 0 and state["errors"] == [], page


def test_browse_takes_a_screenshot(browser, pool_page, tmp_path):
    from rs_reward.pages.browser import screenshot

    png = screenshot(pool_page, tmp_path / "page.png", width=900, height=700)
    with Image.open(png) as image:
        assert image.size == (900, 700) and len(set(image.convert("L").getdata())) > 16  # not a blank page
