"""Generate SynthRS, the built-in remote-sensing world with ground truth (pairs, pool, eval, RL prompts).

rs-reward synth --config recipes/tiny/synth/config_demo.yaml
rs-reward synth --config recipes/tiny/synth/config_demo.yaml --output_dir runs/synthrs-big --pool_size 100000
"""

from __future__ import annotations


def make_parser():
    """The task's parser: TRL's, over its dataclasses (`--config recipe.yaml`, then flags)."""
    from trl import TrlParser

    from rs_reward.data.synthrs import SynthRSConfig

    return TrlParser((SynthRSConfig,))


def main(config) -> int:
    import json

    from rs_reward.data.synthrs import build

    from ._common import setup_logging, summary_table

    logger = setup_logging("rs_reward.synth")
    output = build(config)

    manifest = json.loads((output / "manifest.json").read_text())
    rows = {"folder": str(output), "scenes": manifest["scenes"], "seconds": manifest["seconds"]}
    rows.update(manifest["counts"])
    logger.info("\n%s", summary_table("SynthRS", rows))
    return 0


if __name__ == "__main__":
    from ._common import run_task

    raise SystemExit(run_task("synth", make_parser, main))
