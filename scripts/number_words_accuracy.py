#!/usr/bin/env python
"""Exact-match accuracy of a model trained on the built-in number words: on every number from 0 to 1,000 (what
people try first) and on the test split, decoded as `hf-gru-seq2seq-translate` decodes (the model's generation
config). Usage: `python scripts/number_words_accuracy.py outputs/number-words [--uppercase]`."""

from hf_gru_seq2seq.cli import number_words_accuracy_main as main

if __name__ == "__main__":
    main()
