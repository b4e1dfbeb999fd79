#!/usr/bin/env python
"""Convert a d2l GRU seq2seq state dict (torch.save) into a Transformers model folder. See hf_gru_seq2seq.convert."""

from hf_gru_seq2seq.convert import main

if __name__ == "__main__":
    main()
