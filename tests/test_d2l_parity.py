"""Parity with d2l: shapes and names, teacher-forced logits, greedy prediction, checkpoint conversion."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from d2l_reference import D2LDecoder, D2LEncoder, d2l_greedy, d2l_teacher_forced_logits

from hf_gru_seq2seq import GRUSeq2SeqForConditionalGeneration
from hf_gru_seq2seq.convert import from_d2l

REPO = Path(__file__).resolve().parents[1]
PAD, BOS, EOS = 0, 1, 2


def d2l_pair(wrapped=False, vocab=10, tgt_vocab=10, embed=8, hidden=16, layers=2, seed=0):
    torch.manual_seed(seed)
    encoder = D2LEncoder(vocab, embed, hidden, layers, dropout=0.1, wrapped=wrapped).eval()
    decoder = D2LDecoder(tgt_vocab, embed, hidden, layers, dropout=0.1, wrapped=wrapped).eval()
    return encoder, decoder


def test_d2l_shapes_and_parameter_names():
    """The issue's example: vocab 10, embed 8, hidden 16, 2 layers on a (4, 7) batch."""
    encoder, decoder = d2l_pair()
    X = torch.randint(3, 10, (4, 7))
    outputs, state = encoder(X)
    assert outputs.shape == (7, 4, 16) and state.shape == (2, 4, 16)
    assert d2l_teacher_forced_logits(encoder, decoder, X, X).shape == (4, 7, 10)
    model = from_d2l(encoder, decoder, pad_token_id=PAD, bos_token_id=BOS,
                                                        eos_token_id=EOS)
    enc = model.get_encoder()(X)
    assert enc.last_hidden_state.shape == (4, 7, 16) and enc.final_state.shape == (4, 2, 16)  # batch-first
    torch.testing.assert_close(enc.last_hidden_state, outputs.transpose(0, 1), atol=1e-6, rtol=0)
    torch.testing.assert_close(enc.final_state, state.transpose(0, 1), atol=1e-6, rtol=0)
    assert model(input_ids=X, decoder_input_ids=X).logits.shape == (4, 7, 10)
    names = {n.split(".weight")[0].split(".bias")[0] for n, _ in model.named_parameters()}
    assert names == {"model.encoder.embedding", "model.encoder.rnn", "model.decoder.embedding", "model.decoder.rnn",
                     "lm_head"}


@pytest.mark.parametrize("wrapped", [False, True], ids=["nn.GRU", "d2l.GRU wrapper"])
@pytest.mark.parametrize("tgt_vocab", [10, 13])
def test_from_d2l_teacher_forced_logits_match(wrapped, tgt_vocab):
    encoder, decoder = d2l_pair(wrapped=wrapped, tgt_vocab=tgt_vocab)
    model = from_d2l(encoder, decoder, pad_token_id=PAD, bos_token_id=BOS,
                                                        eos_token_id=EOS)
    assert model.config.dropout == pytest.approx(0.1) and model.config.decoder_vocab_size == tgt_vocab
    X = torch.randint(3, 10, (4, 7))
    Y = torch.randint(3, tgt_vocab, (4, 6))
    expected = d2l_teacher_forced_logits(encoder, decoder, X, Y)
    got = model(input_ids=X, decoder_input_ids=Y).logits
    assert (got - expected).abs().max() < 1e-5


def test_greedy_generate_matches_d2l_prediction_with_fixed_context():
    encoder, decoder = d2l_pair(seed=3)
    model = from_d2l(encoder, decoder, pad_token_id=PAD, bos_token_id=BOS,
                                                        eos_token_id=EOS)
    X = torch.randint(3, 10, (6, 5))
    expected = d2l_greedy(encoder, decoder, X, BOS, num_steps=8)
    got = model.generate(input_ids=X, max_new_tokens=8, num_beams=1)
    for row in range(X.shape[0]):
        produced = got[row].tolist()
        if EOS in produced:  # generate stops at the end of sentence; d2l keeps going
            produced = produced[: produced.index(EOS) + 1]
        assert produced == expected[row, : len(produced)].tolist()


