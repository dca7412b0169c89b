"""What `--push_to_hub` would upload, for every task that writes a model or a dataset: the repo, its type and
privacy, the file list (safetensors weights, processor, the task's own card; no checkpoints, pickles, rejects or
files from outside the folder), and the card's Hub metadata. `huggingface_hub.HfApi` is patched: nothing leaves
the machine."""

import io
import json
from pathlib import Path
from types import SimpleNamespace

import pyarrow.parquet as pq
import pytest
from conftest import write_sft_rows
from huggingface_hub import HfApi
from huggingface_hub.repocard import metadata_load
from huggingface_hub.utils import filter_repo_objects
from PIL import Image

from rs_reward.cli import main
from rs_reward.data.synthrs import SynthRSConfig, build


ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def uploads(monkeypatch):
    """Every create_repo / upload_folder call, with the files upload_folder would send (its own filter)."""
    calls = []

    def create_repo(self, repo_id, *, repo_type=None, private=None, exist_ok=False, **kwargs):
        calls.append({"call": "create_repo", "repo_id": repo_id, "repo_type": repo_type, "private": private})
        return SimpleNamespace(repo_id=repo_id if "/" in repo_id else f"me/{repo_id}")

    def upload_folder(self, *, repo_id, folder_path, repo_type=None, ignore_patterns=None, **kwargs):
        folder = Path(folder_path)
        every = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
        files = sorted(filter_repo_objects(every, ignore_patterns=ignore_patterns))
        card = metadata_load(folder / "README.md")
        calls.append(
            {
                "call": "upload_folder",
                "repo_id": repo_id,
                "repo_type": repo_type,
                "folder": folder,
                "files": files,
                "card": card,
                "card_text": (folder / "README.md").read_text(),
            }
        )

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    return calls


def _one_push(calls, repo_id, repo_type="model", private=True):
    assert [c["call"] for c in calls] == ["create_repo", "upload_folder"], "one repo, one commit"
    created, uploaded = calls
    assert created["repo_id"] == repo_id and created["private"] is private and created["repo_type"] == repo_type
    # a bare name goes to the token's account (here "me")
    assert (
        uploaded["repo_id"] == (repo_id if "/" in repo_id else f"me/{repo_id}") and uploaded["repo_type"] == repo_type
    )
    files = uploaded["files"]
    assert "README.md" in files
    assert not [f for f in files if f.endswith((".bin", ".pt", ".pth", ".pkl"))], "pickles are never uploaded"
    assert not [f for f in files if f.startswith(("checkpoint-", ".", "_")) or "/." in f or ".cache" in f]
    assert "rejects.jsonl" not in files
    return uploaded


def _model_push(uploaded, *, pipeline_tag, tags):
    files = uploaded["files"]
    assert any(f.endswith(".safetensors") for f in files), files
    assert "config.json" in files or "adapter_config.json" in files
    assert "tokenizer.json" in files and any(f in files for f in ("processor_config.json", "preprocessor_config.json"))
    card = uploaded["card"]
    assert card["license"] == "apache-2.0" and card["pipeline_tag"] == pipeline_tag
    assert card["library_name"] in ("transformers", "peft") and set(tags) <= set(card["tags"])
    # local names (tiny: aliases, folders) stay out of the metadata, which the Hub reads as repo ids
    assert "base_model" not in card and "datasets" not in card
    assert "arXiv 2503.00743" in uploaded["card_text"]


@pytest.fixture(scope="module")
def synthrs(tmp_path_factory):
    config = SynthRSConfig.only(
        output_dir=str(tmp_path_factory.mktemp("rs") / "synthrs"),
        caption_pairs_train=8,
        caption_pairs_test=4,
        instruction_pairs_train=8,
        num_workers=1,
    )
    return build(config, progress=False)


