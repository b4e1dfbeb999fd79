"""Corpus BLEU and chrF with sacrebleu, as an `evaluate` metric that loads offline from its folder.

`evaluate.load("sacrebleu")` fetches its script from the Hub; this one ships with the package, so
`evaluate.load("<path>/translation_scores")` needs no network. Scores are sacrebleu's own: BLEU with the 13a
tokenizer (WMT's default) and chrF (character 6-grams, beta 2), both on 0-100; and `exact_match`, the percentage of
predictions equal to one of their references (outer whitespace ignored).
"""

import datasets
import evaluate
import sacrebleu

_DESCRIPTION = "Corpus-level BLEU (sacrebleu, 13a tokenization), chrF and exact match of detokenized translations."

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[str]`): one detokenized translation per source sentence.
    references (`list[list[str]]` or `list[str]`): the reference translation(s) of each sentence; every sentence
        must have the same number of references.
    lowercase (`bool`, defaults to `False`): score case-insensitively (all three scores).
    tokenize (`str`, defaults to `"13a"`): sacrebleu's BLEU tokenizer.
Returns:
    `bleu`, `chrf`, `exact_match` (0-100), and BLEU's parts: `precisions`, `bp`, `sys_len`, `ref_len`.
"""

_CITATION = """\
@inproceedings{post-2018-call,
    title = "A Call for Clarity in Reporting {BLEU} Scores",
    author = "Post, Matt",
    booktitle = "Proceedings of the Third Conference on Machine Translation",
    year = "2018",
    pages = "186--191",
}
"""


class TranslationScores(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=[
                datasets.Features(
                    {"predictions": datasets.Value("string"), "references": datasets.Sequence(datasets.Value("string"))}
                ),
                datasets.Features({"predictions": datasets.Value("string"), "references": datasets.Value("string")}),
            ],
            codebase_urls=["https://github.com/mjpost/sacrebleu"],
            reference_urls=["https://aclanthology.org/W18-6319", "https://aclanthology.org/W15-3049"],
        )

    def _compute(self, predictions, references, lowercase=False, tokenize="13a"):
        if references and isinstance(references[0], str):
            references = [[ref] for ref in references]
        counts = {len(refs) for refs in references}
        if len(counts) > 1:
            raise ValueError(f"every prediction needs the same number of references, got {sorted(counts)}")
        streams = [list(stream) for stream in zip(*references)]  # sacrebleu wants one list per reference set
        bleu = sacrebleu.BLEU(lowercase=lowercase, tokenize=tokenize).corpus_score(predictions, streams)
        chrf = sacrebleu.CHRF(lowercase=lowercase).corpus_score(predictions, streams)
        fold = str.lower if lowercase else str
        exact = [fold(p.strip()) in {fold(r.strip()) for r in refs} for p, refs in zip(predictions, references)]
        return {
            "bleu": bleu.score,
            "chrf": chrf.score,
            "exact_match": 100.0 * sum(exact) / len(exact) if exact else 0.0,
            "precisions": bleu.precisions,
            "bp": bleu.bp,
            "sys_len": bleu.sys_len,
            "ref_len": bleu.ref_len,
        }
