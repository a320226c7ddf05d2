"""Benchmarks of codellm against what a learner would otherwise use: Hugging Face `transformers` GPT-2 (training and
generation throughput, peak memory) and Hugging Face `tokenizers` (BPE training and encoding).

Run `python -m benchmarks --help` from the repository root. Not part of the `codellm` package (not exported by nbdev);
needs the `bench` extra (`pip install -e '.[bench]'`, which adds `transformers` and `tokenizers`).
"""