def test_context_is_fixed_not_read_from_the_current_state():
    """The older d2l prediction read the context from the decoder's current top-layer state; ours must not."""
    encoder, decoder = d2l_pair(seed=1)
    model = from_d2l(encoder, decoder, pad_token_id=PAD, bos_token_id=BOS,
                                                        eos_token_id=EOS)
    X = torch.randint(3, 10, (3, 5))
    Y = torch.randint(3, 10, (3, 4))
    stale = []  # the old way: context = decoder hidden_state[-1] at each step
    with torch.no_grad():
        enc_out, state = encoder(X)
        for t in range(Y.shape[1]):
            emb = decoder.embedding(Y[:, t:t + 1].t())
            out, state = decoder.rnn(torch.cat([emb, state[-1][None]], -1), state)
            stale.append(decoder.dense(out).swapaxes(0, 1))
    stale = torch.cat(stale, 1)
    got = model(input_ids=X, decoder_input_ids=Y).logits
    assert (got[:, 1:] - stale[:, 1:]).abs().max() > 1e-3  # differs once the state has moved on
    torch.testing.assert_close(got, d2l_teacher_forced_logits(encoder, decoder, X, Y), atol=1e-5, rtol=0)


def test_from_d2l_refuses_a_lazy_dense_layer():
    encoder, decoder = d2l_pair()
    decoder.dense = torch.nn.LazyLinear(10)
    with pytest.raises(ValueError, match="LazyLinear"):
        from_d2l(encoder, decoder, pad_token_id=PAD, bos_token_id=BOS,
                                                    eos_token_id=EOS)


@pytest.mark.parametrize("wrapped", [False, True])
def test_convert_script_round_trip(tmp_path, wrapped):
    encoder, decoder = d2l_pair(wrapped=wrapped, tgt_vocab=12)
    state_dict = {**{f"encoder.{k}": v for k, v in encoder.state_dict().items()},
                  **{f"decoder.{k}": v for k, v in decoder.state_dict().items()}}
    torch.save(state_dict, tmp_path / "d2l.pt")
    subprocess.run([sys.executable, str(REPO / "scripts" / "convert_d2l_checkpoint.py"), str(tmp_path / "d2l.pt"),
                    str(tmp_path / "model"), "--pad_token_id", "0", "--bos_token_id", "1", "--eos_token_id", "2"],
                   check=True, capture_output=True, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    model = GRUSeq2SeqForConditionalGeneration.from_pretrained(tmp_path / "model").eval()
    X, Y = torch.randint(3, 10, (2, 5)), torch.randint(3, 12, (2, 4))
    expected = d2l_teacher_forced_logits(encoder, decoder, X, Y)
    assert (model(input_ids=X, decoder_input_ids=Y).logits - expected).abs().max() < 1e-5


def test_convert_refuses_pickled_objects_and_foreign_state_dicts(tmp_path):
    import argparse

    from hf_gru_seq2seq.convert import convert_d2l_checkpoint

    torch.save({"x": argparse.Namespace(code="not a tensor")}, tmp_path / "evil.pt")  # needs unpickling a class
    with pytest.raises(Exception, match="(?i)weights_only|unsupported|global"):
        convert_d2l_checkpoint(tmp_path / "evil.pt", tmp_path / "out", pad_token_id=0, bos_token_id=1,
                               eos_token_id=2)
    torch.save({"encoder.embedding.weight": torch.zeros(3, 2)}, tmp_path / "partial.pt")
    with pytest.raises(ValueError, match="missing"):
        convert_d2l_checkpoint(tmp_path / "partial.pt", tmp_path / "out", pad_token_id=0, bos_token_id=1,
                               eos_token_id=2)
    with pytest.raises(FileNotFoundError, match="no d2l checkpoint"):
        convert_d2l_checkpoint(tmp_path / "absent.pt", tmp_path / "out", pad_token_id=0, bos_token_id=1,
                               eos_token_id=2)
    assert not (tmp_path / "out").exists()
