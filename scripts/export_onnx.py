#!/usr/bin/env python
"""Export a saved model to ONNX (encoder + one decoder step, optionally int8):
`python scripts/export_onnx.py MODEL OUT [--quantize]`. See hf_gru_seq2seq.onnx_export."""

from hf_gru_seq2seq.cli import export_onnx_main as main

if __name__ == "__main__":
    main()
