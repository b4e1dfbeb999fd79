"""Console commands: `hf-gru-seq2seq-train`, `hf-gru-seq2seq-translate`, `hf-gru-seq2seq-convert-d2l`, the exports.

A user's mistake (a missing file, a bad path, an output folder that holds another model, a value the data or the
model refuses) ends the command with one line on stderr and exit status 2, not a traceback; set
`HF_GRU_SEQ2SEQ_TRACEBACK=1` to see the traceback anyway. Ctrl-C exits with status 130, quietly.
"""

import os
import sys

# What a user's input can raise: OSError covers missing files and folders, an existing output folder and what
# Transformers raises for a model it cannot find; ValueError, the checks of flags, data and config values.
USER_ERRORS = (OSError, ValueError)


def _run(prog: str, main) -> None:
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
    except USER_ERRORS as err:
        if os.environ.get("HF_GRU_SEQ2SEQ_TRACEBACK"):
            raise
        message = " ".join(str(err).split()) or type(err).__name__
        print(f"{prog}: error: {message}", file=sys.stderr)
        sys.exit(2)


def train_main() -> None:
    from .training import main

    _run("hf-gru-seq2seq-train", main)


def translate_main() -> None:
    from .translate import main

    _run("hf-gru-seq2seq-translate", main)


def convert_d2l_main() -> None:
    from .convert import main

    _run("hf-gru-seq2seq-convert-d2l", main)


def number_words_accuracy_main() -> None:
    from .number_words_accuracy import main

    _run("number_words_accuracy", main)


def export_onnx_main() -> None:
    from .onnx_export import main

    _run("hf-gru-seq2seq-export-onnx", main)


def export_web_main() -> None:
    from .web_export import main

    _run("hf-gru-seq2seq-export-web", main)
