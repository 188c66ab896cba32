"""Trains a model exported by `llmeff export-pytorch`, on one process or many (torchrun), with llmeff checkpoints.

    python train.py --model TinyDecoder.py --data tokens.safetensors --steps 200 --checkpoint out.safetensors
    torchrun --nproc_per_node 2 train.py --model TinyDecoder.py --data tokens.safetensors --steps 200

The recipe is the C# trainer's (LlmEff.Training.TrainingRun): AdamW (decay 0.1 on matrices only, betas 0.9/0.95,
eps 1e-8), or with --optimizer muon DeepSeek V4's Muon for hidden matrices and AdamW for the rest (muon.py, the twin
of LlmEff.Training.Muon), linear warm-up then cosine to 10% of the peak, global gradient clipping at 1, next-token cross-entropy
plus the mixture-of-experts balancing loss and the sparse-attention indexers' loss, auxiliary-loss-free bias updates
after each step, and [Quant] fake quantization from step floor(From * steps) on. Batches are drawn from the token file with a generator seeded by
(seed, step) and every process draws the same global batch and keeps its own rows, so a torchrun job sees exactly
the batches of a single process and reports the same losses (DDP averages the gradients of equal shares).

Under torchrun the model is wrapped in FullyShardedDataParallel when CUDA is available, DistributedDataParallel
(gloo) otherwise: PyTorch 1.13's FSDP needs CUDA.

Checkpoints are llmeff checkpoints (format llmeff-checkpoint/1): the model's tensors under their own names, so
`llmeff generate --checkpoint` reads them. This script adds its own AdamW moments under `__trainer__.torch.*` and
its progress as `pytorch_trainer` metadata, which the C# side ignores (Muon: the momentum buffers, same prefix); `--resume` continues such a run exactly.
`--init-from` starts a new run from the weights of any llmeff checkpoint (one written by `llmeff train` included:
its TorchSharp optimizer state is not read).
"""

import argparse
import decimal
import importlib.util
import json
import math
import os
import sys
import time

import torch
import torch.distributed as dist
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llmeff_safetensors as safetensors  # noqa: E402  (beside this script)
from muon import Muon  # noqa: E402  (beside this script)

CHECKPOINT_FORMAT = "llmeff-checkpoint/1"
RESERVED = "__trainer__."
OPTIMIZER_PREFIX = RESERVED + "torch."


