"""What an export wrote, in the words the command line prints and the window shows: one wording
for both, so a figure reads the same wherever it appears."""

from __future__ import annotations

from studio.tables import human_bytes


def onnx_export_text(d: dict) -> str:
    diff = d["max_abs_diff"]
    lines = [
        f"wrote {d['path']} ({human_bytes(d['size_bytes'])}, opset {d['opset']}, "
        f"{'dynamic' if d['dynamic_batch'] else 'fixed'} batch)",
        f"  max abs difference to the source ({d['source_runtime']}): "
        f"{'-' if diff is None else f'{diff:.3g}'} on {d['compared_on']}",
        f"  ONNX checker: {'ok' if d['checker_ok'] else 'FAILED: ' + str(d['checker_error'])}",
    ]
    lines += [f"  also {f}" for f in d["files"][1:]]
    return "\n".join(lines)


def tensorrt_export_text(d: dict) -> str:
    lines = [onnx_export_text(d["onnx"])]
    if d["built"]:
        bench = d["benchmark"] or {}
        lines.append(f"built {d['engine']} ({human_bytes(d['engine_size_bytes'])})")
        if bench:
            lines.append(
                f"  p50 {bench['p50_ms']:.3f} ms, p90 {bench['p90_ms']:.3f} ms at batch {bench['batch']} "
                f"over {bench['runs']} runs"
            )
    else:
        lines.append(
            f"{d['reason']}, so no engine was built; on a TensorRT machine, in the folder with the ONNX "
            f"file, run the command in {d['trtexec_file']}:"
        )
        lines.append(f"  {d['trtexec_command']}")
    return "\n".join(lines)
