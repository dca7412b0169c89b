"""`RSGRPOTrainer`: TRL's `GRPOTrainer` with image-aware score-model rewards and a reward-hacking monitor.

TRL 1.16 scores a reward *model* passed in `reward_funcs` text-only (one unexpanded image token, no pixels), so a
VLM score model would judge answers without seeing the image. This subclass adds exactly what is missing:

- `reward_funcs` may name registry rewards (`rs_reward.rewards`: `format`, `accuracy`, `score_model`, ...); the
  functions that need the score model share one `ScoreModel`, moved to this process's device, which reads each
  row's image (the `images` column TRL hands to reward functions);
- reward components are logged by the functions themselves (`accuracy/<reward_type>`, `score_model/score`) through
  TRL's `log_metric`, next to TRL's own `rewards/<name>/mean`; with `log_completions`, each logged completion also
  carries its row `id`, rule reward (`rule`) and score-model score (`score`), so the samples page
  (`rs_reward.pages.write_grpo_page`) can show the image and every component;
- a reward-hacking monitor, logged each step (when a score model is loaded):
  `hacking/high_score_rule_fail` (share of the completions in the top quarter of score-model scores, among rows
  with a rule reward, whose rule reward is 0), `hacking/score_rule_auc` (probability that, for the same prompt, a
  completion the rule reward accepts outscores one it rejects; 0.5 = the score model ignores correctness), pooled
  over every such pair of the logging interval (a step holds only a few prompts with both right and wrong
  completions, so a mean of per-step ratios would weigh a step's one pair like another's eight), with
  `hacking/score_rule_pairs` (those pairs per step), and `hacking/length_drift` (mean completion length over its
  value at the first step).

Generation, advantages, loss, vLLM, KL and everything else are TRL's.
"""

from __future__ import annotations

import numpy as np
from trl import GRPOTrainer

from ..eval.reward_eval import wins_within_groups
from ..rewards import RewardFunction, RewardMonitor, ScoreModel, build_reward_funcs, import_reward, is_registry_reward
from .resume import CheckpointResumeMixin


def hacking_metrics(ids, rule, scores) -> dict[str, float]:
    """The monitor's metrics of one batch from per-completion rule rewards and score-model scores (NaN where absent):
    the AUC as `hacking/score_rule_wins` and `hacking/score_rule_pairs`, which `RSGRPOTrainer.log` pools into
    `hacking/score_rule_auc`; `hacking/score_rule_auc` too when the batch has a pair."""
    ids, rule, scores = np.asarray(ids, dtype=object), np.asarray(rule, float), np.asarray(scores, float)
    both = ~np.isnan(rule) & ~np.isnan(scores)
    metrics = {}
    if both.sum() >= 4:
        threshold = np.quantile(scores[both], 0.75)
        high = both & (scores >= threshold)
        metrics["hacking/high_score_rule_fail"] = float((rule[high] <= 0).mean())
    wins, pairs = wins_within_groups(ids, rule > 0, scores, known=~np.isnan(rule))
    metrics["hacking/score_rule_wins"], metrics["hacking/score_rule_pairs"] = wins, float(pairs)
    if pairs:
        metrics["hacking/score_rule_auc"] = wins / pairs
    return metrics


def pool_score_rule_auc(metrics: dict[str, list[float]]) -> None:
    """Replace a logging interval's per-step `hacking/score_rule_wins` with `hacking/score_rule_auc` pooled over its
    pairs (TRL averages each step's values over processes, so the ratio of the sums is still the pooled one)."""
    wins, pairs = metrics.pop("hacking/score_rule_wins", None), metrics.get("hacking/score_rule_pairs")
    if wins and pairs and sum(pairs) > 0:
        metrics["hacking/score_rule_auc"] = [sum(wins) / sum(pairs)]


class RSGRPOTrainer(CheckpointResumeMixin, GRPOTrainer):
    """`trl.GRPOTrainer` whose rewards can see the image (see the module docstring).

    Args:
        reward_funcs: registry names (`"format"`, `"accuracy"`, ...), dotted paths of custom reward functions,
            `RewardFunction`s, or anything TRL accepts.
        score_model: the `ScoreModel` shared by the score-model rewards (moved to this process's device).
        reward_routes, format_gate, score_beta: as in `rewards.build_reward_funcs`.
        Everything else as `trl.GRPOTrainer` (pass the processor as `processing_class`).

    Example:
        >>> score_model = ScoreModel.load(RSModelConfig(model_name_or_path="runs/demo/reward"))
        >>> trainer = RSGRPOTrainer(model=policy, reward_funcs=["format", "accuracy"], score_model=score_model,
        ...                         format_gate=True, args=GRPOConfig(reward_weights=[0.3, 0.7], ...),
        ...                         train_dataset=prompts, processing_class=processor)
    """

    def __init__(
        self,
        *args,
        reward_funcs,
        score_model: ScoreModel | None = None,
        reward_routes=None,
        format_gate: bool = False,
        score_beta: float = 0.2,
        **kwargs,
    ):
        reward_funcs = reward_funcs if isinstance(reward_funcs, list | tuple) else [reward_funcs]
        self.reward_monitor = RewardMonitor()
        names = [f for f in reward_funcs if isinstance(f, str) and is_registry_reward(f)]
        built = iter(
            build_reward_funcs(
                names,
                score_model=score_model,
                routes=reward_routes,
                format_gate=format_gate,
                score_beta=score_beta,
                monitor=self.reward_monitor,
            )
            if names
            else []
        )
        reward_funcs = [
            (next(built) if is_registry_reward(f) else import_reward(f)) if isinstance(f, str) else f
            for f in reward_funcs
        ]
        for f in reward_funcs:
            if isinstance(f, RewardFunction) and f.monitor is None:
                f.monitor = self.reward_monitor
        # TRL left-pads prompts only for a processor it loads itself; one passed in keeps its side, and a right-padded
        # VLM processor then misaligns the image positions of the log-prob forward pass with the prompt ids.
        tokenizer = getattr(kwargs.get("processing_class"), "tokenizer", kwargs.get("processing_class"))
        if getattr(tokenizer, "padding_side", "left") != "left":
            tokenizer.padding_side = "left"
        super().__init__(*args, reward_funcs=reward_funcs, **kwargs)
        self.score_model = score_model
        if score_model is not None:
            score_model.to(self.accelerator.device)
        self._first_length: float | None = None

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        self.reward_monitor.clear()
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        self._monitor(completion_ids_list)
        if self.log_completions:
            self._log_completion_extra("id", [str(row.get("id", "")) for row in inputs])
            if self.reward_monitor:
                for column in ("rule", "score"):
                    values = getattr(self.reward_monitor, column)
                    self._log_completion_extra(column, [None if np.isnan(v) else float(v) for v in values])
        return rewards_per_func

    def _monitor(self, completion_ids_list) -> None:
        lengths = [len(ids) for ids in completion_ids_list]
        mean_length = float(np.mean(lengths)) if lengths else float("nan")
        if self._first_length is None and mean_length > 0:
            self._first_length = mean_length
        if self._first_length:
            self._log_metric("hacking/length_drift", mean_length / self._first_length)
        monitor = self.reward_monitor
        if not monitor:
            return
        for name, value in hacking_metrics(monitor.ids, monitor.rule, monitor.score).items():
            if name != "hacking/score_rule_auc":  # pooled over the interval in `log`
                self._log_metric(name, value)

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        pool_score_rule_auc(self._metrics["train" if self.model.training else "eval"])
        super().log(logs, start_time)
