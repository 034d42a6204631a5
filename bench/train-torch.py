#!/usr/bin/env python3
"""PyTorch peer of hep-ml's training benchmark: training steps/s of the CERN (SparkDLTrigger) models.

Models, at batch 128, Adam(lr=1e-3), cross-entropy on 3 classes, trained on seeded random data:
  gru        Masking(0) -> GRU(19 -> 50) -> Dropout(0.2) -> Dense(3, softmax)        on GRU_input [801, 19]
  inclusive  the GRU branch above (without its dropout) on GRU_input [801, 19] and Dropout(0.2) on HLF_input
             [14], concatenated (64) -> Dense(25, relu) -> Dense(3, softmax)

The GRU is run the fast correct way: nn.GRU(batch_first=True) over all 801 padded steps, then the output at the
last real step of each sample, out[arange(B), length - 1], which is what Keras' Masking + GRU returns for
end-padded sequences (the padded steps after it do not change it). PyTorch's GRU cell is Keras' GRU with
reset_after=True (the Keras 2 / TF2 default), with the same 10,650 parameters. The lengths are computed from the
data (the Masking layer: a step is real when any feature is non-zero) inside each timed step. Softmax + cross-
entropy is nn.CrossEntropyLoss on the logits (the same function, computed stably).

Lengths: realistic = per sample normal(mean 220, sd 70) clipped to 100..400 real particles of 801 (the rest
zero), as in the SparkDLTrigger data; full = all 801 real.

Usage:
  OPENBLAS_NUM_THREADS=1 python3 bench/train-torch.py --model gru|inclusive --lengths realistic|full \
      [--steps N] [--warmup W] [--threads 1] [--seed S]

Prints ONE JSON line on stdout:
  {"engine": "pytorch", "torch": ..., "blas": ..., "model", "lengths", "batch": 128, "threads",
   "samples_per_s", "median_step_ms", "steps", ...}
where samples_per_s = 128 / the median time of the timed steps (after the warm-up steps). Everything else goes
to stderr. Needs only the standard library, torch and numpy (Debian 12: apt-get install python3-torch).

Threads: torch.set_num_threads(--threads). The BLAS library reads its thread count from the environment when it
is loaded, so set OPENBLAS_NUM_THREADS (and OMP_NUM_THREADS, MKL_NUM_THREADS) to the same count in the
caller's environment; this script sets them itself, before importing torch, when they are not set, and warns when
they differ from --threads.

BLAS: Debian's python3-torch links the generic libblas.so.3. With only the reference BLAS installed
(libblas3), the GRU's per-step matrix products are about 4x slower; install libopenblas0-pthread (or
libopenblas0-openmp), which update-alternatives makes libblas.so.3, for a fair comparison. The "blas" field
names the library actually loaded (from /proc/self/maps) and torch's build-time BLAS_INFO.
"""

import argparse
import ctypes
import json
import os
import platform
import statistics
import sys
import time

