"""Generate SynthRS, the built-in remote-sensing world with ground truth (pairs, pool, eval, RL prompts).

rs-reward synth --config recipes/tiny/synth/config_demo.yaml
rs-reward synth --config recipes/tiny/synth/config_demo.yaml --output_dir runs/synthrs-big --pool_size 100000
"""

from __future__ import annotations


def config_types():
    from rs_reward.data.synthrs import SynthRSConfig

    return (SynthRSConfig,)


def main(argv: list[str] | None = None) -> int:
    import json

    from rs_reward.data.synthrs import build

    from ._common import parse, setup_logging, summary_table

    logger = setup_logging("rs_reward.synth")
    (config,) = parse(config_types(), argv)
    output = build(config)

    manifest = json.loads((output / "manifest.json").read_text())
    rows = {"folder": str(output), "scenes": manifest["scenes"], "seconds": manifest["seconds"]}
    rows.update(manifest["counts"])
    logger.info("\n%s", summary_table("SynthRS", rows))
    return 0


if __name__ == "__main__":
    from ._common import run_guarded

    raise SystemExit(run_guarded("synth", main))
