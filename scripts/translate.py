#!/usr/bin/env python
"""Translate lines from stdin or --input to stdout with a saved model: `python scripts/translate.py --model DIR`."""

from hf_gru_seq2seq.cli import translate_main as main

if __name__ == "__main__":
    main()