def parse_arguments(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="the module written by llmeff export-pytorch (e.g. TinyDecoder.py)")
    parser.add_argument("--data", required=True, help="token file written by llmeff export-pytorch (tokens.safetensors)")
    parser.add_argument("--steps", type=int, default=200, help="optimizer steps of the whole run")
    parser.add_argument("--batch", type=int, default=8, help="sequences per step, over all processes")
    parser.add_argument("--seq", type=int, default=128, help="tokens per sequence")
    parser.add_argument("--lr", type=float, default=3e-3, help="peak learning rate")
    parser.add_argument("--warmup", type=int, default=None, help="warm-up steps (default: a tenth of the steps, at most 20)")
    parser.add_argument("--final-lr-fraction", type=float, default=0.1)
    parser.add_argument("--weight-decay", type=float, default=0.1)
    parser.add_argument("--beta1", type=float, default=0.9)
    parser.add_argument("--beta2", type=float, default=0.95)
    parser.add_argument("--optimizer", choices=["adamw", "muon"], default="adamw",
                        help="muon: Muon for hidden matrices (DeepSeek V4's), AdamW for embeddings, head, norms and biases")
    parser.add_argument("--clip", type=float, default=1.0, help="global gradient-norm clip; 0 disables it")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--qat-from", type=float, default=None, help="override the declared [Quant] From (1: never)")
    parser.add_argument("--eval-batches", type=int, default=8)
    parser.add_argument("--init-from", default=None, help="start from the weights of this llmeff checkpoint")
    parser.add_argument("--resume", default=None, help="continue the run saved in this checkpoint (same settings)")
    parser.add_argument("--checkpoint", default=None, help="write a checkpoint here at the end")
    parser.add_argument("--checkpoint-every", type=int, default=0)
    parser.add_argument("--stop-after", type=int, default=None, help="stop (and checkpoint) after this many steps; the schedule still spans --steps")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads per process (0: torch's default)")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32", help="bf16: autocast the forward on CUDA")
    parser.add_argument("--log-json", default=None, help="write the losses and timings here (rank 0)")
    args = parser.parse_args(argv)
    for name in ("steps", "batch", "seq", "eval_batches"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive (got {getattr(args, name)})")
    if args.lr <= 0:
        parser.error(f"--lr must be positive (got {args.lr})")
    if args.warmup is None:
        args.warmup = min(20, max(0, args.steps // 10))
    if not 0 <= args.warmup <= args.steps:
        parser.error(f"--warmup must lie in 0..--steps ({args.steps}) (got {args.warmup})")
    if args.qat_from is not None and not 0 <= args.qat_from <= 1:
        parser.error(f"--qat-from must lie in [0, 1] (got {args.qat_from})")
    if args.init_from and args.resume:
        parser.error("--init-from and --resume exclude each other: --resume continues a run, --init-from starts one")
    return args


def load_module(path):
    if not os.path.isfile(path):
        raise SystemExit(f"error: --model: no file at {os.path.abspath(path)}")
    spec = importlib.util.spec_from_file_location(os.path.splitext(os.path.basename(path))[0], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not hasattr(module, "MODEL"):
        raise SystemExit(f"error: --model: {path} defines no MODEL; write it with llmeff export-pytorch")
    return module


def learning_rate(step, args):
    """LlmEff.Training.LearningRateSchedule.WarmupCosine, for 0-based step."""
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    decay_steps = max(1, args.steps - args.warmup)
    progress = min(1.0, (step - args.warmup) / decay_steps)
    floor = args.lr * args.final_lr_fraction
    return floor + 0.5 * (args.lr - floor) * (1 + math.cos(math.pi * progress))


def quantization_start(module, args):
    """floor(From * steps), computed in decimal as the C# trainer does (0.29 * 100 is 29, not 28.999...)."""
    fraction = args.qat_from if args.qat_from is not None else module.QUANT_FROM
    if fraction is None:
        return None
    return int((decimal.Decimal(repr(fraction)) * args.steps).to_integral_value(rounding=decimal.ROUND_FLOOR))


def settings(args):
    """What a resumed run must share with the saved one: the schedule and the batches depend on it."""
    keys = ("steps", "batch", "seq", "lr", "warmup", "final_lr_fraction", "weight_decay", "beta1", "beta2", "clip", "seed", "qat_from", "optimizer")
    return {key: getattr(args, key) for key in keys}


# A setting a checkpoint written before it existed was trained with.
SETTING_DEFAULTS = {"optimizer": "adamw"}


def sample(tokens, generator, batch, seq):
    starts = torch.randint(0, tokens.numel() - seq, (batch,), generator=generator)
    windows = torch.stack([tokens[s:s + seq + 1] for s in starts.tolist()])
    return windows[:, :-1], windows[:, 1:]


def local_rows(x, rank, world):
    share = x.shape[0] // world
    return x[rank * share:(rank + 1) * share]


def reduce_mean(value, world, device):
    if world == 1:
        return float(value)
    tensor = torch.tensor([float(value)], dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.item() / world


def load_weights(model, path, name):
    tensors, metadata = safetensors.load(path)
    if metadata.get("format") != CHECKPOINT_FORMAT:
        raise SystemExit(f"error: {path} is not an llmeff checkpoint (format {metadata.get('format')!r}, expected {CHECKPOINT_FORMAT!r})")
    if metadata.get("model") != name:
        raise SystemExit(f"error: {path} is a checkpoint of model {metadata.get('model')!r}, not of {name!r}")
    weights = {k: v for k, v in tensors.items() if not k.startswith(RESERVED)}
    expected = model.state_dict()
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    misshapen = sorted(k for k in expected if k in weights and tuple(weights[k].shape) != tuple(expected[k].shape))
    if missing or unexpected or misshapen:
        raise SystemExit(f"error: {path} does not fit {name}: missing {missing[:5]}, unexpected {unexpected[:5]}, "
                         f"shape mismatches {[(k, list(weights[k].shape), list(expected[k].shape)) for k in misshapen[:5]]}")
    with torch.no_grad():
        for key, target in expected.items():
            target.copy_(weights[key])
    return tensors, metadata


def make_optimizer(model, args):
    if args.optimizer == "muon":
        # Muon's split needs the parameters' names (lm_head) and modules (embeddings), which a DDP wrapper keeps
        # under "module.": roles are read from the plain model the wrapper holds.
        plain = model.module if hasattr(model, "module") else model
        return Muon.for_model(plain, args.lr, args.weight_decay, args.beta1, args.beta2)
    # Decay matrices only: shrinking norm scales and biases toward zero hurts and buys no regularisation.
    matrices = [p for p in model.parameters() if p.dim() >= 2]
    others = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": matrices, "weight_decay": args.weight_decay}]
    if others:
        groups.append({"params": others, "weight_decay": 0.0})
    return torch.optim.AdamW(groups, lr=args.lr, betas=(args.beta1, args.beta2), eps=1e-8, weight_decay=args.weight_decay)


def optimizer_tensors(plain, optimizer):
    """Optimizer state under the parameter names: step, exp_avg, exp_avg_sq (AdamW) or momentum_buffer (Muon), on the CPU."""
    out = {}
    for name, parameter in plain.named_parameters():
        state = optimizer.state.get(parameter)
        if not state:
            continue
        for key, value in state.items():
            value = value if torch.is_tensor(value) else torch.tensor(float(value))
            out[f"{OPTIMIZER_PREFIX}{name}.{key}"] = value.detach().float().cpu()
    return out


def restore_optimizer(plain, optimizer, tensors, path):
    states = {}
    for key, value in tensors.items():
        if key.startswith(OPTIMIZER_PREFIX):
            name, field = key[len(OPTIMIZER_PREFIX):].rsplit(".", 1)
            states.setdefault(name, {})[field] = value
    if not states:
        raise SystemExit(f"error: {path} holds no PyTorch optimizer state; use --init-from to start a new run from its weights")
    for name, parameter in plain.named_parameters():
        if name in states:
            state = states[name]
            # torch's AdamW counts steps in a tensor, muon.py in an int.
            step = int(state["step"].item()) if isinstance(optimizer, Muon) else state["step"].reshape(()).clone()
            optimizer.state[parameter] = {"step": step, **{k: v.to(parameter.device) for k, v in state.items() if k != "step"}}


def main(argv=None):
    args = parse_arguments(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    if use_cuda:
        torch.cuda.set_device(local_rank)
    device = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
    if args.batch % world != 0:
        raise SystemExit(f"error: --batch {args.batch} must be a multiple of the {world} processes (each takes an equal share)")
    if world > 1:
        dist.init_process_group("nccl" if use_cuda else "gloo")

    module = load_module(args.model)
    if args.seq > module.CONTEXT:
        raise SystemExit(f"error: --seq {args.seq} exceeds the context of {module.MODEL_NAME} ({module.CONTEXT})")
    data, data_metadata = safetensors.load(args.data)
    if "train" not in data or "held_out" not in data:
        raise SystemExit(f"error: --data: {args.data} has no 'train' and 'held_out' token tensors; write it with llmeff export-pytorch")
    train_tokens, held_out_tokens = data["train"].long(), data["held_out"].long()
    if int(train_tokens.max()) >= module.VOCAB:
        raise SystemExit(f"error: --data holds token {int(train_tokens.max())}, beyond the vocabulary of {module.MODEL_NAME} ({module.VOCAB})")
    for split, tokens in (("training", train_tokens), ("held-out", held_out_tokens)):
        if tokens.numel() < args.seq + 1:
            raise SystemExit(f"error: the {split} split has {tokens.numel()} tokens, fewer than one window of --seq {args.seq} + 1")

    torch.manual_seed(args.seed)
    plain = module.MODEL()  # the same initial weights on every process
    start_step, losses, resumed = 0, [], None
    if args.init_from:
        load_weights(plain, args.init_from, module.MODEL_NAME)
    if args.resume:
        resumed, metadata = load_weights(plain, args.resume, module.MODEL_NAME)
        if "pytorch_trainer" not in metadata:
            raise SystemExit(f"error: {args.resume} was not written by train.py (no pytorch_trainer progress); use --init-from")
        progress = json.loads(metadata["pytorch_trainer"])
        saved = progress["settings"]
        differences = [f"{k}: {saved.get(k, SETTING_DEFAULTS.get(k))} in the checkpoint, {v} now"
                       for k, v in settings(args).items() if saved.get(k, SETTING_DEFAULTS.get(k)) != v]
        if differences:
            raise SystemExit(f"error: {args.resume} was trained with other settings ({'; '.join(differences)}); resume with the same ones")
        start_step, losses = progress["step"], progress["losses"]
    plain.to(device)

    fsdp = world > 1 and use_cuda
    if fsdp:
        import functools
        from torch.distributed.fsdp import FullyShardedDataParallel
        from torch.distributed.fsdp.wrap import transformer_auto_wrap_policy
        policy = functools.partial(transformer_auto_wrap_policy, transformer_layer_cls={module.DecoderLayer})
        model = FullyShardedDataParallel(plain, auto_wrap_policy=policy, device_id=device)
    elif world > 1:
        model = torch.nn.parallel.DistributedDataParallel(plain, find_unused_parameters=module.HAS_EXPERTS)
    else:
        model = plain
    if fsdp and args.optimizer == "muon":
        raise SystemExit("error: --optimizer muon cannot run under FSDP, which flattens the weight matrices Muon orthogonalizes; use DDP (CPU) or one process")
    optimizer = make_optimizer(model, args)
    if resumed is not None:
        if fsdp:
            print("note: FSDP run: the saved optimizer moments are not restored (fresh AdamW state)", file=sys.stderr)
        else:
            restore_optimizer(plain, optimizer, resumed, args.resume)
    quant_start = quantization_start(module, args)

    def save_checkpoint(path, steps_done):
        if fsdp:
            from torch.distributed.fsdp import FullStateDictConfig, FullyShardedDataParallel, StateDictType
            with FullyShardedDataParallel.state_dict_type(model, StateDictType.FULL_STATE_DICT, FullStateDictConfig(offload_to_cpu=True, rank0_only=True)):
                state = model.state_dict()
        else:
            state = plain.state_dict()
        if rank != 0:
            return
        tensors = {k: v.detach().float().cpu() if v.is_floating_point() else v.cpu() for k, v in state.items()}
        for name, tensor in tensors.items():
            if tensor.is_floating_point() and not torch.isfinite(tensor).all():
                raise SystemExit(f"error: refusing to write {path}: {name} holds NaN or infinite values (the model has diverged)")
        if not fsdp:
            tensors.update(optimizer_tensors(plain, optimizer))
        progress = {"step": steps_done, "losses": losses, "settings": settings(args), "world_size": world}
        safetensors.save(path, tensors, {
            "format": CHECKPOINT_FORMAT, "model": module.MODEL_NAME, "parameters": str(module.PARAMETER_COUNT),
            "pytorch_trainer": json.dumps(progress, separators=(",", ":")),
            "pytorch_optimizer": "muon.Muon" if args.optimizer == "muon" else "torch.optim.AdamW",
        })

    if rank == 0:
        wrapper = "FSDP" if fsdp else "DDP" if world > 1 else "single process"
        print(f"Training {module.MODEL_NAME} ({module.PARAMETER_COUNT:,} parameters) on {device} x {world} ({wrapper}) for {args.steps} steps "
              f"of {args.batch}x{args.seq} tokens{f', resuming after step {start_step}' if start_step else ''}.", flush=True)
        if quant_start is not None:
            print(f"Fake quantization switches on at step {quant_start + 1} of {args.steps}.", flush=True)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if (use_cuda and args.dtype == "bf16") else None
    step_times = []
    model.train()
    end_step = args.steps if args.stop_after is None else min(args.steps, max(start_step, args.stop_after))
    for step in range(start_step, end_step):
        started = time.perf_counter()
        lr = learning_rate(step, args)
        for group in optimizer.param_groups:
            group["lr"] = lr
        if quant_start is not None:
            plain.set_fake_quantization(step >= quant_start)
        generator = torch.Generator().manual_seed(args.seed * 1_000_003 + step)
        inputs, targets = sample(train_tokens, generator, args.batch, args.seq)
        inputs, targets = local_rows(inputs, rank, world).to(device), local_rows(targets, rank, world).to(device)
        if autocast is not None:
            with autocast:
                logits = model(inputs)
        else:
            logits = model(inputs)
        loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1))
        auxiliary = plain.auxiliary_loss()
        optimizer.zero_grad()
        (loss if auxiliary is None else loss + auxiliary).backward()
        if args.clip > 0:
            norm = model.clip_grad_norm_(args.clip) if fsdp else torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
            if not torch.isfinite(norm):
                raise SystemExit(f"error: training diverged at step {step + 1}: the gradient norm is {float(norm)}")
        optimizer.step()
        plain.update_selection_bias()
        value = reduce_mean(loss.item(), world, device)
        if not math.isfinite(value):
            raise SystemExit(f"error: training diverged at step {step + 1}: the loss is {value}")
        losses.append(value)
        if use_cuda:
            torch.cuda.synchronize()
        step_times.append(time.perf_counter() - started)
        if rank == 0 and (step + 1 == end_step or (step + 1) % max(1, args.steps // 10) == 0 or step == start_step):
            print(f"step {step + 1:>5}/{args.steps}  loss {value:.4f}  lr {lr:.2e}  {1000 * step_times[-1]:.1f} ms", flush=True)
        if args.checkpoint and args.checkpoint_every > 0 and (step + 1) % args.checkpoint_every == 0 and step + 1 < args.steps:
            save_checkpoint(args.checkpoint, step + 1)

    # Held-out loss, without gradients, on the same fixed batches in every run.
    model.eval()
    total = 0.0
    with torch.no_grad():
        generator = torch.Generator().manual_seed(args.seed ^ 0x5EED)
        for _ in range(args.eval_batches):
            inputs, targets = sample(held_out_tokens, generator, args.batch, args.seq)
            logits = model(local_rows(inputs, rank, world).to(device))
            total += F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), local_rows(targets, rank, world).to(device).reshape(-1)).item()
    held_out = reduce_mean(total / args.eval_batches, world, device)
    if args.checkpoint:
        save_checkpoint(args.checkpoint, end_step)
    if rank == 0:
        timed = sorted(step_times[1:] or step_times)  # the first step pays for warm-up
        median = timed[len(timed) // 2] if timed else float("nan")
        tokens_per_second = args.batch * args.seq / median if timed else float("nan")
        first = losses[start_step] if len(losses) > start_step else float("nan")
        print(f"Loss fell from {first:.4f} to {losses[-1]:.4f}; held-out loss {held_out:.4f}. "
              f"Median step {1000 * median:.1f} ms ({tokens_per_second:,.0f} tokens/s over {world} process{'es' if world > 1 else ''}).", flush=True)
        if args.checkpoint:
            print(f"Checkpoint: {os.path.abspath(args.checkpoint)}", flush=True)
        if args.log_json:
            with open(args.log_json, "w") as file:
                json.dump({"model": module.MODEL_NAME, "world_size": world, "device": str(device), "losses": losses,
                           "held_out": held_out, "median_step_ms": 1000 * median, "tokens_per_second": tokens_per_second}, file)
    if world > 1:
        # One line per rank on stderr (torchrun keeps it in each rank's log): where a stuck shutdown stopped.
        print(f"rank {rank}: finished, waiting for the others", file=sys.stderr, flush=True)
        dist.barrier()
        shut_down_process_group()
        print(f"rank {rank}: process group closed", file=sys.stderr, flush=True)


def shut_down_process_group(grace_seconds=30.0):
    """Destroys the process group, but never hangs on it: destroy_process_group can block forever at exit
    (pytorch/pytorch#75097; seen with gloo on Debian's torch 1.13 under load). Every result is written by now, so
    when it has not returned after the grace period the process exits without waiting."""
    import threading
    done = threading.Event()
    worker = threading.Thread(target=lambda: (dist.destroy_process_group(), done.set()), daemon=True)
    worker.start()
    if not done.wait(grace_seconds):
        print(f"destroy_process_group did not return within {grace_seconds:.0f} s; exiting without it", file=sys.stderr, flush=True)
        sys.stdout.flush()
        os._exit(0)


if __name__ == "__main__":
    main()
