"""Export a model as a static web page that translates in the browser: no server, no text leaving the machine.

`export_web(model, out)` (CLI: `hf-gru-seq2seq-export-web MODEL OUT`) writes a folder that any static server serves
(`python -m http.server --directory OUT`) and that pushes to the Hub as a static Space as it is:
- the page (`index.html`, `app.js`, `translator.js`, `decoding.js`, `tokenizer.js`, `style.css`, from the repo's
  `web/`): greedy and beam search as `generate()` runs them, with the model's generation config;
- `lib/`: the JavaScript libraries the page loads, copied from `web/node_modules` (`npm ci --prefix web`):
  onnxruntime-web's WASM build and tokenizers.js, and `lib/LIBRARIES.md` (their versions and licences);
- the two ONNX graphs (int8 by default, fp32 with `fp32=True`), `config.json`, `generation_config.json`,
  `tokenizer.json`, `tokenizer_config.json`, and `page.json` (the model's name and which graphs to load);
- `README.md` with the Hub's static-Space front matter (`sdk: static`).

MODEL is a trained model (a folder or a Hub id: it is exported to ONNX first) or an ONNX export
(`hf-gru-seq2seq-export-onnx`, or a model folder holding one in `onnx/`).
"""

import argparse
import json
import shutil
import tempfile
from pathlib import Path

WEB_DIR = Path(__file__).resolve().parent.parent / "web"  # the page's sources, in a checkout of the repo
PAGE_FILES = ("index.html", "style.css", "app.js", "translator.js", "decoding.js", "tokenizer.js")
LIBRARY_FILES = {  # web/node_modules/... -> lib/...: only what the page loads (ORT's plain WASM build, no WebGPU)
    "onnxruntime-web/dist/ort.wasm.min.mjs": "ort.wasm.min.mjs",
    "onnxruntime-web/dist/ort-wasm-simd-threaded.mjs": "ort-wasm-simd-threaded.mjs",
    "onnxruntime-web/dist/ort-wasm-simd-threaded.wasm": "ort-wasm-simd-threaded.wasm",
    "@huggingface/tokenizers/dist/tokenizers.min.mjs": "tokenizers.min.mjs",
    "@huggingface/tokenizers/LICENSE": "LICENSE-tokenizers.js",
}
PACKAGES = ("onnxruntime-web", "@huggingface/tokenizers")
MODEL_FILES = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json")
# What the page's search reads from the generation config; any other setting (sampling, a logits processor, ...)
# would make the page decode differently from generate(), so the export refuses it.
GENERATION_KEYS = {"max_length", "max_new_tokens", "num_beams", "length_penalty", "early_stopping", "bos_token_id",
                   "eos_token_id", "pad_token_id", "decoder_start_token_id", "use_cache", "transformers_version",
                   "_from_model_config"}


