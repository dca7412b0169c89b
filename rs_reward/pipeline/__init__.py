"""Pipelines of tasks: `runner` (a task as a stage: fingerprinted, skipped when unchanged, run in parallel),
`demo` (the method end to end on SynthRS, one function per stage) and `report` (its report and headline metrics).

The pipeline composes the tasks' `main(*dataclasses)`, so it sits above the task modules and below the command
that runs it (`rs-reward demo`)."""
