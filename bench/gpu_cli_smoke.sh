#!/usr/bin/env bash
# The CLI tasks end to end on one GPU with the tiny models (synth, score with encoding threads, GRPO in bf16,
# best-of-N), on a machine with torchvision (the stock Qwen processors). Run from the repo root with the package
# importable; the first lines install carried wheels where the machine has no internet (bench/README.md).
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD || exit 1
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false RS_REWARD_CACHE=/tmp/cache MPLCONFIGDIR=/tmp/mpl
F="it/s\]|scene/s|ba/s|examples/s|Warn|warn|s/it\]"
set -o pipefail
run() { echo "### $*"; python3 -m rs_reward.scripts."$@" 2>&1 | grep -v -E "$F" | tail -${TAIL:-14} || exit 1; }
run synth --config recipes/tiny/synth/config_quick.yaml --output_dir /tmp/s
TAIL=25 run score --config recipes/tiny/score/config_reward_model.yaml --model_name_or_path tiny:qwen2-vl-tiny-reward --pool /tmp/s/pool/pool.csv --output_dir /tmp/sc --num_workers 4
TAIL=25 run grpo --config recipes/tiny/grpo/config_demo.yaml --model_name_or_path tiny:qwen2-vl-tiny --reward_model_name_or_path tiny:qwen2-vl-tiny-reward --dataset_name /tmp/s/rl/prompts.jsonl --output_dir /tmp/gr --max_steps 4 --logging_steps 2 --use_cpu false --bf16 true --reward_model_dtype bfloat16
TAIL=30 run bon --config recipes/tiny/bon/config_demo.yaml --model_name_or_path tiny:qwen2-vl-tiny --reward_model_name_or_path tiny:qwen2-vl-tiny-reward --clip_model_name_or_path tiny:clip-tiny --eval_data /tmp/s/eval/eval.jsonl --truth_scenes /tmp/s --max_rows 8 --n_list 1 2 4 --output_dir /tmp/bon
nvidia-smi --query-gpu=name --format=csv,noheader