def test_reward_push_uploads_the_model_with_its_own_card(synthrs, tmp_path, uploads):
    out = tmp_path / "rm"
    args = [
        "reward",
        "--config",
        str(ROOT / "recipes/tiny/reward/config_demo.yaml"),
        "--model_name_or_path",
        "tiny:qwen2-vl-tiny",
        "--dataset_name",
        str(synthrs / "preference" / "train"),
        "--eval_dataset_name",
        str(synthrs / "preference" / "test"),
        "--output_dir",
        str(out),
        "--max_steps",
        "2",
        "--save_strategy",
        "steps",
        "--save_steps",
        "1",
        "--report_to",
        "none",
        "--push_to_hub",
        "true",
        "--hub_model_id",
        "me/rs-score",
        "--hub_private_repo",
        "true",
    ]
    assert main(args) == 0
    assert (out / "checkpoint-1").is_dir() and (out / "training_args.bin").is_file()
    uploaded = _one_push(uploads, "me/rs-score")
    _model_push(uploaded, pipeline_tag="text-classification", tags=["reward-model", "remote-sensing"])
    assert "model.safetensors" in uploaded["files"] and "figures/score_histogram.png" in uploaded["files"]
    # the card pushed is the task's (data, hyper-parameters, held-out metrics), not TRL's generic one
    assert "## Evaluation (held-out pairs)" in uploaded["card_text"] and '"world_size": 1' in uploaded["card_text"]


def test_a_hub_model_id_becomes_the_base_model_and_dataset_metadata(tmp_path):
    from rs_reward.hub import reward_model_card

    path = reward_model_card(
        tmp_path,
        base_model="Qwen/Qwen2-VL-7B-Instruct",
        datasets=["you/rs-preferences", str(tmp_path)],
        hyperparameters={},
    )
    card = metadata_load(path)
    assert card["base_model"] == "Qwen/Qwen2-VL-7B-Instruct" and card["datasets"] == ["you/rs-preferences"]
    assert str(tmp_path) in path.read_text(), "the local folder is still named in the text"


@pytest.fixture
def sft_file(tmp_path):
    return write_sft_rows(tmp_path, 4)


def test_sft_push(sft_file, tmp_path, uploads):
    out = tmp_path / "sft-out"
    args = ["sft", "--config", str(ROOT / "recipes/tiny/sft/config_pretrain.yaml")]
    args += ["--model_name_or_path", "tiny:qwen2-vl-tiny", "--dataset_name", str(sft_file), "--output_dir", str(out)]
    args += ["--max_steps", "1", "--per_device_train_batch_size", "2", "--report_to", "none"]
    args += ["--push_to_hub", "true", "--hub_private_repo", "false"]
    assert main(args) == 0
    uploaded = _one_push(uploads, "sft-out", private=False)
    _model_push(uploaded, pipeline_tag="image-text-to-text", tags=["sft", "remote-sensing"])


