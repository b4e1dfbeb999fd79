"""Benchmarks of hf-gru-seq2seq, run from the repository root as `python -m benchmarks <command>`:

- `gpu`: training and generation throughput against a hand-written reference on a CUDA device (`gpu_run`);
- `cpu`: CPU decoding latency and throughput of eager, compiled and ONNX Runtime (fp32, int8) `generate()` against
  the hand loop, and a training step against the hand reference's (`cpu_run`);
- `quality`: translation scores of PyTorch and ONNX Runtime (fp32, int8) decoding of a test split (`quality`);
- `match`: how often half-precision greedy output equals fp32's on a trained model (`precision_match`).

See benchmarks/README.md for what each measures and writes.
"""