T, F, U, HLF, CLASSES, BATCH = 801, 19, 50, 14, 3, 128


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--model", choices=["gru", "inclusive"], required=True)
    p.add_argument("--lengths", choices=["realistic", "full"], default="realistic")
    p.add_argument("--steps", type=int, default=20, help="timed steps (after the warm-up)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=42)
    a = p.parse_args()
    if a.steps < 1 or a.warmup < 0 or a.threads < 1:
        p.error("--steps must be >= 1, --warmup >= 0, --threads >= 1")
    return a


args = parse_args()
# Before torch (and its BLAS) is loaded: the BLAS thread pools are sized from these at load time.
for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    have = os.environ.get(var)
    if have is None:
        os.environ[var] = str(args.threads)
    elif have != str(args.threads):
        log(f"warning: {var}={have} but --threads {args.threads}")

try:
    import numpy as np
    import torch
    import torch.nn as nn
except ImportError as e:  # the caller (bench/torch-peer.ts) checks `import torch` first
    log(f"train-torch.py: {e}")
    sys.exit(3)


def blas_summary():
    """The BLAS actually loaded in this process (from /proc/self/maps; OpenBLAS asked for its configuration and
    thread count), and torch's build-time BLAS_INFO, e.g.
    'OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY Haswell MAX_THREADS=64, 1 thread (openblas-pthread/libblas.so.3;
    torch BLAS_INFO=generic)'."""
    torch.mm(torch.ones(64, 64), torch.ones(64, 64))  # make sure the BLAS is loaded
    libs = []
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                parts = line.split()
                path = parts[5] if len(parts) >= 6 else ""
                name = os.path.basename(path).lower()
                if path.startswith("/") and any(k in name for k in ("blas", "mkl", "blis")):
                    real = os.path.realpath(path)
                    if real not in libs:
                        libs.append(real)
    except OSError:
        pass
    info = "unknown"
    try:
        cfg = torch.__config__.show()
        i = cfg.find("BLAS_INFO=")
        if i >= 0:
            info = "torch BLAS_INFO=" + cfg[i + len("BLAS_INFO="):].split(",")[0].strip()
    except Exception:  # torch.__config__ is not in every build
        pass
    described = None
    for path in libs:
        try:
            lib = ctypes.CDLL(path)
            get_config = lib.openblas_get_config
        except (OSError, AttributeError):
            continue
        get_config.restype = ctypes.c_char_p
        described = get_config().decode(errors="replace").strip()
        try:
            n = lib.openblas_get_num_threads()
            described += f", {n} thread{'s' if n != 1 else ''}"
        except AttributeError:
            pass
        break
    if described is None and libs:
        blas = next((p for p in libs if "libblas" in os.path.basename(p)), libs[0])
        described = ("reference BLAS " if "/blas/" in blas else "") + blas
    short = [os.path.join(os.path.basename(os.path.dirname(p)), os.path.basename(p)) for p in libs if "libblas" in os.path.basename(p) or "mkl" in p]
    if described is None:
        return info
    return f"{described} ({'; '.join(short + [info])})"


class GruBranch(nn.Module):
    """Masking(0) + GRU(19 -> 50), returning the state at each sample's last real step."""

    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(F, U, batch_first=True)

    def forward(self, x):
        real = (x != 0).any(dim=2)  # [B, T] Masking(0.0)
        last = (real.sum(dim=1) - 1).clamp(min=0)  # end padding: the last real step
        out, _ = self.gru(x)  # [B, T, U], all 801 steps
        return out[torch.arange(x.shape[0]), last]


class GruModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.branch = GruBranch()
        self.dropout = nn.Dropout(0.2)
        self.dense = nn.Linear(U, CLASSES)

    def forward(self, x, hlf=None):
        return self.dense(self.dropout(self.branch(x)))  # logits; softmax is in the loss


class InclusiveModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.branch = GruBranch()
        self.hlf_dropout = nn.Dropout(0.2)
        self.hidden = nn.Linear(U + HLF, 25)
        self.out = nn.Linear(25, CLASSES)

    def forward(self, x, hlf):
        h = torch.cat([self.branch(x), self.hlf_dropout(hlf)], dim=1)
        return self.out(torch.relu(self.hidden(h)))


def make_batches(rng, n, lengths):
    batches = []
    for _ in range(n):
        if lengths == "full":
            lens = np.full(BATCH, T)
        else:
            lens = np.clip(np.rint(rng.normal(220, 70, BATCH)), 100, 400).astype(np.int64)
        x = np.zeros((BATCH, T, F), dtype=np.float32)
        for b, L in enumerate(lens):
            v = rng.standard_normal((L, F)).astype(np.float32)
            v[v == 0] = 0.5  # a real step must not look masked
            x[b, :L] = v
        hlf = rng.standard_normal((BATCH, HLF)).astype(np.float32)
        y = rng.integers(0, CLASSES, BATCH)
        batches.append((torch.from_numpy(x), torch.from_numpy(hlf), torch.from_numpy(y), float(lens.mean())))
    return batches


def main():
    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    model = GruModel() if args.model == "gru" else InclusiveModel()
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    batches = make_batches(rng, min(args.steps + args.warmup, 8), args.lengths)
    mean_len = statistics.fmean(b[3] for b in batches)
    blas = blas_summary()
    log(f"torch {torch.__version__}, python {platform.python_version()}, threads {torch.get_num_threads()}, "
        f"BLAS {blas}")
    log(f"model {args.model}, {sum(p.numel() for p in model.parameters())} parameters, lengths {args.lengths} "
        f"(mean {mean_len:.1f} real steps of {T}), batch {BATCH}, {args.warmup} warm-up + {args.steps} timed steps")

    times = []
    for i in range(args.warmup + args.steps):
        x, hlf, y, _ = batches[i % len(batches)]
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x, hlf), y)
        loss.backward()
        opt.step()
        dt = time.perf_counter() - t0
        if i >= args.warmup:
            times.append(dt)
        log(f"step {i + 1}{' (warm-up)' if i < args.warmup else ''}: {dt * 1000:.1f} ms, loss {loss.item():.4f}")

    med = statistics.median(times)
    result = {
        "engine": "pytorch",
        "torch": torch.__version__,
        "blas": blas,
        "model": args.model,
        "lengths": args.lengths,
        "batch": BATCH,
        "threads": args.threads,
        "samples_per_s": round(BATCH / med, 2),
        "median_step_ms": round(med * 1000, 3),
        "steps": len(times),
        "warmup": args.warmup,
        "mean_length": round(mean_len, 1),
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
