#!/usr/bin/env python3
"""Independent reference for hep-ml's Keras model reader (src/train/keras).

Reads each published Keras model with its own code (numpy, h5py, zipfile and json only: no Keras, no
TensorFlow, nothing shared with the TypeScript reader), runs the Keras forward pass in float64 on a few
deterministic events, and writes one fixture per model:

    test/fixtures/keras/<model file name>.expected.json

with the model file's sha256, the inputs (compact), the softmax outputs, intermediate activations (the GRU's
final state, each Dense layer's output and logits), the layer graph and per-weight checksums as h5py reads
them. test/unit/keras-read.test.ts compares the reader with it.

Run (Debian: apt-get install python3-h5py python3-numpy; use /usr/bin/python3 if another python3 without
h5py comes first on PATH):

    python3 scripts/keras-reference.py /path/to/models test/fixtures/keras
    # e.g. python3 scripts/keras-reference.py ../shared/models/sparkdltrigger test/fixtures/keras

Semantics implemented (Keras 2.2.4-tf and Keras 3.3 agree on all of them):
  * Masking(mask_value=0): a time step whose features all equal 0 is masked; the mask goes to the GRU.
    (Keras 3 configs compute the same mask explicitly: NotEqual(x, 0.0) -> Any(axis=-1) -> GRU(mask=...).)
  * GRU(reset_after=True), activation tanh, recurrent_activation sigmoid, zero initial state, final state:
      z  = sigmoid(x Wz + bz_in + h Uz + bz_rec)
      r  = sigmoid(x Wr + br_in + h Ur + br_rec)
      hh = tanh(x Wh + bh_in + r * (h Uh + bh_rec))
      h' = z * h + (1 - z) * hh           and h' = h where the step is masked
    kernel [F, 3U], recurrent_kernel [U, 3U], bias [2, 3U] (row 0 input, row 1 recurrent), gate blocks z, r, h.
  * Dropout: identity at inference. Concatenate(axis=-1). Dense: x W + b, then relu / softmax / linear.
"""
import base64
import hashlib
import io
import json
import math
import os
import re
import sys
import zipfile

import h5py
import numpy as np

SEED = 20240611
T_STEPS = 801
N_FEATURES = 19
N_HLF = 14


# --------------------------------------------------------------------------------------------------------
# Loading


def _text(v):
    if isinstance(v, bytes):
        return v.decode("utf-8")
    if isinstance(v, np.ndarray) and v.shape == ():
        return _text(v.item())
    return str(v)


def _tensor_refs(obj):
    """Every keras_history layer name inside a Keras 3 call argument structure, in order."""
    out = []
    if isinstance(obj, dict):
        if obj.get("class_name") == "__keras_tensor__":
            out.append(obj["config"]["keras_history"][0])
        else:
            for v in obj.values():
                out.extend(_tensor_refs(v))
    elif isinstance(obj, list):
        for v in obj:
            out.extend(_tensor_refs(v))
    return out


def graph_of(model_config):
    """(layers, inputs, outputs); each layer: name, class_name, module, config, inbound, kw_inbound, args."""
    assert model_config["class_name"] in ("Model", "Functional"), model_config["class_name"]
    cfg = model_config["config"]
    layers = []
    for l in cfg["layers"]:
        nodes = l["inbound_nodes"]
        assert len(nodes) <= 1, "shared layer"
        inbound, kw_inbound, args = [], {}, None
        if nodes:
            node = nodes[0]
            if isinstance(node, list):  # Keras 2: [[name, node, tensor, kwargs], ...]
                inbound = [t[0] for t in node]
            else:  # Keras 3: {"args": [...], "kwargs": {...}}
                inbound = _tensor_refs(node["args"])
                args = node["args"]
                for k, v in node["kwargs"].items():
                    refs = _tensor_refs(v)
                    if refs:
                        assert len(refs) == 1
                        kw_inbound[k] = refs[0]
        layers.append(
            {
                "name": l.get("name", l["config"].get("name")),
                "class_name": l["class_name"],
                "module": l.get("module"),
                "config": l["config"],
                "inbound": inbound,
                "kw_inbound": kw_inbound,
                "args": args,
            }
        )

    def ends(v):
        if v and isinstance(v[0], str):
            v = [v]
        return [e[0] for e in v]

    return layers, ends(cfg["input_layers"]), ends(cfg["output_layers"])


