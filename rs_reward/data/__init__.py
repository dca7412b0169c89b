"""Data: canonical rows, loaders for the real formats, the SynthRS world, collators."""
