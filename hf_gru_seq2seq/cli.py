"""Console commands: `hf-gru-seq2seq-train`, `hf-gru-seq2seq-translate`, `hf-gru-seq2seq-convert-d2l`."""


def train_main() -> None:
    from .training import main

    main()


def translate_main() -> None:
    from .translate import main

    main()


def convert_d2l_main() -> None:
    from .convert import main

    main()
