#!/usr/bin/env bash
# Step time of an exported model under torchrun on a GPU machine (PyTorch 2.x with CUDA; no .NET needed there).
#
# Prepare on a machine with .NET (the GPU machine has none), inside the repository so the folder travels with it:
#   dotnet run --project samples/LlmEff.Cli -c Release -- export-pytorch TinyDecoder --out .gpu/export
# Then, on the GPU machine, from the repository root:
#   bash benchmarks/pytorch/run_gpu_torchrun.sh .gpu/export TinyDecoder [GPUS] [STEPS]
#
# One GPU trains the plain module; two or more wrap it in FSDP (train.py decides). Each configuration runs in fp32
# and in bf16 autocast; the script prints the median step time train.py measured (the first step is left out).
set -euo pipefail

export_dir=${1:?usage: run_gpu_torchrun.sh EXPORT_DIR MODEL [GPUS] [STEPS]}
model=${2:?usage: run_gpu_torchrun.sh EXPORT_DIR MODEL [GPUS] [STEPS]}
gpus=${3:-1}
steps=${4:-50}
batch=${BATCH:-16}
seq=${SEQ:-256}
python=${PYTHON:-python3}

cd "$export_dir"
"$python" -c 'import torch; assert torch.cuda.is_available(), "CUDA is not available"; print("torch", torch.__version__, "on", torch.cuda.get_device_name(0))'
for dtype in fp32 bf16; do
    "$python" -m torch.distributed.run --standalone --nproc_per_node "$gpus" train.py \
        --model "$model.py" --data tokens.safetensors --steps "$steps" --batch "$batch" --seq "$seq" \
        --dtype "$dtype" --eval-batches 2 --log-json "gpu-$dtype.json" > "gpu-$dtype.log" 2>&1 || { cat "gpu-$dtype.log"; exit 1; }
    "$python" - "$dtype" "$gpus" "$batch" "$seq" <<'PY'
import json, sys
dtype, gpus, batch, seq = sys.argv[1:]
r = json.load(open(f"gpu-{dtype}.json"))
print(f"{r['model']} {dtype} on {gpus} GPU(s), batch {batch} x {seq}: median {r['median_step_ms']:.1f} ms/step, "
      f"{r['tokens_per_second']:,.0f} tokens/s, final loss {r['losses'][-1]:.4f}")
PY
done
