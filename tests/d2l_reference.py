"""A d2l-style GRU encoder-decoder, written for these tests from the book's description.

Time-major (`nn.GRU` without `batch_first`), parameters named `encoder.embedding`, `encoder.rnn`,
`decoder.embedding`, `decoder.rnn`, `decoder.dense`. The decoder's context is the encoder's output at the
last time step, kept fixed while predicting (the current d2l version).
"""

import torch
from torch import nn


class D2LGRU(nn.Module):
    """d2l wraps `nn.GRU` in a small module of its own: its parameters are `rnn.rnn.*`."""

    def __init__(self, num_inputs, num_hiddens, num_layers, dropout=0.0):
        super().__init__()
        self.rnn = nn.GRU(num_inputs, num_hiddens, num_layers, dropout=dropout)

    def forward(self, inputs, state=None):
        return self.rnn(inputs, state)


class D2LEncoder(nn.Module):
    def __init__(self, vocab_size, embed_size, num_hiddens, num_layers, dropout=0.0, wrapped=False):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_size)
        gru = D2LGRU if wrapped else nn.GRU
        self.rnn = gru(embed_size, num_hiddens, num_layers, dropout=dropout)

    def forward(self, X):  # X: (B, T) -> outputs (T, B, H), state (L, B, H)
        return self.rnn(self.embedding(X.t().long()))


class D2LDecoder(nn.Module):
    def __init__(self, vocab_size, embed_size, num_hiddens, num_layers, dropout=0.0, wrapped=False):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_size)
        gru = D2LGRU if wrapped else nn.GRU
        self.rnn = gru(embed_size + num_hiddens, num_hiddens, num_layers, dropout=dropout)
        self.dense = nn.Linear(num_hiddens, vocab_size)

    def init_state(self, enc_all_outputs):
        return enc_all_outputs

    def forward(self, X, state):  # X: (B, T) -> logits (B, T, V), new state
        embs = self.embedding(X.t().long())  # (T, B, E)
        enc_output, hidden_state = state
        context = enc_output[-1].repeat(embs.shape[0], 1, 1)  # (T, B, H)
        outputs, hidden_state = self.rnn(torch.cat((embs, context), -1), hidden_state)
        return self.dense(outputs).swapaxes(0, 1), [enc_output, hidden_state]


def d2l_teacher_forced_logits(encoder, decoder, src, dec_in):
    return decoder(dec_in, decoder.init_state(encoder(src)))[0]


def d2l_greedy(encoder, decoder, src, start_id, num_steps):
    """d2l's `predict_step`: feed back the argmax, one token at a time, never stopping early."""
    state = decoder.init_state(encoder(src))
    tokens = [torch.full((src.shape[0], 1), start_id, dtype=torch.long)]
    for _ in range(num_steps):
        logits, state = decoder(tokens[-1], state)
        tokens.append(logits.argmax(-1))
    return torch.cat(tokens, 1)
