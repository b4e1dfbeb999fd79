"""Batches by tokens against batches by sentences, on Tatoeba: the padding share of an epoch and training tokens/s.

    nice -n 10 python -m benchmarks data --batching

The training script's own path on d2l's fra-eng.txt (Tatoeba protocol train split): its BPE tokenizer (8,000),
`tokenize_dataset` (64 tokens at most), then the batches of one epoch from (a) the recipe's sentence batches (128
pairs, `group_by_length`: the training script's `LengthGroupedOrder`), (b) unsorted batches of 128 pairs, and (c)
`TokenBatchSampler` with `--max_tokens_per_batch` set so that a batch holds about as many real tokens as (a)'s on
average. Padding share: padded tokens / all tokens, source and target together, over the whole epoch. Training
speed: the package model at d2l's Tatoeba size (embedding 256, hidden 256, 2 layers) in a plain AdamW loop, `--steps`
steps of each batching per round, rounds interleaved, real (non-pad) target tokens per second; the rate of a
batching is its median over rounds.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch
from transformers import DataCollatorForSeq2Seq

from hf_gru_seq2seq import GRUSeq2SeqConfig, GRUSeq2SeqForConditionalGeneration
from hf_gru_seq2seq.data import tatoeba_protocol_splits
from hf_gru_seq2seq.length_index import LengthIndex
from hf_gru_seq2seq.sentence_samplers import LengthGroupedOrder
from hf_gru_seq2seq.token_batches import TokenBatchSampler
from hf_gru_seq2seq.vocabulary import tokenize_dataset, train_tokenizer

BATCH = 128


def epoch_batches(src: np.ndarray, tgt: np.ndarray, seed: int) -> dict[str, list]:
    """One epoch of batches (lists of indices) per batching."""
    index = LengthIndex.of_arrays(src, tgt)
    grouped = list(LengthGroupedOrder(index, BATCH, seed=seed))
    shuffled = np.random.default_rng(seed).permutation(len(src))
    mean_real = (src.sum() + tgt.sum()) / len(src) * BATCH / 2  # real tokens of one side, on average, per batch
    max_tokens = int(round(mean_real / 8) * 8)
    return {
        "sentences, grouped by length (recipe)": [grouped[i:i + BATCH] for i in range(0, len(grouped), BATCH)],
        "sentences, unsorted": [shuffled[i:i + BATCH].tolist() for i in range(0, len(shuffled), BATCH)],
        f"tokens, --max_tokens_per_batch {max_tokens}": list(TokenBatchSampler(index, max_tokens, seed=seed)),
    }


def padding_share(batches, src: np.ndarray, tgt: np.ndarray) -> dict:
    real = padded = 0
    for b in batches:
        s, t = src[b], tgt[b]
        real += int(s.sum() + t.sum())
        padded += len(b) * int(s.max() + t.max())
    return {"batches": len(batches), "mean_pairs": round(len(src) / len(batches), 1),
            "padding_share": round(1 - real / padded, 4)}


def train_rates(tokenized, batchings: dict, tokenizer, steps: int, rounds: int) -> dict[str, float]:
    """Real target tokens per second of each batching, its median over interleaved rounds."""
    torch.manual_seed(0)
    config = GRUSeq2SeqConfig(vocab_size=len(tokenizer), embedding_size=256, hidden_size=256, num_hidden_layers=2,
                              dropout=0.2, pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                              eos_token_id=tokenizer.eos_token_id)
    model = GRUSeq2SeqForConditionalGeneration(config).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    collate = DataCollatorForSeq2Seq(tokenizer, model=model, label_pad_token_id=-100)
    columns = tokenized.select_columns(["input_ids", "attention_mask", "labels"])
    rates = {name: [] for name in batchings}
    for r in range(rounds):
        for name, batches in batchings.items():
            chosen = [batches[(r * steps + i) % len(batches)] for i in range(steps)]
            inputs = [collate([columns[int(j)] for j in b]) for b in chosen]
            start, tokens = time.perf_counter(), 0
            for batch in inputs:
                loss = model(**batch).loss
                loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                tokens += int((batch["labels"] != -100).sum())
            rates[name].append(tokens / (time.perf_counter() - start))
    return {name: round(statistics.median(values)) for name, values in rates.items()}


def measure(fra_eng, steps: int = 20, rounds: int = 3, seed: int = 0) -> dict:
    raw = tatoeba_protocol_splits(fra_eng)
    tokenizer = train_tokenizer(raw["train"], "en", "fr", vocab_size=8000)
    tokenized = tokenize_dataset(raw["train"], tokenizer, "en", "fr", 64, 64)
    src, tgt = np.asarray(tokenized["length"]), np.asarray(tokenized["target_length"])
    batchings = epoch_batches(src, tgt, seed)
    rows = {name: padding_share(b, src, tgt) for name, b in batchings.items()}
    for name, rate in (train_rates(tokenized, batchings, tokenizer, steps, rounds) if steps else {}).items():
        rows[name]["target_tokens_per_s"] = rate  # --steps 0: padding shares only
    return {"pairs": len(tokenized), "steps_per_round": steps, "rounds": rounds, "torch_threads":
            torch.get_num_threads(), "rows": rows}