def test_grpo_push(tmp_path, uploads, tiny_generator_path, tiny_reward_path, gpu_recipe_on_cpu):
    (tmp_path / "images").mkdir()
    rows = []
    for i in range(4):
        Image.new("RGB", (56, 56), (50 * i, 90, 60)).save(tmp_path / "images" / f"{i}.png")
        prompt = [{"role": "user", "content": "How many ships? Answer with one word or number."}]
        rows.append({"id": f"p{i}", "images": [f"images/{i}.png"], "prompt": prompt, "solution": "2"})
        rows[-1]["reward_type"] = "em"
    (tmp_path / "rl.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "grpo-out"
    args = ["grpo", "--config", str(ROOT / "recipes/tiny/grpo/config_demo.yaml"), *gpu_recipe_on_cpu]
    args += ["--model_name_or_path", str(tiny_generator_path), "--reward_model_name_or_path", str(tiny_reward_path)]
    args += ["--dataset_name", str(tmp_path / "rl.jsonl"), "--output_dir", str(out), "--max_steps", "1"]
    args += ["--max_completion_length", "4", "--per_device_train_batch_size", "4"]
    args += ["--push_to_hub", "true", "--hub_model_id", "me/rs-grpo", "--hub_private_repo", "true"]
    assert main(args) == 0
    uploaded = _one_push(uploads, "me/rs-grpo")
    _model_push(uploaded, pipeline_tag="image-text-to-text", tags=["grpo", "remote-sensing"])
    assert '"reward_funcs"' in uploaded["card_text"]


def test_clip_push(tmp_path, uploads):
    from rs_reward.modeling import tiny_model_path

    (tmp_path / "images").mkdir()
    lines = ["filepath,title"]
    for i in range(4):
        Image.new("RGB", (64, 64), (60 * i, 80, 200 - 40 * i)).save(tmp_path / "images" / f"{i}.png")
        lines.append(f"images/{i}.png,a satellite image with {i} ships")
    (tmp_path / "pairs.csv").write_text("\n".join(lines) + "\n")
    args = ["clip", "--config", str(ROOT / "recipes/clip-vit-l14/clip/config_all.yaml")]
    args += ["--model_name_or_path", tiny_model_path("clip-tiny"), "--train_file", str(tmp_path / "pairs.csv")]
    args += ["--output_dir", str(tmp_path / "clip-out"), "--global_batch_size", "4", "--max_steps", "1"]
    args += ["--warmup_steps", "1", "--push_to_hub", "true", "--hub_model_id", "me/rs-clip"]
    assert main(args) == 0
    uploaded = _one_push(uploads, "me/rs-clip", private=None)
    _model_push(uploaded, pipeline_tag="zero-shot-image-classification", tags=["clip", "remote-sensing"])


def test_filter_pushes_each_subset_as_a_dataset_repo_with_its_images(tmp_path, uploads):
    (tmp_path / "images").mkdir()
    rows = []
    for i in range(10):
        Image.new("RGB", (32, 32), (20 * i, 100, 50)).save(tmp_path / "images" / f"{i}.png")
        task = "caption" if i % 2 else "instruction"
        rows.append(
            {
                "id": f"r{i}",
                "filepath": f"images/{i}.png",
                "title": f"{i} ships",
                "question": "" if task == "caption" else "How many ships?",
                "task": task,
            }
        )
    pool = tmp_path / "pool.jsonl"
    pool.write_text("".join(json.dumps(r) + "\n" for r in rows))
    score = ["score", "--config", str(ROOT / "recipes/tiny/score/config_random.yaml"), "--pool", str(pool)]
    assert main([*score, "--output_dir", str(tmp_path / "s")]) == 0
    args = ["filter", "--config", str(ROOT / "recipes/tiny/filter/config_demo.yaml"), "--scores", str(tmp_path / "s")]
    args += [
        "--pool",
        str(pool),
        "--output_dir",
        str(tmp_path / "f"),
        "--fractions",
        "0.4",
        "caption=0.4,instruction=0.6",
    ]
    args += ["--push_to_hub", "true", "--hub_dataset_id", "me/rs-curated", "--hub_private_repo", "true"]
    assert main(args) == 0

    pushes = [c for c in uploads if c["call"] == "upload_folder"]
    assert [c["repo_id"] for c in pushes] == ["me/rs-curated-keep-0p4", "me/rs-curated-keep-caption0p4-instruction0p6"]
    assert all(c["repo_type"] == "dataset" for c in uploads)
    assert all(c["private"] is True for c in uploads if c["call"] == "create_repo")
    for push in pushes:
        assert push["files"] == ["README.md", "data/train-00000-of-00001.parquet", "score_histogram.png"]
        card = push["card"]
        assert card["license"] == "apache-2.0" and "remote-sensing" in card["tags"]
        assert card["configs"][0]["data_files"][0]["path"] == "data/train-*.parquet"
        kept = [json.loads(line) for line in (tmp_path / "f" / push["folder"].name / "sft.jsonl").open()]
        table = pq.read_table(push["folder"] / "data/train-00000-of-00001.parquet").to_pylist()
        assert [r["id"] for r in table] == [r["id"] for r in kept] and len(kept) in (4, 5)
        for row, source in zip(table, kept):
            assert row["image"]["bytes"] == (tmp_path / source["images"][0]).read_bytes(), "the image file itself"
            assert Image.open(io.BytesIO(row["image"]["bytes"])).size == (32, 32)
            assert row["messages"] == source["messages"]
        assert "# Curated subset" in push["card_text"]