def load_h5(path):
    f = h5py.File(path, "r")
    config = json.loads(_text(f.attrs["model_config"]))
    layers, inputs, outputs = graph_of(config)
    mw = f["model_weights"]
    weights = {}
    for l in layers:
        name = l["name"]
        if name not in mw:
            continue
        g = mw[name]
        names = [_text(n) for n in g.attrs.get("weight_names", [])]
        if not names:
            continue
        ws = []
        for wn in names:
            short = wn.split("/")[-1].split(":")[0]
            ds = g[wn]
            ws.append((short, np.array(ds[()]), ds.name, str(ds.dtype)))
        weights[name] = ws
    meta = {"format": "keras2-h5", "keras_version": _text(f.attrs.get("keras_version", "")), "backend": _text(f.attrs.get("backend", ""))}
    return meta, layers, inputs, outputs, weights


# Keras 3 stores variables under layers/<snake_case(class)>[_n] in model.layers order (operations excluded),
# with these names per class (recurrent layers: under cell/).
K3_VARS = {
    "Dense": (["kernel", "bias"], False),
    "GRU": (["kernel", "recurrent_kernel", "bias"], True),
}


def snake(name):
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    name = re.sub("([a-z])([A-Z])", r"\1_\2", name)
    return name.lower()


def load_keras3(path):
    z = zipfile.ZipFile(path)
    config = json.loads(z.read("config.json"))
    metadata = json.loads(z.read("metadata.json"))
    layers, inputs, outputs = graph_of(config)
    f = h5py.File(io.BytesIO(z.read("model.weights.h5")), "r")
    counters = {}
    weights = {}
    seen_groups = set()
    for l in layers:
        if l["module"] and ".ops." in "." + l["module"] + ".":
            continue  # an operation (NotEqual, Any): not a Layer, not in model.layers
        base = snake(l["class_name"])
        n = counters.get(base, -1) + 1
        counters[base] = n
        key = base if n == 0 else "%s_%d" % (base, n)
        seen_groups.add(key)
        g = f["layers"][key]
        if l["class_name"] not in K3_VARS:
            assert len(g["vars"]) == 0 and all(k == "vars" for k in g), (l["name"], key, list(g))
            continue
        names, cell = K3_VARS[l["class_name"]]
        vg = g["cell"]["vars"] if cell else g["vars"]
        assert sorted(vg.keys(), key=int) == [str(i) for i in range(len(names))], (key, list(vg))
        weights[l["name"]] = [(nm, np.array(vg[str(i)][()]), vg[str(i)].name, str(vg[str(i)].dtype)) for i, nm in enumerate(names)]
    assert seen_groups == set(f["layers"].keys()), (seen_groups, list(f["layers"].keys()))
    meta = {"format": "keras3", "keras_version": metadata.get("keras_version", ""), "backend": ""}
    return meta, layers, inputs, outputs, weights


# --------------------------------------------------------------------------------------------------------
# Forward pass (float64)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def activation(name, x):
    if name == "linear":
        return x
    if name == "relu":
        return np.maximum(x, 0.0)
    if name == "tanh":
        return np.tanh(x)
    if name == "sigmoid":
        return sigmoid(x)
    if name == "softmax":
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    raise ValueError("activation " + name)


