"""A saved model loads on a machine without this package, through the code saved beside it."""

import json

import pytest
import torch
from model_tester import GRUSeq2SeqModelTester
from without_package import run_without_package

LOAD_AND_RUN = """
import json, sys, torch
from transformers import {auto}
model = {auto}.from_pretrained({folder!r}, trust_remote_code=True).eval()
assert "hf_gru_seq2seq" not in sys.modules
inputs = torch.load({folder!r} + "/inputs.pt")
with torch.no_grad():
    out = model(**inputs)
result = {{"class": type(model).__name__, "module": type(model).__module__}}
if {auto!r} == "AutoModelForSeq2SeqLM":
    torch.save(out.logits, {folder!r} + "/remote_logits.pt")
    generated = model.generate(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
                               max_new_tokens=6, num_beams=2)
    torch.save(generated, {folder!r} + "/remote_generated.pt")
else:
    torch.save(out.last_hidden_state, {folder!r} + "/remote_hidden.pt")
print(json.dumps(result))
"""


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("remote")
    tester = GRUSeq2SeqModelTester(bidirectional_encoder=True)
    model = tester.model()
    inputs = tester.prepare_inputs()
    model.save_pretrained(folder)
    torch.save({"input_ids": inputs["input_ids"], "attention_mask": inputs["attention_mask"],
                "decoder_input_ids": model.prepare_decoder_input_ids_from_labels(inputs["labels"])},
               folder / "inputs.pt")
    return folder, model, inputs


def test_saved_folder_holds_the_code_and_auto_map(saved):
    folder, _, _ = saved
    config = json.loads((folder / "config.json").read_text())
    assert config["auto_map"]["AutoModelForSeq2SeqLM"] == "modeling_gru_seq2seq.GRUSeq2SeqForConditionalGeneration"
    assert config["auto_map"]["AutoModel"] == "modeling_gru_seq2seq.GRUSeq2SeqModel"
    assert config["auto_map"]["AutoConfig"] == "configuration_gru_seq2seq.GRUSeq2SeqConfig"
    assert (folder / "modeling_gru_seq2seq.py").exists() and (folder / "configuration_gru_seq2seq.py").exists()


@pytest.mark.parametrize("auto", ["AutoModelForSeq2SeqLM", "AutoModel"])
def test_loads_without_the_package_and_gives_identical_outputs(saved, auto):
    folder, model, inputs = saved
    done = run_without_package(LOAD_AND_RUN.format(auto=auto, folder=str(folder)))
    result = json.loads(done.stdout.strip().splitlines()[-1])
    expected_class = "GRUSeq2SeqForConditionalGeneration" if auto == "AutoModelForSeq2SeqLM" else "GRUSeq2SeqModel"
    assert result["class"] == expected_class
    assert not result["module"].startswith("hf_gru_seq2seq")  # the remote copy, not this package
    loaded = torch.load(folder / "inputs.pt")
    with torch.no_grad():
        if auto == "AutoModelForSeq2SeqLM":
            torch.testing.assert_close(torch.load(folder / "remote_logits.pt"), model(**loaded).logits, atol=0, rtol=0)
            expected = model.generate(input_ids=loaded["input_ids"], attention_mask=loaded["attention_mask"],
                                      max_new_tokens=6, num_beams=2)
            assert torch.equal(torch.load(folder / "remote_generated.pt"), expected)
        else:
            hidden = model.model(**loaded).last_hidden_state
            torch.testing.assert_close(torch.load(folder / "remote_hidden.pt"), hidden, atol=0, rtol=0)


def test_remote_code_needs_trust_remote_code(saved):
    folder, _, _ = saved
    code = f"""
from transformers import AutoModelForSeq2SeqLM
try:
    AutoModelForSeq2SeqLM.from_pretrained({str(folder)!r}, trust_remote_code=False)
except ValueError as error:
    print("refused:", error)
else:
    raise SystemExit("loaded custom code without trust_remote_code=True")
"""
    assert "refused:" in run_without_package(code).stdout


def test_output_loading_info_works_through_the_remote_code(saved):
    folder, _, _ = saved
    code = f"""
from transformers import AutoModelForSeq2SeqLM
model, info = AutoModelForSeq2SeqLM.from_pretrained({str(folder)!r}, trust_remote_code=True, output_loading_info=True)
assert type(model).__name__ == "GRUSeq2SeqForConditionalGeneration", type(model)
assert not info["missing_keys"] and not info["unexpected_keys"], info
print("loaded with info")
"""
    assert "loaded with info" in run_without_package(code).stdout
