"""A wrong command prints one or two lines naming the file, field or row and what to do, never a traceback
(unless `--debug`), exits non-zero and leaves nothing half-written. Rows that cannot be used are rejected, not fatal."""

import json
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from rs_reward.cli import console, main
from rs_reward.scoring import read_scores


ROOT = Path(__file__).resolve().parent.parent
SCORE = str(ROOT / "recipes/tiny/score/config_random.yaml")
SCORE_RM = str(ROOT / "recipes/tiny/score/config_reward_model.yaml")
FILTER = str(ROOT / "recipes/tiny/filter/config_demo.yaml")


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    root = tmp_path_factory.mktemp("errors")
    (root / "images").mkdir()
    rows = []
    for i in range(6):
        Image.new("RGB", (32, 32), (40 * i, 90, 30)).save(root / "images" / f"{i}.png")
        rows.append({"id": f"r{i}", "filepath": f"images/{i}.png", "title": f"scene {i}", "task": "caption"})
    rows.append({"id": "r2", "filepath": "images/0.png", "title": "the same id again", "task": "caption"})
    pd.DataFrame(rows).to_csv(root / "pool.csv", index=False)
    (root / "empty.csv").write_text("id,filepath,title\n")
    (root / "unknown_key.yaml").write_text(f"pool: {root / 'pool.csv'}\nshard_sise: 8\n")
    return root


def _wrong(capsys, argv, *needles, status=1, lines=3):
    """Run a wrong command; return its stderr after checking the status, the absence of a traceback, the words."""
    capsys.readouterr()  # what earlier commands printed
    code = console(argv)
    err = capsys.readouterr().err
    assert code == status, (argv, err)
    assert "Traceback" not in err and len(err.strip().splitlines()) <= lines, err
    for needle in needles:
        assert needle in err, (needle, err)
    return err


def test_wrong_commands_print_a_line_not_a_traceback(pool, tmp_path, capsys):
    out = tmp_path / "out"
    _wrong(capsys, ["score", "--config", str(tmp_path / "nope.yaml")], "config file", "nope.yaml", "not found")
    _wrong(capsys, ["score", "--config", str(pool / "unknown_key.yaml")], "unknown_key.yaml", "shard_sise")
    _wrong(capsys, ["score", "--config", SCORE, "--pool", str(pool / "nope.csv")], "pool", "nope.csv", "no such")
    _wrong(capsys, ["score", "--config", SCORE, "--pool", str(pool / "empty.csv"), "--output_dir", str(out)], "no row")
    typo = ["score", "--config", SCORE_RM, "--pool", str(pool / "pool.csv"), "--output_dir", str(out)]
    _wrong(capsys, [*typo, "--model_name_or_path", "runs/demo/rewrad"], "runs/demo/rewrad", "no such folder")
    _wrong(capsys, [*typo, "--model_name_or_path", "tiny:qwen2-vl-tyni"], "unknown tiny model", "qwen2-vl-tyni")
    assert not out.exists(), "nothing is written by a command that fails its checks"
    reward = ["reward", "--config", str(ROOT / "recipes/tiny/reward/config_demo.yaml")]
    _wrong(capsys, [*reward, "--dataset_name", str(tmp_path / "pairs.jsonl")], "pairs.jsonl", "no such file")
    _wrong(capsys, ["filter", "--config", FILTER, "--scores", str(tmp_path / "none"), "--pool", str(pool)], "none")
    _wrong(capsys, ["nope"], "unknown task", status=2, lines=40)  # with the list of tasks


def test_unknown_flags_are_named(capsys):
    _wrong(capsys, ["score", "--config", SCORE, "--shard_sise", "8"], "unknown flag(s) shard_sise", "--help")
    with pytest.raises(SystemExit) as exit_info:  # a flag without its value: argparse's own usage message
        console(["score", "--config", SCORE, "--shard_size"])
    assert exit_info.value.code == 2 and "--shard_size" in capsys.readouterr().err


