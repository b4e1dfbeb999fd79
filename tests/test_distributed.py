"""The training script under DDP on CPUs (gloo): two processes launched by torchrun or `accelerate launch` train one
model together, as one process does with their combined batch, and score the test split in order."""

import json
import math
import socket
import subprocess
import sys

import pytest
import sacrebleu
from test_training import (
    REPO,
    TINY,
    load_folder,
    logged_losses,
    number_pairs,
    read_json,
    script_env,
    tatoeba_lines,
    write_tatoeba,
)

from hf_gru_seq2seq import training
from hf_gru_seq2seq.translate import translate_lines

STEPS, PER_DEVICE_BATCH = 3, 8


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """Data, the flags every run shares, and a single-process run on CPU with the batch of both processes together."""
    root = tmp_path_factory.mktemp("ddp")
    train = write_tatoeba(root / "train.txt", tatoeba_lines(number_pairs(120, seed=11)))
    test_pairs = number_pairs(13, seed=12)  # odd: the last batches of the two processes are padded
    test = write_tatoeba(root / "test.txt", tatoeba_lines(test_pairs))
    # Same examples in the same steps (sequential sampling), and nothing random in a step (no dropout).
    flags = ["--train_file", str(train), "--test_file", str(test), *TINY, "--dropout", "0", "--max_steps", str(STEPS),
             "--train_sampling_strategy", "sequential", "--eval_strategy", "no", "--do_train", "--do_predict",
             "--final_num_beams", "1"]
    single = root / "single"
    results = training.run(["--output_dir", str(single), *flags, "--use_cpu",
                            "--per_device_train_batch_size", str(2 * PER_DEVICE_BATCH)])
    return root, flags, test_pairs, results, logged_losses(single)


LAUNCHERS = {
    "torchrun": lambda: ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"],
    # `accelerate launch --cpu` starts one process (several need an MPI setup); --multi_gpu starts torchrun's
    # processes, and the script trains them on CPUs when there is no accelerator.
    "accelerate": lambda: ["-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                           "--main_process_port", str(free_port())],
}


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_two_processes_train_as_one_with_their_combined_batch(launcher, setup):
    root, flags, test_pairs, single_results, single_losses = setup
    out = root / launcher
    # No visible GPU: the two processes use gloo on CPUs on any machine, with no --use_cpu.
    env = dict(script_env(), CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1", HF_GRU_SEQ2SEQ_PRINT_JSON="1")
    command = [sys.executable, *LAUNCHERS[launcher](), str(REPO / "scripts" / "train.py"), "--output_dir", str(out),
               *flags, "--per_device_train_batch_size", str(PER_DEVICE_BATCH)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    log = done.stdout[-3000:] + done.stderr[-3000:]
    assert done.returncode == 0, log

    # Both processes ran the job to its end (each prints its results).
    per_process = [json.loads(line) for line in done.stdout.splitlines() if line.startswith('{"')]
    assert len(per_process) == 2, log
    assert all(r["train_samples"] == single_results["train_samples"] for r in per_process)

    # One model trained on 2 x 8 examples a step: the epoch advances as for a batch of 16, and the losses are those
    # of one process with a batch of 16.
    state = read_json(out / "trainer_state.json")
    assert state["global_step"] == STEPS
    steps_per_epoch = math.ceil(single_results["train_samples"] / (2 * PER_DEVICE_BATCH))
    epochs = [e["epoch"] for e in state["log_history"] if "loss" in e]
    assert epochs == pytest.approx([step / steps_per_epoch for step in range(1, STEPS + 1)])
    losses = logged_losses(out)
    assert [step for step, _ in losses] == [step for step, _ in single_losses] == list(range(1, STEPS + 1))
    assert [loss for _, loss in losses] == pytest.approx([loss for _, loss in single_losses], rel=1e-4)
    assert "| batch size | 16 |" in (out / "README.md").read_text(encoding="utf-8")

    # The saved model loads, and the test predictions gathered from both processes are one per test pair, in order.
    model, tokenizer = load_folder(out)
    outputs = translate_lines(model, tokenizer, [en for en, _ in test_pairs])
    assert len(set(outputs)) > 3  # else a change of order could not be seen
    assert (out / "generated_predictions.txt").read_text(encoding="utf-8").split("\n") == [*outputs, ""]
    assert read_json(out / "all_results.json")["predict_samples"] == len(test_pairs)
    references = [[fr for _, fr in test_pairs]]
    assert per_process[0]["predict_chrf"] == pytest.approx(sacrebleu.corpus_chrf(outputs, references).score)
    # Metrics computed from the gathered ids (gen_len) count each test pair once, not the padding samples.
    batch = tokenizer([en for en, _ in test_pairs], return_tensors="pt", padding=True)
    generated = model.generate(**batch, num_beams=1)
    gen_len = (generated != tokenizer.pad_token_id).sum(-1).float().mean().item()
    assert per_process[0]["predict_gen_len"] == pytest.approx(gen_len)