def gru(x, mask, kernel, recurrent, bias, cfg):
    assert cfg["reset_after"] and cfg["activation"] == "tanh" and cfg["recurrent_activation"] == "sigmoid"
    assert not cfg.get("return_sequences") and not cfg.get("go_backwards")
    B, T, F = x.shape
    U = recurrent.shape[0]
    W = kernel.astype(np.float64)
    R = recurrent.astype(np.float64)
    b_in = bias[0].astype(np.float64)
    b_rec = bias[1].astype(np.float64)
    h = np.zeros((B, U))
    for t in range(T):
        xw = x[:, t, :] @ W + b_in
        hu = h @ R + b_rec
        z = sigmoid(xw[:, :U] + hu[:, :U])
        r = sigmoid(xw[:, U : 2 * U] + hu[:, U : 2 * U])
        hh = np.tanh(xw[:, 2 * U :] + r * hu[:, 2 * U :])
        h_new = z * h + (1.0 - z) * hh
        m = mask[:, t][:, None] if mask is not None else np.ones((B, 1), dtype=bool)
        h = np.where(m, h_new, h)
    return h


def forward(layers, inputs, outputs, weights, feeds):
    values, masks = {}, {}
    done = set()
    pending = list(layers)
    while pending:  # config order, deferring a layer until its inputs exist
        for i, l in enumerate(pending):
            if all(d in done for d in l["inbound"] + list(l["kw_inbound"].values())):
                break
        else:
            raise RuntimeError("graph has a cycle")
        pending.pop(i)
        name, cls, cfg = l["name"], l["class_name"], l["config"]
        ins = [values[n] for n in l["inbound"]]
        in_mask = masks.get(l["inbound"][0]) if l["inbound"] else None
        out_mask = in_mask
        if cls == "InputLayer":
            out = feeds[name]
        elif cls == "NotEqual":
            const = [a for a in l["args"] if not isinstance(a, dict)]
            out = ins[0] != const[0]
        elif cls == "Any":
            out = np.any(ins[0], axis=cfg["axis"], keepdims=cfg.get("keepdims", False))
        elif cls == "Masking":
            out_mask = np.any(ins[0] != cfg["mask_value"], axis=-1)
            out = ins[0] * out_mask[..., None]
        elif cls == "GRU":
            m = values[l["kw_inbound"]["mask"]] if "mask" in l["kw_inbound"] else in_mask
            k, rk, b = (w[1] for w in weights[name])
            out = gru(ins[0], m, k, rk, b, cfg)
            out_mask = None
        elif cls == "Dropout":
            out = ins[0]
        elif cls == "Concatenate":
            out = np.concatenate(ins, axis=cfg.get("axis", -1))
            out_mask = None
        elif cls == "Dense":
            k, b = (w[1].astype(np.float64) for w in weights[name])
            pre = ins[0] @ k + b
            values[name + ":preactivation"] = pre
            out = activation(cfg["activation"], pre)
            out_mask = None
        else:
            raise ValueError("layer class " + cls)
        values[name] = out
        if out_mask is not None:
            masks[name] = out_mask
        done.add(name)
    return values


# --------------------------------------------------------------------------------------------------------
# Inputs


def make_events():
    """Per event: (rows float32 [n, 19] — the rest of the 801 rows are zero, hlf float32 [14], description)."""
    rng = np.random.default_rng(SEED)
    events = []
    for n in (0, 1, 7, 60, 240, 801):
        rows = rng.standard_normal((n, N_FEATURES)).astype(np.float32)
        desc = "%d particles, zero-padded" % n
        if n == 7:
            rows[3, :10] = 0.0  # some features exactly 0: not masked
            desc += "; row 3 has 10 of 19 features exactly 0 (not masked)"
        events.append((rows, rng.random(N_HLF).astype(np.float32), desc))
    rows = rng.standard_normal((40, N_FEATURES)).astype(np.float32)
    for t in (0, 10, 11, 25):
        rows[t, :] = 0.0  # masked steps inside the sequence: the state carries over
    events.append((rows, rng.random(N_HLF).astype(np.float32), "40 rows of which rows 0, 10, 11, 25 are all zero (masked)"))
    for rows, _, _ in events:
        nz = np.any(rows != 0, axis=1)
        assert rows.shape[0] == 0 or nz.sum() >= rows.shape[0] - 4
    return events


