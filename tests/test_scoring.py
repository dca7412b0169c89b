"""Scoring a pool (sharded, resumable, multi-process, no row lost), selection, curation metrics, CLIP."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import changed_parameters
from PIL import Image

from rs_reward.cli import main
from rs_reward.curation import parse_fractions, select
from rs_reward.data.io import Rejects
from rs_reward.data.pool import load_pool
from rs_reward.eval.curation_eval import curation_metrics
from rs_reward.scoring import ClipScorer, RandomScorer, read_scores, score_chunk


ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    """67 rows (not a multiple of the shard size), 7 of them bad in a different way each."""
    root = tmp_path_factory.mktemp("pool")
    (root / "images").mkdir()
    rng = np.random.default_rng(0)
    rows = []
    for i in range(60):
        Image.fromarray(rng.integers(0, 255, (56, 56, 3), dtype=np.uint8)).save(root / "images" / f"{i}.jpg")
        rows.append(
            {
                "id": f"r{i:03d}",
                "filepath": f"images/{i}.jpg",
                "title": f"a scene with {i % 5} ships",
                "question": "" if i % 2 else "How many ships?",
                "task": "caption" if i % 2 else "instruction",
            }
        )
    (root / "images" / "empty.jpg").write_bytes(b"")
    (root / "images" / "truncated.jpg").write_bytes((root / "images" / "0.jpg").read_bytes()[:200])
    (root / "images" / "text.jpg").write_text("not an image")
    Image.new("L", (9000, 8000)).save(root / "images" / "huge.png")  # 72 M pixels: over the guard
    bad = {
        "b-empty": "images/empty.jpg",
        "b-truncated": "images/truncated.jpg",
        "b-text": "images/text.jpg",
        "b-huge": "images/huge.png",
        "b-missing": "images/nope.jpg",
        "b-escape": "../../etc/passwd",
    }
    rows += [{"id": k, "filepath": v, "title": "a scene", "question": "", "task": "caption"} for k, v in bad.items()]
    rows.append({"id": "b-blank-text", "filepath": "images/1.jpg", "title": "  ", "question": "", "task": "caption"})
    pd.DataFrame(rows).to_csv(root / "pool.csv", index=False)
    return root / "pool.csv"


def test_pool_loader_rejects_rows_without_text(pool):
    rejects = Rejects()
    rows = load_pool(str(pool), rejects=rejects)
    assert len(rows) == 66 and [r["id"] for r in rejects.rows] == ["b-blank-text"]
    assert rows[0]["question"] == "How many ships?" and rows[1]["question"] == ""


def _score(pool, out, scorer="random", extra=()):
    recipe = ROOT / "recipes/tiny/score" / f"config_{scorer}.yaml"
    args = [
        "score",
        "--config",
        str(recipe),
        "--pool",
        str(pool),
        "--output_dir",
        str(out),
        "--shard_size",
        "8",
        *extra,
    ]
    assert main(args) == 0
    return read_scores(out), json.loads((out / "manifest.json").read_text())


def test_every_bad_image_becomes_a_reject_with_its_reason_and_no_row_is_lost(pool, tmp_path, tiny_reward_path):
    scores, manifest = _score(
        pool,
        tmp_path / "rm",
        "reward_model",
        ["--model_name_or_path", tiny_reward_path, "--min_pixels", "3136", "--max_pixels", "3136"],
    )
    rejects = {
        r["id"]: r["reason"] for r in map(json.loads, (tmp_path / "rm" / "rejects.jsonl").read_text().splitlines())
    }
    assert manifest["rows_in"] == 67 == manifest["rows_scored"] + manifest["rows_rejected"]  # 1 refused at load
    assert manifest["rows_rejected_at_load"] == 1
    assert set(rejects) == {"b-empty", "b-truncated", "b-text", "b-huge", "b-missing", "b-escape"}
    assert "empty image" in rejects["b-empty"] and "missing" in rejects["b-missing"]
    assert "escapes the image root" in rejects["b-escape"] and "too large" in rejects["b-huge"]
    assert "corrupt" in rejects["b-truncated"] or "unreadable" in rejects["b-truncated"]
    assert "unreadable" in rejects["b-text"]
    assert len(scores) == 60 and scores["id"].is_unique and np.isfinite(scores["score"]).all()
    assert list(scores.columns) == ["id", "score", "scorer", "task", "source"]
    assert (tmp_path / "rm" / "load_rejects.jsonl").read_text().count("b-blank-text") == 1


def test_non_finite_scores_are_rejected():
    class Nan:
        name = "nan"

        def score(self, images, questions, texts, ids):
            return np.array([np.nan if i == "a" else 1.0 for i in ids])

    rows = [
        {"id": i, "image": Image.new("RGB", (8, 8)), "question": "", "text": "t", "task": "caption", "source": "s"}
        for i in ("a", "b")
    ]
    scored, rejected, _ = score_chunk(Nan(), rows)
    assert [r["id"] for r in scored] == ["b"] and rejected == [{"id": "a", "reason": "non-finite score nan"}]


def test_same_scores_and_selection_twice(pool, tmp_path, tiny_reward_path):
    flags = ["--model_name_or_path", tiny_reward_path, "--min_pixels", "3136", "--max_pixels", "3136"]
    a, _ = _score(pool, tmp_path / "a", "reward_model", flags)
    b, _ = _score(pool, tmp_path / "b", "reward_model", flags)
    pd.testing.assert_frame_equal(a, b)
    np.testing.assert_array_equal(select(a, {"*": 0.3}), select(b, {"*": 0.3}))


def test_kill_during_scoring_then_resume_gives_the_uninterrupted_result(pool, tmp_path, tiny_reward_path):
    flags = [
        "--model_name_or_path",
        tiny_reward_path,
        "--min_pixels",
        "3136",
        "--max_pixels",
        "3136",
        "--batch_size",
        "2",
    ]
    reference, _ = _score(pool, tmp_path / "reference", "reward_model", flags)
    out = tmp_path / "killed"
    command = [
        sys.executable,
        "-m",
        "rs_reward.scripts.score",
        "--config",
        str(ROOT / "recipes/tiny/score/config_reward_model.yaml"),
        "--pool",
        str(pool),
        "--output_dir",
        str(out),
        "--shard_size",
        "8",
        *flags,
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(list((out / "shards").glob("scores-*.parquet"))) < 2:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    done = len(list((out / "shards").glob("scores-*.parquet")))
    assert 2 <= done < 9, f"the kill came after {done} of 9 chunks"
    assert not (out / "manifest.json").exists()
    resumed, manifest = _score(pool, out, "reward_model", flags)
    pd.testing.assert_frame_equal(resumed, reference)
    assert manifest["rows_scored"] + manifest["rows_rejected"] == 67


def test_two_processes_give_the_single_process_result(pool, tmp_path, tiny_reward_path, launch_two_cpu_processes):
    flags = ["--model_name_or_path", tiny_reward_path, "--min_pixels", "3136", "--max_pixels", "3136"]
    single, _ = _score(pool, tmp_path / "one", "reward_model", flags)
    command = [
        *launch_two_cpu_processes,
        "rs_reward.scripts.score",
        "--config",
        str(ROOT / "recipes/tiny/score/config_reward_model.yaml"),
        "--pool",
        str(pool),
        "--output_dir",
        str(tmp_path / "two"),
        "--shard_size",
        "8",
        *flags,
    ]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert result.returncode == 0, result.stderr[-3000:]
    two = read_scores(tmp_path / "two")
    manifest = json.loads((tmp_path / "two" / "manifest.json").read_text())
    assert manifest["processes"] == 2 and manifest["rows_scored"] + manifest["rows_rejected"] == 67
    pd.testing.assert_frame_equal(two, single, atol=1e-5, rtol=0)  # float round-off between thread counts


def test_two_machines_give_the_single_process_result(pool, tmp_path, tiny_reward_path, free_port):
    """`accelerate launch --num_machines 2`, one launch per machine rank on this machine with a local rendezvous
    (the stand-in for two nodes sharing a file system): both write their shards into one folder, the merge is the
    single-process result, every row scored once."""
    import sys

    flags = ["--model_name_or_path", tiny_reward_path, "--min_pixels", "3136", "--max_pixels", "3136"]
    single, _ = _score(pool, tmp_path / "one", "reward_model", flags)
    launches = []
    for rank in (0, 1):
        command = [sys.executable, "-m", "accelerate.commands.launch"]
        command += ["--config_file", str(ROOT / "accelerate_configs" / "cpu.yaml"), "--num_machines", "2"]
        command += ["--num_processes", "2", "--machine_rank", str(rank), "--main_process_ip", "127.0.0.1"]
        command += ["--main_process_port", str(free_port), "-m", "rs_reward.scripts.score"]
        command += ["--config", str(ROOT / "recipes/tiny/score/config_reward_model.yaml"), "--pool", str(pool)]
        command += ["--output_dir", str(tmp_path / "nodes"), "--shard_size", "8", *flags]
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        launches.append(subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env))
    outputs = [launch.communicate(timeout=300) for launch in launches]
    for launch, (_, err) in zip(launches, outputs):
        assert launch.returncode == 0, err[-3000:]
    manifest = json.loads((tmp_path / "nodes" / "manifest.json").read_text())
    assert manifest["processes"] == 2 and manifest["rows_scored"] + manifest["rows_rejected"] == 67
    nodes = read_scores(tmp_path / "nodes")
    assert nodes["id"].is_unique
    pd.testing.assert_frame_equal(nodes, single, atol=1e-5, rtol=0)
    assert sum("rows in" in out for out, _ in outputs) == 1, "one summary, from the main process of machine 0"


def test_a_folder_of_another_run_is_refused(pool, tmp_path):
    _score(pool, tmp_path / "r", "random")
    with pytest.raises(ValueError, match="another pool"):
        _score(pool, tmp_path / "r", "random", ["--shard_size", "16"])


def test_random_scorer_is_deterministic_per_id():
    a = RandomScorer(0).score(None, None, None, ids=["x", "y", "z"])
    b = RandomScorer(0).score(None, None, None, ids=["z", "x", "y"])
    assert a[0] == b[1] and a[2] == b[0] and ((a >= 0) & (a < 1)).all()
    assert not np.array_equal(a, RandomScorer(1).score(None, None, None, ids=["x", "y", "z"]))


def test_selection_per_task_with_ties_broken_by_id():
    scores = pd.DataFrame(
        {
            "id": ["d", "c", "b", "a", "e", "f"],
            "score": [1.0, 1.0, 1.0, 0.5, 2.0, 0.1],
            "task": ["caption"] * 4 + ["instruction"] * 2,
        }
    )
    keep = select(scores, parse_fractions("caption=0.5,instruction=0.5"))
    assert list(scores["id"][keep]) == ["c", "b", "e"], "ties at 1.0 keep the smaller ids"
    assert list(scores["id"][select(scores, {"*": 1 / 3})]) == ["b", "e"]
    assert list(scores["id"][select(scores, threshold=1.0)]) == ["d", "c", "b", "e"]
    with pytest.raises(ValueError):
        parse_fractions("caption=1.5")


def test_filter_writes_subsets_and_data_cards(pool, tmp_path):
    _score(pool, tmp_path / "s", "random")
    args = [
        "filter",
        "--config",
        str(ROOT / "recipes/tiny/filter/config_demo.yaml"),
        "--scores",
        str(tmp_path / "s"),
        "--pool",
        str(pool),
        "--output_dir",
        str(tmp_path / "f"),
        "--fractions",
        "0.3",
        "caption=0.3,instruction=0.6",
    ]
    assert main(args) == 0
    rows = [json.loads(line) for line in (tmp_path / "f" / "keep-0p3" / "sft.jsonl").open()]
    assert len(rows) == round(0.3 * 60)
    assert rows[0]["messages"][1]["role"] == "assistant" and rows[0]["images"][0].startswith("images/")
    per_task = [json.loads(line) for line in (tmp_path / "f" / "keep-caption0p3-instruction0p6" / "sft.jsonl").open()]
    assert (
        sum(r["task"] == "caption" for r in per_task) == 9 and sum(r["task"] == "instruction" for r in per_task) == 18
    )
    card = (tmp_path / "f" / "keep-0p3" / "README.md").read_text()
    assert "| task | caption |" in card and (tmp_path / "f" / "keep-0p3" / "score_histogram.png").is_file()
    assert (tmp_path / "f" / "keep-0p3" / "clip.csv").read_text().startswith("filepath,title")


def test_curation_metrics_on_known_scores():
    truth = pd.DataFrame({"id": list("abcdefghij"), "quality": [1, 1, 1, 0.9, 0.8, 0.5, 0.4, 0.2, 0.1, 0.0]})
    perfect = truth.rename(columns={"quality": "score"}).assign(task="caption")
    reverse = perfect.assign(score=-perfect["score"])
    good = curation_metrics(perfect, truth, fractions=(0.3, 0.5))
    bad = curation_metrics(reverse, truth, fractions=(0.3, 0.5))
    assert good["by_fraction"]["0.3"]["precision"] == 1.0 and good["by_fraction"]["0.5"]["precision"] == 1.0
    assert bad["by_fraction"]["0.3"]["precision"] == 0.0 and good["spearman_score_vs_true_quality"] == pytest.approx(
        1.0
    )
    assert good["good_share_in_pool"] == 0.5


def test_clip_scorer_counts_truncated_texts_and_prefers_the_matching_caption():
    from rs_reward.modeling import build_tiny

    model, processor = build_tiny("clip-tiny")
    scorer = ClipScorer(model, processor, batch_size=4)
    image = Image.new("RGB", (112, 112), "green")
    scores = scorer.score([image, image], ["", ""], ["forest", "forest " * 200])
    assert scorer.truncated == 1 and scores.shape == (2,) and np.all(np.abs(scores) <= 1.0 + 1e-5)


def _contrastive_worker(rank, world, port, images, texts, scale, out):
    import torch.distributed as dist

    from rs_reward.trainers.clip import contrastive_loss

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    half = len(images) // world
    image = images[rank * half : (rank + 1) * half].clone().requires_grad_(True)
    loss = contrastive_loss(image, texts[rank * half : (rank + 1) * half], scale) / world
    loss.backward()
    torch.save({"loss": loss.detach(), "grad": image.grad}, out / f"rank{rank}.pt")
    dist.destroy_process_group()


def test_gathered_contrastive_loss_equals_the_single_process_loss(tmp_path, free_port):
    import torch.multiprocessing as mp

    from rs_reward.trainers.clip import contrastive_loss

    torch.manual_seed(0)
    images, texts, scale = torch.randn(8, 16), torch.randn(8, 16), torch.tensor(2.0)
    full = images.clone().requires_grad_(True)
    single = contrastive_loss(full, texts, scale)
    single.backward()
    port = free_port
    mp.spawn(_contrastive_worker, args=(2, port, images, texts, scale, tmp_path), nprocs=2, join=True)
    parts = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    for part in parts:
        torch.testing.assert_close(part["loss"], single.detach())
    # Each process gets the exact gradient of the global loss for its own rows (the training loss is scaled by the
    # world size so that DDP's averaging over processes leaves that gradient).
    torch.testing.assert_close(torch.cat([p["grad"] for p in parts]), full.grad)


def test_a_bad_jsonl_line_is_rejected_not_fatal(tmp_path):
    (tmp_path / "pool.jsonl").write_text(
        '{"id": "a", "image": "x.jpg", "text": "ok"}\n{broken\n{"id": "c", "image": "y.jpg", "text": "fine"}\n'
    )
    rejects = Rejects()
    rows = load_pool(str(tmp_path / "pool.jsonl"), rejects=rejects)
    assert [r["id"] for r in rows] == ["a", "c"]
    assert rejects.rows[0]["reason"].startswith("line 2 is not valid JSON")


@pytest.mark.parametrize("recipe", ["config_all.yaml", "config_top30_scorers.yaml", "config_top30_clipscore.yaml"])
def test_clip_recipes_train_two_steps(recipe, tmp_path):
    from PIL import Image
    from transformers import CLIPModel

    from rs_reward.cli import main
    from rs_reward.modeling import tiny_model_path

    (tmp_path / "images").mkdir()
    lines = ["filepath,title"]
    for i in range(8):
        Image.new("RGB", (64, 64), (30 * i, 80, 200 - 20 * i)).save(tmp_path / "images" / f"{i}.png")
        lines.append(f"images/{i}.png,a satellite image with {i} ships")
    (tmp_path / "pairs.csv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "clip"
    root = Path(__file__).resolve().parent.parent
    args = [
        "clip",
        "--config",
        str(root / "recipes/clip-vit-l14/clip" / recipe),
        "--model_name_or_path",
        tiny_model_path("clip-tiny"),
        "--train_file",
        str(tmp_path / "pairs.csv"),
        "--image_root",
        str(tmp_path),
        "--output_dir",
        str(out),
        "--global_batch_size",
        "4",
        "--max_steps",
        "2",
        "--warmup_steps",
        "1",
    ]
    assert main(args) == 0
    before = CLIPModel.from_pretrained(tiny_model_path("clip-tiny")).state_dict()
    after = CLIPModel.from_pretrained(out).state_dict()
    assert after.keys() == before.keys() and changed_parameters(before, after)
