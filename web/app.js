// The page: loads the model beside it, then translates the text box line by line. Hooks for automation and
// embedding: #source, #translate, #target (one line per input line), #warnings, and document.body.dataset.state
// (loading, ready, busy, done or error).

const $ = (id) => document.getElementById(id);
const setState = (state) => { document.body.dataset.state = state; };

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = false;
  setState("error");
}

function describe(translator) {
  const { page, config } = translator;
  const pair = translator.constructor.languagePair(config);
  $("model-name").textContent = page.name;
  document.title = `${page.name}: translate in the browser`;
  $("languages").textContent = [pair ? `${pair.source} → ${pair.target}` : "language pair not declared",
                                `${page.precision} graphs`].join(" · ");
  $("beams").textContent = translator.searchOptions().numBeams;
  $("beam").checked = translator.searchOptions().numBeams > 1;
  $("beam").disabled = translator.searchOptions().numBeams <= 1; // a greedy model: no choice to offer
  $("beam").parentElement.hidden = $("beam").disabled;
}

async function translate(translator) {
  setState("busy");
  $("translate").disabled = true;
  try {
    const lines = $("source").value.split("\n");
    if (lines.length > 1 && lines[lines.length - 1] === "") lines.pop(); // the last newline starts no new line
    const started = performance.now();
    const numBeams = $("beam").checked ? translator.searchOptions().numBeams : 1;
    const { outputs, unknown } = await translator.translate(lines, { numBeams });
    const seconds = (performance.now() - started) / 1000;
    $("target").value = outputs.join("\n");
    $("warnings").textContent = unknownWordsWarning(unknown);
    const count = lines.filter((line) => line.trim()).length;
    $("timing").textContent = `${count} line${count === 1 ? "" : "s"} in ${seconds.toFixed(3)} s`;
    $("timing").dataset.seconds = String(seconds);
    setState("done");
  } catch (error) {
    showError(`Translation failed: ${error.message ?? error}`);
  } finally {
    $("translate").disabled = false;
  }
}

async function main() {
  setState("loading");
  let translator;
  try {
    const { Translator } = await import("./translator.js"); // inside the try: a missing library is said in the page
    translator = await Translator.load(new URL("./", import.meta.url), (share) => { $("progress").value = share; });
  } catch (error) {
    showError(`The model could not be loaded: ${error.message ?? error}`);
    return;
  }
  window.translator = translator; // for embedding pages and tests
  describe(translator);
  $("translate").disabled = false;
  $("translate").addEventListener("click", () => translate(translator));
  setState("ready");
}

main();

/**
 * The warning `hf-gru-seq2seq-translate` prints (translate.py, `unknown_words_warning`): one line naming each word the
 * tokenizer reads as <unk> once, with the first line it is on; "" when there is none.
 */
function unknownWordsWarning(unknown, limit = 20) {
  const firstLine = new Map();
  unknown.forEach((words, i) => words.forEach((word) => { if (!firstLine.has(word)) firstLine.set(word, i + 1); }));
  if (firstLine.size === 0) return "";
  const labels = [...firstLine].map(([word, line]) => `"${word}" (line ${line})`);
  const more = labels.length > limit ? ` and ${labels.length - limit} more` : "";
  return `warning: ${firstLine.size} word(s) unknown to the tokenizer, translated as <unk>: ${labels.slice(0, limit).join(", ")}${more}`;
}
