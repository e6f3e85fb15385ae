"""Techniques that misbehave on purpose, for testing that the studio keeps nothing of a failed step."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from pydantic import Field

from studio.api import Cancelled, Context, Params, Technique, TechniqueResult


class CrashMidway(Technique):
    name = "faulty.crash_midway"
    title = "Crash midway"
    help = "Writes a partial model, then fails: raising, dying by a signal, or hanging until cancelled."
    accepts = ("onnx", "torch")
    produces = "onnx"

    class Params(Params):
        how: str = Field("raise", pattern="^(raise|kill|hang)$", description="raise, kill or hang")
        cancel_marker: str = Field(
            "",
            description="hang: a file written when a progress report raises Cancelled, which shows "
            "that the cancel reached the technique rather than the process being stopped from outside",
        )

    def run(self, params: Params, ctx: Context) -> TechniqueResult:
        (ctx.output_dir / "model.onnx").write_bytes(ctx.model.onnx_path().read_bytes()[:100])
        ctx.progress(0.5, "half way")
        if params.how == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        while params.how == "hang":
            try:
                ctx.progress(0.5, "waiting to be cancelled")
            except Cancelled:
                if params.cancel_marker:
                    Path(params.cancel_marker).write_text("cancelled at a progress report")
                raise
            time.sleep(0.05)
        raise RuntimeError("the technique broke half way")


class TorchOnly(Technique):
    name = "faulty.torch_only"
    title = "Takes PyTorch only"
    help = "Accepts PyTorch models only; used to test format refusals."
    accepts = ("torch",)
    produces = "torch"

    def run(self, params: Params, ctx: Context) -> TechniqueResult:
        return TechniqueResult(ctx.save_torch(ctx.model.load_torch()))


class BreakOutput(Technique):
    name = "faulty.break_output"
    title = "Break the output"
    help = "Returns the model with its output cut to one column, or turned upside down (negated)."
    accepts = ("onnx", "torch")
    produces = "onnx"

    class Params(Params):
        how: str = Field("negate", pattern="^(negate|cut)$", description="negate or cut")

    def run(self, params: Params, ctx: Context) -> TechniqueResult:
        import onnx
        from onnx import helper

        model = onnx.load(str(ctx.model.onnx_path()))
        graph = model.graph
        output = graph.output[0]
        inner = output.name + "_before"
        for node in graph.node:
            node.output[:] = [inner if name == output.name else name for name in node.output]
        if params.how == "negate":
            graph.node.append(helper.make_node("Neg", [inner], [output.name]))
        else:
            for name, values in (("cut_starts", [0]), ("cut_ends", [1]), ("cut_axes", [1])):
                graph.initializer.append(helper.make_tensor(name, onnx.TensorProto.INT64, [1], values))
            graph.node.append(
                helper.make_node("Slice", [inner, "cut_starts", "cut_ends", "cut_axes"], [output.name])
            )
            output.type.tensor_type.shape.dim[1].dim_value = 1
        return TechniqueResult(ctx.save_onnx(model))


class Copy(Technique):
    name = "faulty.copy"
    title = "Copy the model"
    help = "Returns the model as it is: an optimization that changes nothing, to be found out as such."
    accepts = ("onnx",)
    produces = "onnx"

    class Params(Params):
        pass

    def run(self, params: Params, ctx: Context) -> TechniqueResult:
        return TechniqueResult(ctx.save_onnx(ctx.model.path), notes=["Nothing was changed."])
