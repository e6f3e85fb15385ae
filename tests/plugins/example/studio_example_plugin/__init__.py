"""A complete third-party technique: round every float weight of an ONNX model to fewer mantissa bits.

It shows all a plugin needs: parameters as a pydantic model, a cheap check, progress, output
through the context, details and notes. It imports only ``studio.api`` from the studio.
"""

from __future__ import annotations

from pydantic import Field

from studio.api import Context, ParameterError, Params, Technique, TechniqueResult


class RoundWeights(Technique):
    name = "example.round_weights"
    title = "Round weights"
    help = "Keep only the top mantissa bits of every float32 weight (a quick look at precision loss)."
    accepts = ("onnx", "torch")
    produces = "onnx"
    dataset = "optional"

    class Params(Params):
        bits: int = Field(10, ge=1, le=23, description="mantissa bits to keep (float32 has 23)")
        skip: list[str] = Field(default_factory=list, description="initializer names left as they are")

    def check(self, params: Params, ctx: Context) -> None:
        if params.bits > 20 and not params.skip:
            raise ParameterError("more than 20 bits changes nothing worth a new version; use 20 or fewer")

    def run(self, params: Params, ctx: Context) -> TechniqueResult:
        import numpy as np
        from onnx import numpy_helper

        model = ctx.model.load_onnx()
        weights = [w for w in model.graph.initializer if w.data_type == 1 and w.name not in params.skip]
        mask = np.uint32(0xFFFFFFFF) << np.uint32(23 - params.bits)
        for i, init in enumerate(weights):
            ctx.progress(i / max(len(weights), 1), f"rounding {init.name}")
            array = numpy_helper.to_array(init).astype(np.float32)
            rounded = (array.view(np.uint32) & mask).view(np.float32)
            init.CopyFrom(numpy_helper.from_array(rounded, init.name))
        output = ctx.save_onnx(model)
        return TechniqueResult(
            output,
            details={"rounded": len(weights), "bits": params.bits},
            notes=["rounding keeps float32 storage: the file is no smaller, only less precise"],
            name=f"{ctx.model.name}-round{params.bits}",
        )
