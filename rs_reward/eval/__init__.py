"""Evaluation: metrics, the evaluation harness, reports and plots."""
