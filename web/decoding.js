// Greedy and beam search over a one-step decoder, as Transformers' generate() runs them (transformers 5.17-5.25:
// `_sample` without sampling and `_beam_search`), so the page picks the tokens Python picks: the same rows in the same
// batches (finished rows keep being fed `pad`, which matters to int8 graphs whose activations are quantized per batch),
// the same scores in float32, the same length penalty, early stopping and `max_length` (which counts the start token).
//
// `model.step(tokens)` feeds one token per row and resolves to the logits (rows x vocab, a Float32Array);
// `model.reorder(rows)` makes row i continue from the state of row rows[i]. Each search resolves to one token list per
// batch item, the decoder start token first, as generate() returns them (less the padding).

const f32 = Math.fround;
const NEG = -1e9;

/** argmax of each row of `logits` (the first maximum, as torch.argmax). */
function argmaxRows(logits, rows, vocab) {
  const out = new Array(rows);
  for (let r = 0; r < rows; r++) {
    let best = 0, bestValue = logits[r * vocab];
    for (let v = 1; v < vocab; v++) if (logits[r * vocab + v] > bestValue) { best = v; bestValue = logits[r * vocab + v]; }
    out[r] = best;
  }
  return out;
}

/** log_softmax of one row, in float32 as torch computes it (x - max - log(sum(exp(x - max)))). */
function logSoftmaxRow(logits, offset, vocab) {
  let max = -Infinity;
  for (let v = 0; v < vocab; v++) max = Math.max(max, logits[offset + v]);
  let sum = 0;
  for (let v = 0; v < vocab; v++) sum += Math.exp(logits[offset + v] - max);
  const logSum = f32(Math.log(sum));
  const out = new Float32Array(vocab);
  for (let v = 0; v < vocab; v++) out[v] = f32(f32(logits[offset + v] - max) - logSum);
  return out;
}

export async function greedySearch(model, { batchSize, startId, eosId, padId, maxLength, vocab }) {
  const sequences = Array.from({ length: batchSize }, () => [startId]);
  const unfinished = new Array(batchSize).fill(true);
  let tokens = sequences.map((s) => s[0]);
  for (let length = 1; length < maxLength && unfinished.some(Boolean); length++) {
    const logits = await model.step(tokens);
    const next = argmaxRows(logits, batchSize, vocab).map((t, r) => (unfinished[r] ? t : padId));
    next.forEach((t, r) => { sequences[r].push(t); if (t === eosId) unfinished[r] = false; });
    tokens = next;
  }
  return sequences.map((s) => trimAfterEos(s, eosId));
}

function trimAfterEos(tokens, eosId) {
  const end = tokens.indexOf(eosId, 1);
  return end < 0 ? tokens : tokens.slice(0, end + 1);
}

/** The indices of the k largest of `values`, largest first (ties: the lower index first), in one pass. */
function topK(values, k) {
  const best = [];
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (best.length === k) {
      if (!(v > values[best[k - 1]])) continue;
      best.pop();
    }
    let at = best.length;
    while (at > 0 && values[best[at - 1]] < v) at--;
    best.splice(at, 0, i);
  }
  return best;
}

/** Beam search of `numBeams` beams per item, rows ordered item by item (item 0's beams, then item 1's, ...). */
export async function beamSearch(model, options) {
  const { batchSize, numBeams, startId, eosId, maxLength, vocab } = options;
  const lengthPenalty = options.lengthPenalty ?? 1.0, earlyStopping = options.earlyStopping ?? false;
  const keep = 2 * numBeams; // candidates per item: (1 + number of eos tokens) * beams
  const items = Array.from({ length: batchSize }, () => ({
    running: Array.from({ length: numBeams }, (_, j) => ({ tokens: [startId], score: j === 0 ? 0 : NEG })),
    finished: Array.from({ length: numBeams }, () => ({ tokens: [startId], score: NEG, done: false })),
    improvable: true, // Transformers' `is_early_stop_heuristic_unsatisfied`
  }));
  let curLen = 1; // the decoder prompt is the start token
  let anyOpen = true;
  while (anyOpen) {
    const logits = await model.step(items.flatMap((item) => item.running.map((b) => b.tokens[b.tokens.length - 1])));
    const sources = [];
    let allHit = true;
    items.forEach((item, i) => {
      const candidates = itemCandidates(item, logits, i * numBeams, vocab, keep);
      const hits = candidates.map((c) => c.token === eosId || curLen + 1 >= maxLength);
      allHit &&= hits.every(Boolean);
      const runningScores = candidates.map((c, k) => (hits[k] ? f32(c.score + NEG) : c.score));
      const nextRunning = topK(runningScores, numBeams);
      updateFinished(item, candidates, hits, { numBeams, curLen, lengthPenalty, earlyStopping });
      item.running = nextRunning.map((k) => ({ tokens: candidates[k].tokens, score: runningScores[k] }));
      nextRunning.forEach((k) => sources.push(i * numBeams + candidates[k].beam));
    });
    model.reorder(sources);
    curLen += 1;
    for (const item of items) item.improvable &&= canImprove(item, { curLen, maxLength, lengthPenalty, earlyStopping });
    const allFull = items.every((item) => item.finished.every((b) => b.done));
    anyOpen = items.some((item) => item.improvable) && !(allFull && earlyStopping === true) && !allHit;
  }
  return items.map((item) => item.finished[0].tokens);
}

/** The `keep` best continuations of an item's running beams: accumulated log-probabilities, best first. */
function itemCandidates(item, logits, firstRow, vocab, keep) {
  const numBeams = item.running.length;
  const scores = new Float32Array(numBeams * vocab);
  item.running.forEach((beam, j) => {
    const logProbs = logSoftmaxRow(logits, (firstRow + j) * vocab, vocab);
    for (let v = 0; v < vocab; v++) scores[j * vocab + v] = f32(logProbs[v] + beam.score);
  });
  return topK(scores, keep).map((index) => {
    const beam = Math.floor(index / vocab), token = index % vocab;
    return { beam, token, score: scores[index], tokens: [...item.running[beam].tokens, token] };
  });
}

/** Transformers' `_update_finished_beams`: the best `numBeams` of the finished hypotheses and the new ones. */
function updateFinished(item, candidates, hits, { numBeams, curLen, lengthPenalty, earlyStopping }) {
  const full = item.finished.every((b) => b.done) && earlyStopping === true;
  const divisor = f32(Math.pow(curLen, lengthPenalty)); // (cur_len + 1 - decoder_prompt_len) ** length_penalty
  const fresh = candidates.map((c, k) => {
    const done = hits[k] && k < numBeams;
    let score = f32(c.score / divisor);
    if (full) score = f32(score + NEG);
    if (!item.improvable) score = f32(score + NEG);
    if (!done) score = f32(score + NEG);
    return { tokens: c.tokens, score, done };
  });
  const merged = [...item.finished, ...fresh];
  item.finished = topK(merged.map((h) => h.score), numBeams).map((k) => merged[k]);
}

/** Transformers' `_check_early_stop_heuristic` for one item. */
function canImprove(item, { curLen, maxLength, lengthPenalty, earlyStopping }) {
  const length = earlyStopping === "never" && lengthPenalty > 0 ? maxLength - 1 : curLen - 1;
  const best = f32(item.running[0].score / f32(Math.pow(length, lengthPenalty)));
  const worst = Math.min(...item.finished.map((b) => b.score));
  return item.finished.some((b) => best > (b.done ? worst : NEG));
}
