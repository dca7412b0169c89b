#!/usr/bin/env bash
# Each sharded accelerate config (FSDP2, DeepSpeed ZeRO-2, ZeRO-3) launched for real, which needs a GPU: accelerate
# applies FSDP and DeepSpeed only to GPU-like devices (on CPU it runs DDP, or refuses; bench/README.md). For each
# config and for the full and the LoRA reward model: 4 steps of the tiny reward recipe (its held-out evaluation
# after saving), then the saved weights checked non-empty with the score head among them (the classic ZeRO-3 /
# FSDP failure: a head or adapter saved empty) and the folder reloaded with load_reward_model. One process per
# config (`--num_processes ${NPROC:-1}`; 2 with two GPUs). Run from the repo root with the package importable
# (`pip install -e ".[deepspeed]"`). Prepared without a GPU: not run yet (bench/README.md).
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false RS_REWARD_CACHE=/tmp/cache MPLCONFIGDIR=/tmp/mpl
set -o pipefail
python3 -m rs_reward.scripts.synth --config recipes/tiny/synth/config_quick.yaml --output_dir /tmp/s > /dev/null || exit 1
status=0
for config in fsdp zero2 zero3; do
  for variant in full lora; do
    out=/tmp/launch-$config-$variant
    extra=(); [ "$variant" = lora ] && extra=(--use_peft true --lora_r 8 --lora_alpha 16)
    echo "### $config $variant"
    python3 -m accelerate.commands.launch --config_file accelerate_configs/$config.yaml --num_processes "${NPROC:-1}" \
      -m rs_reward.scripts.reward --config recipes/tiny/reward/config_demo.yaml --model_name_or_path tiny:qwen2-vl-tiny \
      --dataset_name /tmp/s/preference/train --eval_dataset_name /tmp/s/preference/test --output_dir $out \
      --max_steps 4 --use_cpu false --bf16 true --dtype bfloat16 --report_to none "${extra[@]}" 2>&1 | tail -4 || { status=1; continue; }
    python3 - "$out" <<'PY' || status=1
import json, sys
from pathlib import Path
from safetensors.torch import load_file
from rs_reward.configs import RSModelConfig
from rs_reward.modeling.loading import load_reward_model
from rs_reward.modeling import load_processor

out = Path(sys.argv[1])
weights = [load_file(f) for f in out.glob("*.safetensors")]
assert weights and all(t.numel() > 0 for w in weights for t in w.values()), "empty weights saved"
assert any("score" in k for w in weights for k in w), "no score head saved"
model = load_reward_model(RSModelConfig(model_name_or_path=str(out), dtype="bfloat16"), trainable=False)
saved = json.loads((out / "eval_metrics.json").read_text())
print(out.name, "saved and reloaded; held-out accuracy at training", round(saved["accuracy"], 4))
PY
  done
done
nvidia-smi --query-gpu=name --format=csv,noheader
exit $status