def b64_f32(a):
    return base64.b64encode(np.ascontiguousarray(a, dtype="<f4").tobytes()).decode("ascii")


# --------------------------------------------------------------------------------------------------------
# Main


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def reference(path):
    if path.endswith(".keras"):
        meta, layers, inputs, outputs, weights = load_keras3(path)
    else:
        meta, layers, inputs, outputs, weights = load_h5(path)
    assert inputs == ["gru_input", "hlf_input"], inputs
    events = make_events()
    B = len(events)
    x = np.zeros((B, T_STEPS, N_FEATURES))
    hlf = np.zeros((B, N_HLF))
    for i, (rows, h, _) in enumerate(events):
        x[i, : rows.shape[0]] = rows.astype(np.float64)
        hlf[i] = h.astype(np.float64)
    values = forward(layers, inputs, outputs, weights, {"gru_input": x, "hlf_input": hlf})
    gru_name = [l["name"] for l in layers if l["class_name"] == "GRU"][0]

    wlist = []
    for l in layers:
        for name, arr, h5path, dtype in weights.get(l["name"], []):
            flat = arr.reshape(-1)
            wlist.append(
                {
                    "layer": l["name"],
                    "weight": name,
                    "shape": list(arr.shape),
                    "dtype": dtype,
                    "h5_path": h5path,
                    "sum": math.fsum(float(v) for v in flat),
                    "sum_abs": math.fsum(abs(float(v)) for v in flat),
                    "first": [float(v) for v in flat[:3]],
                    "sha256_f32le": hashlib.sha256(np.ascontiguousarray(arr, dtype="<f4").tobytes()).hexdigest(),
                }
            )
    return {
        "schema_version": 1,
        "generator": "scripts/keras-reference.py (numpy %s, h5py %s)" % (np.__version__, h5py.__version__),
        "model_file": os.path.basename(path),
        "sha256": sha256_file(path),
        "size": os.path.getsize(path),
        "format": meta["format"],
        "keras_version": meta["keras_version"],
        "graph": {
            "inputs": inputs,
            "outputs": outputs,
            "layers": [
                {"name": l["name"], "class_name": l["class_name"], "inbound": l["inbound"], "inbound_kwargs": l["kw_inbound"]}
                for l in layers
            ],
        },
        "inputs": {
            "seed": SEED,
            "gru_input": {
                "shape": [T_STEPS, N_FEATURES],
                "note": "per event the first `rows` rows as little-endian float32 (base64); the remaining rows are zero",
                "events": [{"rows": int(r.shape[0]), "f32le_b64": b64_f32(r), "description": d} for r, _, d in events],
            },
            "hlf_input": {"shape": [N_HLF], "events": [b64_f32(h) for _, h, _ in events]},
        },
        "outputs": {name: values[name].tolist() for name in outputs},
        "intermediates": {
            "note": "float64 activations per event: the GRU's final state, and each Dense layer's output and pre-activation "
            "(the softmax saturates, so compare logits too)",
            **{gru_name: values[gru_name].tolist()},
            **{
                k: values[k].tolist()
                for l in layers
                if l["class_name"] == "Dense"
                for k in (l["name"], l["name"] + ":preactivation")
            },
        },
        "weights": wlist,
    }


def main(argv):
    if len(argv) != 3:
        sys.stderr.write(__doc__)
        return 2
    src, dst = argv[1], argv[2]
    os.makedirs(dst, exist_ok=True)
    names = sorted(n for n in os.listdir(src) if n.endswith(".h5") or n.endswith(".keras"))
    if not names:
        sys.stderr.write("no .h5 or .keras files in %s\n" % src)
        return 1
    for n in names:
        ref = reference(os.path.join(src, n))
        out = os.path.join(dst, n + ".expected.json")
        with open(out, "w") as f:
            json.dump(ref, f, indent=1)
            f.write("\n")
        probs = ref["outputs"][ref["graph"]["outputs"][0]]
        print("%s: %d bytes; outputs %s" % (out, os.path.getsize(out), [[round(p, 4) for p in row] for row in probs]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
