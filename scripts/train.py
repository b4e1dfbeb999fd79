#!/usr/bin/env python
"""Train a GRU translator (flags as transformers' run_translation.py). With no flags: the built-in number-words
data, offline, about a minute on a CPU. `python scripts/train.py --help` lists every flag."""

from hf_gru_seq2seq.cli import train_main as main

if __name__ == "__main__":
    main()
