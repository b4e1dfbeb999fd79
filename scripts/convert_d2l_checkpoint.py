#!/usr/bin/env python
"""Convert a d2l GRU seq2seq state dict (torch.save) into a Transformers model folder. See hf_gru_seq2seq.convert."""

from hf_gru_seq2seq.cli import convert_d2l_main as main

if __name__ == "__main__":
    main()
