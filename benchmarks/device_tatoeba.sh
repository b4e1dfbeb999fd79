#!/usr/bin/env bash
# One Tatoeba training at the d2l size (the README's "Results"), on a lent GPU with little device time left:
# fp32 (TF32) because at this size it is the fastest precision (benchmarks/results), no per-epoch evaluation, the
# test split decoded greedily and with 4 beams at the end. Log and results go to $OUT as they come.
set -u
OUT="${OUT:-device-out}"; mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
python3 scripts/train.py --tatoeba_protocol_file .data/fra-eng.txt --bleu_lowercase --precision fp32 \
  --do_train --do_predict --eval_strategy no --save_strategy no --logging_steps 640 \
  --dataloader_num_workers 4 --preprocessing_num_workers 8 --output_dir /tmp/tatoeba-d2l "$@" > "$OUT/train.log" 2>&1
echo "exit $?" >> "$OUT/train.log"
cp /tmp/tatoeba-d2l/all_results.json /tmp/tatoeba-d2l/README.md "$OUT/" 2>/dev/null
head -20 /tmp/tatoeba-d2l/generated_predictions.txt > "$OUT/samples.txt" 2>/dev/null
