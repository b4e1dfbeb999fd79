// The model's own tokenizer.json, read by @huggingface/tokenizers (tokenizers.js), plus what the page needs around it:
// the ids of a line as Python's tokenizer gives them, and the words it maps to the unknown token.
import { Tokenizer } from "./lib/tokenizers.min.mjs";

const SPLIT_AT_METASPACE = (replacement) => ({
  // Python's Metaspace(split=True) cuts before each replacement character; tokenizers.js 0.2 does not cut, so the
  // cut is this Split, run right after an uncut Metaspace: "▁a▁b" -> "▁a", "▁b" (the same pieces).
  type: "Split", pattern: { Regex: `${replacement}[^${replacement}]*` }, behavior: "Isolated", invert: false,
});

/** The tokenizer.json pipeline with each step tokenizers.js lacks replaced by an equivalent of steps it has. */
export function adaptForTokenizersJs(pipeline) {
  const adapt = (step) => {
    if (!step) return step;
    if (step.type === "Sequence" && step.pretokenizers) return { ...step, pretokenizers: step.pretokenizers.flatMap(adaptList) };
    return step;
  };
  const adaptList = (step) => {
    if (step.type === "Metaspace" && step.split !== false) {
      return [{ ...step, split: false }, SPLIT_AT_METASPACE(step.replacement ?? "\u2581")];
    }
    return [adapt(step)];
  };
  const pre = pipeline.pre_tokenizer;
  const adapted = pre && pre.type === "Metaspace" ? { type: "Sequence", pretokenizers: adaptList(pre) } : adapt(pre);
  return { ...pipeline, pre_tokenizer: adapted };
}

export class LineTokenizer {
  constructor(tokenizerJson, tokenizerConfig) {
    this.json = tokenizerJson;
    this.tokenizer = new Tokenizer(adaptForTokenizersJs(tokenizerJson), tokenizerConfig);
    this.unkId = this.tokenizer.token_to_id(tokenizerConfig.unk_token ?? "<unk>");
    this.wordLevel = tokenizerJson.model.type === "WordLevel";
  }

  /** Token ids of one line, with the special tokens the post-processor adds (`</s>`), as Python's tokenizer(line). */
  encode(line) {
    return this.tokenizer.encode(line).ids;
  }

  decode(ids) {
    return this.tokenizer.decode(ids, { skip_special_tokens: true });
  }

  /** The normalized text of `text`, as the tokenizer's normalizer makes it. */
  normalize(text) {
    return this.tokenizer.normalizer ? this.tokenizer.normalizer.normalize(text) : text;
  }

  /**
   * The substrings of `line` that the tokenizer maps to its unknown token, in order, each once (outer spaces
   * stripped), as the CLI warns of them. A word-level model maps each pre-token to one token: the line is cut at its
   * added tokens (`</s>`, ...: one id each), and each other section is normalized and pre-tokenized as the library
   * does; a pre-token whose id is the unknown one is found in `line` through the normalizer (normalizing ever longer
   * prefixes), as Python's offsets find it. Byte-level BPE has every byte: only a typed `<unk>` is unknown there.
   */
  unknownWords(line, ids = this.encode(line)) {
    if (this.unkId === undefined || !ids.includes(this.unkId)) return [];
    const words = [];
    const isUnknown = (text) => this.tokenizer.token_to_id(text) === this.unkId; // "<unk>" typed in the line
    if (!this.wordLevel) { // byte-level BPE: only a typed "<unk>" is unknown
      for (const { text, added } of this.sections(line)) if (added && isUnknown(text) && !words.includes(text)) words.push(text);
      return words;
    }
    let k = 0; // the id of the next piece
    for (const { text, added } of this.sections(line)) {
      if (added) {
        if (isUnknown(text) && !words.includes(text)) words.push(text);
        k += 1;
        continue;
      }
      for (const [start, end] of this.pieceSpans(text)) {
        const word = ids[k] === this.unkId ? this.originalSpan(text, start, end).trim() : "";
        if (word && !words.includes(word)) words.push(word);
        k += 1;
      }
    }
    return words;
  }

  /** `line` cut at the added tokens it holds (leftmost, longest first), as the library cuts it before normalizing. */
  sections(line) {
    const added = (this.json.added_tokens ?? []).map((t) => t.content).filter(Boolean)
      .sort((a, b) => b.length - a.length);
    const out = [];
    let from = 0;
    for (let i = 0; i < line.length;) {
      const token = added.find((t) => line.startsWith(t, i));
      if (!token) { i += 1; continue; }
      if (i > from) out.push({ text: line.slice(from, i), added: false });
      out.push({ text: token, added: true });
      i += token.length;
      from = i;
    }
    if (from < line.length) out.push({ text: line.slice(from), added: false });
    return out;
  }

  /** [start, end) in `normalize(text)` of each pre-token of `text`. */
  pieceSpans(text) {
    const normalized = this.normalize(text);
    if (!normalized) return [];
    const pieces = this.tokenizer.pre_tokenizer.pre_tokenize_text(normalized, {});
    // Metaspace keeps every character and prepends at most one: the pieces, end to end, are the normalized text
    // with one more character in front (or none), so each piece's span in `normalized` follows from their lengths.
    let at = normalized.length - pieces.reduce((n, piece) => n + piece.length, 0);
    return pieces.map((piece) => {
      const span = [Math.max(at, 0), at + piece.length];
      at += piece.length;
      return span;
    });
  }

  /** The part of `line` that normalizes to `normalize(line)[start:end)`. */
  originalSpan(line, start, end) {
    const prefixLength = (i) => this.normalize(line.slice(0, i)).length;
    let from = 0;
    while (from < line.length && prefixLength(from + 1) <= start) from += 1;
    let to = from;
    while (to < line.length && prefixLength(to) < end) to += 1;
    return line.slice(from, to);
  }
}