def check_libraries(web_dir: Path = WEB_DIR) -> None:
    """One line naming what is missing: the page's sources or the npm packages it copies."""
    missing = [name for name in PAGE_FILES if not (web_dir / name).is_file()]
    if missing:
        raise FileNotFoundError(f"the page's sources are not in {web_dir} (missing {missing[0]}): "
                                "export from a checkout of hf-gru-seq2seq")
    missing = [name for name in LIBRARY_FILES if not (web_dir / "node_modules" / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{web_dir / 'node_modules' / missing[0]} is missing: run npm ci --prefix {web_dir}")


def _export_folder(model: Path, fp32: bool) -> Path | None:
    """The ONNX export in `model` (the folder itself or its onnx/), None when `model` holds no export at all."""
    from .modeling_gru_seq2seq_onnx import onnx_file_names

    if not model.is_dir():
        return None
    for folder in (model, model / "onnx"):
        if any(folder.glob("encoder_model*.onnx")) or any(folder.glob("decoder_model*.onnx")):
            for name in onnx_file_names(quantized=not fp32):
                if not (folder / name).is_file():
                    flag = "" if fp32 else " --quantize"
                    raise FileNotFoundError(f"no {name} in {folder}: export the graphs with "
                                            f"hf-gru-seq2seq-export-onnx MODEL {folder}{flag}")
            return folder
    return None


def check_supported(folder: Path) -> None:
    """The export is of this package's model, with a tokenizer.json and a generation config the page follows."""
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    if config.get("model_type") != "gru_seq2seq":
        raise ValueError(f"{folder / 'config.json'}: model_type {config.get('model_type')!r} is not supported "
                         "(the page runs gru_seq2seq models)")
    for name in MODEL_FILES[1:]:
        if not (folder / name).is_file():
            raise FileNotFoundError(f"no {name} in {folder}: the page needs the model's own (fast) tokenizer "
                                    "and generation config")
    generation = json.loads((folder / "generation_config.json").read_text(encoding="utf-8"))
    from transformers import GenerationConfig

    defaults = GenerationConfig().to_dict()
    changed = sorted(k for k, v in generation.items() if k not in GENERATION_KEYS and defaults.get(k, None) != v)
    eos = generation.get("eos_token_id")
    if isinstance(eos, list) and len(eos) > 1:
        changed = ["eos_token_id"]  # the page's search stops at one end-of-sentence token
    if changed:
        raise ValueError(f"{folder / 'generation_config.json'}: {changed[0]}={generation[changed[0]]!r} is not "
                         "supported by the page (it runs greedy and beam search without logits processors)")


def model_name(model: str) -> str:
    """The name the page shows: a Hub id as it is, a folder by its name (its parent's for an onnx/ subfolder)."""
    path = Path(model).expanduser()
    if not path.exists():
        return model
    path = path.resolve()
    return path.parent.name if path.name == "onnx" else path.name


def space_card(name: str, precision: str) -> str:
    """README.md of the folder: the Hub's front matter for a static Space, and what the folder holds."""
    return f"""---
title: {name}
emoji: 🔤
colorFrom: blue
colorTo: indigo
sdk: static
app_file: index.html
pinned: false
license: apache-2.0
---

# {name}, in the browser

A GRU encoder-decoder translating in this page: its ONNX graphs ({precision}) run in onnxruntime-web (WASM) and
its own `tokenizer.json` is read by tokenizers.js. Nothing is sent anywhere. Made by `hf-gru-seq2seq-export-web`.

Serve it with any static server, e.g. `python -m http.server --directory .`, or push this folder as a Hub Space
(static SDK). Hooks for automation: `#source`, `#translate`, `#target`, `#warnings` and `document.body.dataset.state`
(`loading`, `ready`, `busy`, `done`, `error`).
"""


def libraries_note() -> str:
    """Which npm packages lib/ holds, at which version and under which licence (from their package.json)."""
    lines = ["# Libraries in this folder", "", "From npm (pinned in hf-gru-seq2seq's web/package-lock.json):", ""]
    for package in PACKAGES:
        meta = json.loads((WEB_DIR / "node_modules" / package / "package.json").read_text(encoding="utf-8"))
        files = ", ".join(target for source, target in LIBRARY_FILES.items() if source.startswith(package + "/"))
        lines.append(f"- {meta['name']} {meta['version']} ({meta.get('license', 'see the package')}): {files}")
    return "\n".join(lines) + "\n"


def _write_folder(export: Path, out: Path, name: str, fp32: bool) -> None:
    from .modeling_gru_seq2seq_onnx import onnx_file_names

    (out / "lib").mkdir(parents=True, exist_ok=True)
    for file in PAGE_FILES:
        shutil.copy2(WEB_DIR / file, out / file)
    for source, target in LIBRARY_FILES.items():
        shutil.copy2(WEB_DIR / "node_modules" / source, out / "lib" / target)
    (out / "lib" / "LIBRARIES.md").write_text(libraries_note(), encoding="utf-8")
    encoder, decoder = onnx_file_names(quantized=not fp32)
    for file in (encoder, decoder, *MODEL_FILES):
        shutil.copy2(export / file, out / file)
    precision = "fp32" if fp32 else "int8"
    page = {"name": name, "precision": precision, "encoder": encoder, "decoder": decoder}
    (out / "page.json").write_text(json.dumps(page, indent=2) + "\n", encoding="utf-8")
    (out / "README.md").write_text(space_card(name, precision), encoding="utf-8")


def export_web(model: str, output_dir, fp32: bool = False) -> Path:
    """Write the page for `model` (a trained model or its ONNX export, a folder or a Hub id) into `output_dir`."""
    from .translate import check_model_reference

    check_libraries()
    check_model_reference(model, "MODEL")
    out = Path(output_dir)
    if out.exists() and any(out.iterdir()) and not (out / "page.json").is_file():
        raise FileExistsError(f"{out} exists and holds something other than an exported page: choose another OUT")
    export = _export_folder(Path(model).expanduser(), fp32)
    with tempfile.TemporaryDirectory(prefix="hf-gru-seq2seq-web-") as scratch:
        if export is None:  # a trained model (folder or Hub id): export its graphs first
            from transformers import PretrainedConfig

            model_type = PretrainedConfig.get_config_dict(model)[0].get("model_type")
            if model_type != "gru_seq2seq":
                raise ValueError(f"MODEL {model}: model_type {model_type!r} is not supported (the page runs "
                                 "gru_seq2seq models)")
            from .onnx_export import export_onnx

            export = export_onnx(model, scratch, quantize=not fp32)
        check_supported(export)
        if out.exists() and out.resolve() == export.resolve():
            raise ValueError(f"OUT {out} is MODEL's own folder: choose another OUT")
        for stale in out.glob("*.onnx"):  # a page exported here before, maybe at the other precision
            stale.unlink()
        _write_folder(export, out, model_name(model), fp32)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("model", metavar="MODEL", help="a trained model or its ONNX export (a folder or a Hub id)")
    parser.add_argument("output_dir", metavar="OUT", help="the folder to write the page into")
    parser.add_argument("--fp32", action="store_true", help="ship the full-precision graphs instead of the int8 ones")
    args = parser.parse_args(argv)
    import transformers

    transformers.utils.logging.disable_progress_bar()
    out = export_web(args.model, args.output_dir, fp32=args.fp32)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 2**20
    print(f"Wrote the page to {out} ({size:.1f} MiB); serve it with: python -m http.server --directory {out}")
