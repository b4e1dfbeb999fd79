// The exported model in the page: its configs, its tokenizer and its two ONNX graphs in onnxruntime-web (WASM), and
// `translate(lines)`: one output line per input line, batched as `hf-gru-seq2seq-translate` batches them.
import * as ort from "./lib/ort.wasm.min.mjs";
import { beamSearch, greedySearch } from "./decoding.js";
import { LineTokenizer } from "./tokenizer.js";

const BATCH_SIZE = 64; // the CLI's default --batch_size
const WASM_FILE = "ort-wasm-simd-threaded.wasm"; // what ort.wasm.min.mjs runs (lib/, copied at export)
ort.env.wasm.wasmPaths = new URL("./lib/", import.meta.url).href;
ort.env.wasm.numThreads = 1; // threads need a cross-origin-isolated page, which a plain static server does not make

async function fetchChecked(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status} ${response.statusText}`);
  return response;
}

const fetchJson = async (url) => (await fetchChecked(url)).json();

/** The bytes of `url`, reporting (bytes read, bytes expected) as they arrive. */
async function fetchBytes(url, onBytes) {
  const response = await fetchChecked(url);
  const expected = Number(response.headers.get("content-length")) || 0;
  const reader = response.body.getReader();
  const chunks = [];
  let read = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    read += value.length;
    onBytes(read, expected);
  }
  const bytes = new Uint8Array(read);
  let at = 0;
  for (const chunk of chunks) { bytes.set(chunk, at); at += chunk.length; }
  return bytes;
}

/** A translation as one line (Python's " ".join(text.splitlines()).strip()): a line break would shift every later line. */
const oneLine = (text) => text.split(/\r\n|[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]/).join(" ").trim();

/** The language pair a model declares (`translation_en_to_fr` among its pipelines), or null. */
export function languagePair(config) {
  const task = Object.keys(config.custom_pipelines ?? {}).find((name) => /^translation_.+_to_.+$/.test(name));
  const match = task && task.match(/^translation_(.+)_to_(.+)$/);
  return match ? { source: match[1], target: match[2] } : null;
}

export class Translator {
  static languagePair = languagePair;

  static async load(base, onProgress = () => {}) {
    const [page, config, generation, tokenizerJson, tokenizerConfig] = await Promise.all(
      ["page.json", "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json"]
        .map((name) => fetchJson(new URL(name, base))));
    if (config.model_type !== "gru_seq2seq") throw new Error(`config.json: model_type ${config.model_type} is not gru_seq2seq`);
    const sizes = {}, loaded = {};
    const report = () => {
      const total = Object.values(sizes).reduce((a, b) => a + b, 0);
      onProgress(total ? Object.values(loaded).reduce((a, b) => a + b, 0) / total : 0);
    };
    const download = (url) => fetchBytes(url, (read, expected) => {
      loaded[url] = read; sizes[url] = Math.max(expected, read); report();
    });
    // The runtime's WASM (the largest file) is fetched here too, so that the progress bar counts it.
    const [wasm, encoderBytes, decoderBytes] = await Promise.all(
      [new URL(WASM_FILE, ort.env.wasm.wasmPaths), new URL(page.encoder, base), new URL(page.decoder, base)].map(download));
    ort.env.wasm.wasmBinary = wasm;
    const session = (bytes) => ort.InferenceSession.create(bytes, { executionProviders: ["wasm"] });
    const encoder = await session(encoderBytes), decoder = await session(decoderBytes);
    return new Translator({ page, config, generation, encoder, decoder,
                            tokenizer: new LineTokenizer(tokenizerJson, tokenizerConfig) });
  }

  constructor({ page, config, generation, encoder, decoder, tokenizer }) {
    Object.assign(this, { page, config, generation, encoder, decoder, tokenizer });
    this.vocab = config.decoder_vocab_size ?? config.vocab_size;
    this.layers = config.num_hidden_layers;
    this.hidden = config.hidden_size;
  }

  /** The generation config's defaults, as generate() reads them (max_new_tokens, when set, wins over max_length). */
  searchOptions(numBeams) {
    const g = this.generation, eos = Array.isArray(g.eos_token_id) ? g.eos_token_id[0] : g.eos_token_id;
    return {
      numBeams: numBeams ?? g.num_beams ?? 1,
      startId: g.decoder_start_token_id ?? this.config.decoder_start_token_id,
      eosId: eos ?? this.config.eos_token_id,
      padId: g.pad_token_id ?? this.config.pad_token_id,
      maxLength: g.max_new_tokens ? g.max_new_tokens + 1 : (g.max_length ?? 20),
      lengthPenalty: g.length_penalty ?? 1.0,
      earlyStopping: g.early_stopping ?? false,
      vocab: this.vocab,
    };
  }

  /**
   * One translation per line, in order, and the unknown words of each line. Blank lines give "" without reaching
   * the model; the others are sorted by length and decoded in batches of 64, as the CLI does.
   */
  async translate(lines, { numBeams } = {}) {
    const options = this.searchOptions(numBeams);
    const outputs = lines.map(() => "");
    const unknown = lines.map(() => []);
    const todo = lines.map((_, i) => i).filter((i) => lines[i].trim())
      .sort((a, b) => [...lines[a]].length - [...lines[b]].length);
    for (let start = 0; start < todo.length; start += BATCH_SIZE) {
      const batch = todo.slice(start, start + BATCH_SIZE);
      const ids = batch.map((i) => this.tokenizer.encode(lines[i].trim()));
      batch.forEach((i, k) => { unknown[i] = this.tokenizer.unknownWords(lines[i].trim(), ids[k]); });
      const tokens = await this.generate(ids, options);
      batch.forEach((i, k) => { outputs[i] = oneLine(this.tokenizer.decode(tokens[k])); });
    }
    return { outputs, unknown };
  }

  /** generate() on a batch of token id lists: the encoder once, then the chosen search over the decoder graph. */
  async generate(ids, options) {
    const rows = ids.length, width = Math.max(...ids.map((x) => x.length));
    const inputIds = new BigInt64Array(rows * width).fill(BigInt(options.padId));
    const mask = new BigInt64Array(rows * width);
    ids.forEach((row, r) => row.forEach((id, t) => { inputIds[r * width + t] = BigInt(id); mask[r * width + t] = 1n; }));
    const { final_state: finalState } = await this.encoder.run({
      input_ids: new ort.Tensor("int64", inputIds, [rows, width]),
      attention_mask: new ort.Tensor("int64", mask, [rows, width]),
    }); // (B, L, H)
    const beams = options.numBeams;
    const step = new DecoderSteps(this.decoder, finalState.data, rows, beams, this.layers, this.hidden);
    const search = beams > 1 ? beamSearch : greedySearch;
    return search(step, { ...options, batchSize: rows });
  }
}

/** The decoder graph one token at a time for `rows * beams` rows, each item's beams side by side: its GRU state
 * (L, rows, H) starts from the encoder's final state, and the context is the encoder's top layer. */
class DecoderSteps {
  constructor(session, finalState, items, beams, layers, hidden) {
    Object.assign(this, { session, layers, hidden });
    this.rows = items * beams;
    this.context = new Float32Array(this.rows * hidden);
    this.state = new Float32Array(layers * this.rows * hidden);
    for (let row = 0; row < this.rows; row++) {
      const item = Math.floor(row / beams);
      this.context.set(finalState.subarray(((item * layers) + layers - 1) * hidden, ((item * layers) + layers) * hidden),
                       row * hidden);
      for (let l = 0; l < layers; l++) {
        this.state.set(finalState.subarray((item * layers + l) * hidden, (item * layers + l + 1) * hidden),
                       (l * this.rows + row) * hidden);
      }
    }
    this.contextTensor = new ort.Tensor("float32", this.context, [this.rows, hidden]);
  }

  async step(tokens) {
    const { logits, new_state: newState } = await this.session.run({
      input_ids: new ort.Tensor("int64", BigInt64Array.from(tokens, BigInt), [this.rows, 1]),
      state: new ort.Tensor("float32", this.state, [this.layers, this.rows, this.hidden]),
      context: this.contextTensor,
    });
    this.state = newState.data;
    return logits.data;
  }

  reorder(sources) {
    const { rows, hidden } = this, state = new Float32Array(this.state.length);
    for (let l = 0; l < this.layers; l++) {
      sources.forEach((from, row) => {
        state.set(this.state.subarray((l * rows + from) * hidden, (l * rows + from + 1) * hidden), (l * rows + row) * hidden);
      });
    }
    this.state = state;
  }
}