def test_a_list_field_written_as_one_string_is_named(tmp_path, capsys):
    recipe = tmp_path / "bon.yaml"  # the comma strings of older recipes would be read letter by letter
    recipe.write_text("eval_data: eval.jsonl\ntasks: vqa,caption\n")
    _wrong(capsys, ["bon", "--config", str(recipe)], "bon.yaml", "tasks is a list", "[a, b]", "'vqa,caption'")


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(FileNotFoundError):
        console(["score", "--config", str(tmp_path / "nope.yaml"), "--debug"])


def test_a_duplicate_id_is_rejected_by_name_and_the_rest_scored(pool, tmp_path):
    out = tmp_path / "s"
    assert main(["score", "--config", SCORE, "--pool", str(pool / "pool.csv"), "--output_dir", str(out)]) == 0
    rejected = [json.loads(line) for line in (out / "load_rejects.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rejected] == ["r2"] and "row 6 repeats the id of row 2" in rejected[0]["reason"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["rows_scored"] == 6 and manifest["rows_rejected_at_load"] == 1
    # or kept under a suffixed id, which filter and the page then find in the pool too
    out = tmp_path / "suffix"
    args = ["score", "--config", SCORE, "--pool", str(pool / "pool.csv"), "--output_dir", str(out)]
    assert main([*args, "--duplicate_ids", "suffix"]) == 0
    assert "r2#2" in set(read_scores(out)["id"])
    assert main(["filter", "--config", FILTER, "--scores", str(out), "--pool", str(pool / "pool.csv"),
                 "--output_dir", str(tmp_path / "f"), "--fractions", "1.0"]) == 0  # fmt: skip
    assert "r2#2" in (tmp_path / "f" / "keep-1p0" / "ids.txt").read_text().split()


def test_filter_checks_every_fraction_before_writing(pool, tmp_path, capsys):
    scores = tmp_path / "s"
    assert main(["score", "--config", SCORE, "--pool", str(pool / "pool.csv"), "--output_dir", str(scores)]) == 0
    args = ["filter", "--config", FILTER, "--scores", str(scores), "--pool", str(pool / "pool.csv")]
    _wrong(capsys, [*args, "--output_dir", str(tmp_path / "f"), "--fractions", "0.3", "1.5"], "1.5", "(0, 1]")
    assert not (tmp_path / "f").exists()


def test_a_typo_in_the_model_then_the_right_command_into_the_same_folder(pool, tmp_path, capsys):
    out = tmp_path / "s"
    base = ["score", "--config", SCORE_RM, "--pool", str(pool / "pool.csv"), "--output_dir", str(out)]
    _wrong(capsys, [*base, "--model_name_or_path", "./typo"], "typo")
    assert main([*base, "--model_name_or_path", "tiny:qwen2-vl-tiny-reward"]) == 0
    # a truncated run.json of an earlier crash, with no scores yet, does not block the folder either
    out2 = tmp_path / "s2"
    out2.mkdir()
    (out2 / "run.json").write_text('{"fingerprint": "ab')
    assert main(["score", "--config", SCORE, "--pool", str(pool / "pool.csv"), "--output_dir", str(out2)]) == 0


def test_a_second_command_on_a_folder_being_scored_is_refused(pool, tmp_path, capsys):
    import fcntl

    out = tmp_path / "s"
    out.mkdir()
    with (out / ".lock").open("a") as held:  # as a first `rs-reward score` into this folder holds it
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        args = ["score", "--config", SCORE, "--pool", str(pool / "pool.csv"), "--output_dir", str(out)]
        _wrong(capsys, args, "being scored by another command")
        assert not (out / "run.json").exists()
    assert main(args) == 0  # the first one done: the folder is free


def test_no_bitsandbytes_kernels_warning_on_a_command():
    """bitsandbytes' import-time "Failed to load CPU gemm_4bit_forward from kernels-community" line is dropped."""
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", "import rs_reward.cli, peft, trl, bitsandbytes; rs_reward.cli.console(['--help'])"],
        capture_output=True,
        text=True,
        check=True,
    )
    output = result.stdout + result.stderr
    assert "tasks:" in output and "kernels" not in output, output
