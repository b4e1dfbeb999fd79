#!/usr/bin/env bash
# What one lent GPU session runs, as two calls of the device tool's `run` on the same warm machine:
#   `device_run.sh bench`: `python -m benchmarks gpu`, alone on the GPU (its timings are the README's "Performance"),
#      with its compiled-decoding rows (`compiled`: greedy generate() with Transformers' CompileConfig(fullgraph=True));
#   `device_run.sh train`: four Tatoeba trainings at once (the README's "Results"): the d2l-size recipe with a BPE
#      and with a word-level tokenizer, the same with batch 64 (twice the updates in the same 10 epochs), and a larger
#      model; then the half-precision match rate of the d2l-size model (`python -m benchmarks match`).
# Needs, in the checkout: .whl/ (datasets, evaluate, dill, multiprocess from ../shared/device-wheels/base) and
# .data/fra-eng.txt. Writes under $OUT (or ./device-out).
set -u
OUT="${OUT:-device-out}"; mkdir -p "$OUT/bench"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/env.txt" 2>&1
python3 -c "import torch, transformers; print(torch.__version__, torch.backends.cudnn.version(), transformers.__version__)" >> "$OUT/env.txt" 2>&1

if [ "${1:-}" = bench ]; then
  # --max-seconds (default 270) skips rows that would not fit; the timeout is the last guard.
  timeout "${BENCH_SECONDS:-300}" python3 -m benchmarks gpu --out "$OUT/bench" > "$OUT/bench.log" 2>&1
  echo "bench exit $?" >> "$OUT/env.txt"
  exit 0
fi

# A bf16 training step on this GPU first: if the GRU cannot run in bf16 here, the trainings leave it to autocast.
GRU_FLAG=""
python3 - > "$OUT/smoke.txt" 2>&1 <<'PY' || GRU_FLAG="--gru_autocast torch"
import torch
from hf_gru_seq2seq import GRUSeq2SeqConfig, GRUSeq2SeqForConditionalGeneration
model = GRUSeq2SeqForConditionalGeneration(GRUSeq2SeqConfig(vocab_size=50, hidden_size=32, embedding_size=16)).cuda()
ids = torch.randint(3, 50, (4, 7), device="cuda"); mask = torch.ones_like(ids); mask[1, 4:] = 0
with torch.autocast("cuda", dtype=torch.bfloat16):
    loss = model(input_ids=ids, attention_mask=mask, labels=ids).loss
loss.backward()
out = model.to(torch.bfloat16).generate(input_ids=ids, attention_mask=mask, max_new_tokens=5, num_beams=2)
print("smoke ok", float(loss), tuple(out.shape))
PY
echo "gru flag: $GRU_FLAG" >> "$OUT/env.txt"

DATA=.data/fra-eng.txt
COMMON="$GRU_FLAG --tatoeba_protocol_file $DATA --bleu_lowercase --save_strategy no --dataloader_num_workers 2 --logging_steps 100"
run() { name=$1; shift; timeout "${TRAIN_SECONDS:-420}" python3 scripts/train.py $COMMON --output_dir "/tmp/$name" "$@" > "/tmp/$name.log" 2>&1; echo "$name exit $?" >> "$OUT/env.txt"; }
run d2l-bpe &
run d2l-word --tokenizer_type word --lowercase &
run d2l-b64 --per_device_train_batch_size 64 &
run large --embedding_size 512 --hidden_size 1024 --dropout 0.3 --per_device_train_batch_size 256 --num_train_epochs 8 &
wait
timeout 60 python3 -m benchmarks match --model /tmp/d2l-bpe --tatoeba_file $DATA > /tmp/match.json 2>/tmp/match.log
python3 - "$OUT" <<'PY'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1]); runs = {}
for name in ("d2l-bpe", "d2l-word", "d2l-b64", "large"):
    folder = pathlib.Path("/tmp") / name
    results = folder / "all_results.json"
    runs[name] = json.loads(results.read_text()) if results.exists() else None
    preds = folder / "generated_predictions.txt"
    if preds.exists():
        runs[name + ":samples"] = preds.read_text().splitlines()[:10]
match = pathlib.Path("/tmp/match.json")
runs["half_precision_match"] = match.read_text() if match.exists() else pathlib.Path("/tmp/match.log").read_text()[-2000:]
(out / "runs.json").write_text(json.dumps(runs, indent=1))
PY
for name in d2l-bpe d2l-word d2l-b64 large; do echo "== $name"; grep -v "it/s]\|s/it]" "/tmp/$name.log" | tail -40; done > "$OUT/train.log" 2>&1
