# The studio's own lines of the GPU check (../shared/gpu/check.sh sources .gpucheck/extra.sh; it
# defines check NAME TIMEOUT CMD..., $S (the studio command) and $P (the demo project)). Prepare
# with the NVML bindings among the wheels, then point extra.sh here:
#
#   GPU_EXTRA_WHEELS=nvidia-ml-py ../shared/gpu/prepare.sh
#   echo '. tests/benchmarks/gpu_check.sh' > .gpucheck/extra.sh
#
# Each line reads the command's --json and fails unless the figure it checks is there.

J="python3 tests/benchmarks/gpu_expect.py"
G=$(nvidia-smi -L 2>/dev/null | wc -l)

# training placement and precision: the default device trains on a GPU, in bf16
check "default device: prune.structured on a GPU, bf16" 300 bash -c \
  "$S optimize v1 prune.structured --project $P --data digits --set finetune_epochs=2 --no-measure --json | $J notes 'Trained on a GPU' 'bf16 mixed precision' 'peak GPU memory'"
check "default device: distill on a GPU, bf16" 300 bash -c \
  "$S optimize v1 distill --project $P --data digits --set epochs=2 --no-measure --json | $J notes 'Trained on a GPU' 'bf16 mixed precision'"
check "mixed precision off: fp32 on cuda:0" 300 bash -c \
  "$S optimize v1 prune.structured --project $P --data digits --device cuda:0 --set finetune_epochs=1 --set mixed_precision=false --no-measure --json | $J notes 'in fp32'"

# data-parallel: two ranks on one GPU need gloo (NCCL refuses them); one rank per GPU uses NCCL
check "2 ranks share cuda:0 (gloo)" 300 bash -c \
  "$S optimize v1 prune.structured --project $P --data digits --device cuda:0 --ranks 2 --set finetune_epochs=2 --no-measure --json | $J notes '2 data-parallel ranks (gloo: cuda:0, cuda:0)'"
if [ "$G" -ge 2 ]; then
  check "one rank per GPU (nccl)" 300 bash -c \
    "$S optimize v1 prune.structured --project $P --data digits --gpus all --set finetune_epochs=2 --no-measure --json | $J notes 'data-parallel ranks (nccl'"
fi

# measurements on the GPU: energy per inference from NVML, peak memory, never a silent CPU run
check "bench torch cuda:0: energy and peak memory" 180 bash -c \
  "$S bench v1 --project $P --runtime torch --device cuda:0 --json | $J measured energy_per_inference_j peak_memory_bytes"
check "bench torch cuda:0 --sweep" 300 bash -c \
  "$S bench v1 --project $P --runtime torch --device cuda:0 --sweep --max-batch 512 --json | $J swept"

# the figure: fine-tuning a pruned ResNet-18 on the GPU against the CPU, paired in rounds
check "bench_training: GPU vs CPU fine-tuning" 420 python3 tests/benchmarks/bench_training.py --rounds 2
