"""`GRUSeq2SeqModelTester`: tiny configs and inputs, and `create_and_check_*` helpers, in the manner of the
model tests of Transformers."""

import torch

from hf_gru_seq2seq import GRUSeq2SeqConfig, GRUSeq2SeqForConditionalGeneration, GRUSeq2SeqModel

PAD, BOS, EOS = 0, 1, 2
# Sentences in the words of `tiny_tokenizer`.
TINY_SENTENCES = ["go .", "hi !", "help wait stop .", "run"]


class GRUSeq2SeqModelTester:
    def __init__(self, batch_size=4, src_len=7, tgt_len=5, vocab_size=23, decoder_vocab_size=19, embedding_size=8,
                 hidden_size=16, num_hidden_layers=2, bidirectional_encoder=False, seed=0):
        self.batch_size, self.src_len, self.tgt_len = batch_size, src_len, tgt_len
        self.vocab_size, self.decoder_vocab_size = vocab_size, decoder_vocab_size
        self.embedding_size, self.hidden_size = embedding_size, hidden_size
        self.num_hidden_layers, self.bidirectional_encoder = num_hidden_layers, bidirectional_encoder
        self.generator = torch.Generator().manual_seed(seed)
        self.seed = seed

    def get_config(self, **overrides):
        kwargs = dict(
            vocab_size=self.vocab_size, decoder_vocab_size=self.decoder_vocab_size,
            embedding_size=self.embedding_size, hidden_size=self.hidden_size,
            num_hidden_layers=self.num_hidden_layers, dropout=0.0, bidirectional_encoder=self.bidirectional_encoder,
            pad_token_id=PAD, bos_token_id=BOS, eos_token_id=EOS,
        )
        kwargs.update(overrides)
        return GRUSeq2SeqConfig(**kwargs)

    def ids(self, batch, length, vocab):
        """Ids that avoid the special tokens, so padding and end of sentence are placed on purpose."""
        return torch.randint(3, vocab, (batch, length), generator=self.generator)

    def prepare_inputs(self):
        """A right-padded source batch (lengths src_len, src_len-1, ..., at least 1) and labels ending in EOS."""
        input_ids = self.ids(self.batch_size, self.src_len, self.vocab_size)
        lengths = [max(1, self.src_len - i) for i in range(self.batch_size)]
        attention_mask = torch.zeros_like(input_ids)
        for row, n in enumerate(lengths):
            attention_mask[row, :n] = 1
        input_ids = input_ids.masked_fill(attention_mask == 0, PAD)
        labels = self.ids(self.batch_size, self.tgt_len, self.decoder_vocab_size)
        labels[:, -1] = EOS
        return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}

    def model(self, cls=GRUSeq2SeqForConditionalGeneration, logit_scale=1.0, eos_bias=0.0, **overrides):
        """A model in eval mode with seeded weights. `logit_scale` sharpens the output distribution (fresh weights
        give near-uniform logits); `eos_bias` is added to the EOS logit."""
        torch.manual_seed(self.seed)
        model = cls(self.get_config(**overrides)).eval()
        if hasattr(model, "lm_head"):
            with torch.no_grad():
                model.lm_head.weight.mul_(logit_scale)
                model.lm_head.bias[EOS] += eos_bias
        return model

    # -- checks ----------------------------------------------------------------------------------------------------

    def create_and_check_model_shapes(self, test):
        model = self.model(GRUSeq2SeqModel)
        inputs = self.prepare_inputs()
        decoder_input_ids = self.ids(self.batch_size, self.tgt_len, self.decoder_vocab_size)
        out = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
                    decoder_input_ids=decoder_input_ids)
        directions = 2 if self.bidirectional_encoder else 1
        test.assertEqual(out.last_hidden_state.shape, (self.batch_size, self.tgt_len, self.hidden_size))
        test.assertEqual(out.encoder_last_hidden_state.shape,
                         (self.batch_size, self.src_len, directions * self.hidden_size))

    def create_and_check_lm_shapes_and_loss(self, test):
        model = self.model()
        inputs = self.prepare_inputs()
        out = model(**inputs)
        test.assertEqual(out.logits.shape, (self.batch_size, self.tgt_len, self.decoder_vocab_size))
        expected = torch.nn.functional.cross_entropy(out.logits.flatten(0, 1), inputs["labels"].flatten())
        torch.testing.assert_close(out.loss, expected)

    def create_and_check_padding_invariance(self, test, left_padding=False):
        """Each sentence gives the same logits alone as inside the padded batch."""
        model = self.model()
        inputs = self.prepare_inputs()
        ids, mask, labels = inputs["input_ids"], inputs["attention_mask"], inputs["labels"]
        if left_padding:
            ids, mask = to_left_padding(ids, mask)
        batch_logits = model(input_ids=ids, attention_mask=mask, labels=labels).logits
        for row in range(self.batch_size):
            alone = ids[row][mask[row].bool()][None]
            logits = model(input_ids=alone, labels=labels[row:row + 1]).logits
            torch.testing.assert_close(batch_logits[row:row + 1], logits, atol=1e-5, rtol=0)


def to_left_padding(ids, mask):
    """The same sentences with their padding moved to the left."""
    left_ids, left_mask = torch.zeros_like(ids), torch.zeros_like(mask)
    for row in range(ids.shape[0]):
        n = int(mask[row].sum())
        left_ids[row, ids.shape[1] - n:] = ids[row, :n]
        left_mask[row, ids.shape[1] - n:] = 1
    return left_ids, left_mask


def tiny_tokenizer():
    """A word-level tokenizer whose 19 ids fit the tester's vocabularies: pad=0, bos=1, eos=2 (appended), unk=3."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    words = "go run help stop wait hi va cours aide arrete attends salut . ! ?".split()
    vocab = {token: i for i, token in enumerate(["<pad>", "<s>", "</s>", "<unk>", *words])}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 2)])
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="<pad>", bos_token="<s>",
                                   eos_token="</s>", unk_token="<unk>")


def counting_compiled_calls(monkeypatch) -> list:
    """A list that grows by one for each step `generate()` runs through Transformers' compiled forward."""
    calls, original = [], GRUSeq2SeqForConditionalGeneration.get_compiled_call

    def counting(self, compile_config):
        call = original(self, compile_config)
        return lambda *args, **kwargs: calls.append(1) or call(*args, **kwargs)

    monkeypatch.setattr(GRUSeq2SeqForConditionalGeneration, "get_compiled_call", counting)
    return calls
