"""Warm start from a model package: the generator and discriminator weights read back out of a
package's `model.onnx`, so a shipped model can be trained further (or fine-tuned on a new camera's
normals) without the training run's checkpoint, which is never shipped.

The exporter folds every BatchNorm into the convolution before it (eval mode), so the graph holds
W' = W·γ/σ and b' = (b − μ)·γ/σ + β, not W, γ, β, μ, σ. Any BN state that keeps the folded function
is exact in eval mode; the one chosen here also keeps it in *training* mode, where BN divides by
the batch's own statistics: the convolution takes W' with no bias, and its BN gets the per-channel
mean m and variance v of W'x over a sample of training inputs as running statistics, γ = √(v + ε)
and β = m + b'. Eval: (W'x − m)/√(v + ε)·√(v + ε) + m + b' = W'x + b', the graph's function exactly;
training: batches whose statistics are near m, v see nearly the same function. The discriminator's
classifier is not part of the graph (only its features are) and starts fresh.

`load_package` checks the result against the graph itself through ONNX Runtime and refuses a
mismatch (a package of another architecture or width). With `generator_only` it takes the
generator alone, which is fully convolutional: a package trained at one input size starts a
generator at another (the discriminator's depth follows the size, so it starts fresh), checked
on the sample shrunk to the package's size.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

TOLERANCE = 1e-3  # max |torch - onnx| over the three outputs (float32 folding reorders sums)


def _run_hooked(hooks: list, forward) -> None:
    """One `forward()` without gradients, then the hooks removed whatever happened."""
    try:
        with torch.no_grad():
            forward()
    finally:
        for h in hooks:
            h.remove()


def _conv_order(module: nn.Module, forward) -> tuple[list[nn.Conv2d], dict[nn.Conv2d, nn.BatchNorm2d]]:
    """Convolutions in the order `forward` runs them, and the BatchNorm that directly consumes each."""
    order: list[nn.Conv2d] = []
    produced: dict[int, nn.Conv2d] = {}
    follows: dict[nn.Conv2d, nn.BatchNorm2d] = {}

    def after_conv(mod, _inp, out) -> None:  # hooks must return None, or they replace the output
        order.append(mod)
        produced[id(out)] = mod

    def before_bn(mod, inp) -> None:
        if id(inp[0]) in produced:
            follows[produced[id(inp[0])]] = mod

    hooks = []
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(after_conv))
        elif isinstance(m, nn.BatchNorm2d):
            hooks.append(m.register_forward_pre_hook(before_bn))
    _run_hooked(hooks, forward)
    return order, follows


def _graph_convs(onnx_path: Path) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """(weight, bias) of every Conv node in graph order, each shared weight once."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(onnx_path))
    init = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    # the discriminator runs twice (f(x), f(x_hat)): its second copy reads the same tensors through Identity
    alias = {n.output[0]: n.input[0] for n in model.graph.node if n.op_type == "Identity"}
    seen, out = set(), []
    for node in model.graph.node:
        weight = alias.get(node.input[1], node.input[1]) if node.op_type == "Conv" else None
        if weight is None or weight in seen:
            continue
        seen.add(weight)
        bias = alias.get(node.input[2], node.input[2]) if len(node.input) > 2 else None
        out.append((init[weight], init[bias] if bias else None))
    return out


def _assign(convs: list[nn.Conv2d], follows: dict, weights: list, stats: dict | None) -> None:
    for conv, (w, b) in zip(convs, weights, strict=True):
        if tuple(conv.weight.shape) != w.shape:
            raise ValueError(f"package does not fit this network: conv weight {w.shape} vs {tuple(conv.weight.shape)}")
        b = np.zeros(w.shape[0], np.float32) if b is None else b
        conv.weight.data.copy_(torch.from_numpy(np.array(w)))
        bn = follows.get(conv)
        if bn is None:
            if conv.bias is not None:
                conv.bias.data.copy_(torch.from_numpy(np.array(b)))
            elif np.abs(b).max() > 0:
                raise ValueError("package has a bias where this network's convolution has none")
            continue
        if conv.bias is not None:
            conv.bias.data.zero_()
        m, v = stats[bn] if stats else (torch.zeros(w.shape[0]), torch.full((w.shape[0],), 1.0 - bn.eps))
        bn.running_mean.copy_(m), bn.running_var.copy_(v)
        bn.weight.data.copy_(torch.sqrt(v + bn.eps))
        bn.bias.data.copy_(m + torch.from_numpy(np.array(b)))


def _bn_input_stats(follows: dict, forward) -> dict:
    """Per-channel mean and (biased) variance of each BN's input over one eval forward pass."""
    stats = {}

    def before_bn(mod, inp) -> None:
        stats[mod] = (inp[0].mean(dim=(0, 2, 3)), inp[0].var(dim=(0, 2, 3), unbiased=False))

    hooks = [bn.register_forward_pre_hook(before_bn) for bn in follows.values()]
    _run_hooked(hooks, forward)
    return stats


def load_package(G: nn.Module, D: nn.Module, onnx_path: Path, sample: torch.Tensor, generator_only: bool = False) -> float:
    """Load G and D (trunk) from the package graph at `onnx_path`; `sample` [N, C, H, W] are training
    inputs already in the model's input space (N of a few hundred). Returns the max abs difference of
    the outputs against ONNX Runtime on `sample[:8]`; raises ValueError above TOLERANCE. With
    `generator_only`, G alone (D untouched) and the reconstruction alone is compared."""
    G.eval(), D.eval()
    g_convs, g_follow = _conv_order(G, lambda: G(sample[:2]))
    d_convs, d_follow = _conv_order(D.trunk, lambda: D.trunk(sample[:2]))
    graph = _graph_convs(onnx_path)
    if generator_only:
        graph = graph[: len(g_convs)]
        d_convs = []
    if len(graph) != len(g_convs) + len(d_convs):
        raise ValueError(f"package does not fit this network: {len(graph)} convolutions against {len(g_convs)} + {len(d_convs)}")
    g_w, d_w = graph[: len(g_convs)], graph[len(g_convs):]
    _assign(g_convs, g_follow, g_w, None)  # exact in eval mode; then measure what each BN sees
    _assign(g_convs, g_follow, g_w, _bn_input_stats(g_follow, lambda: G(sample)))
    if not generator_only:
        _assign(d_convs, d_follow, d_w, None)
        _assign(d_convs, d_follow, d_w, _bn_input_stats(d_follow, lambda: D.features(torch.cat([sample, G(sample)]))))
    return check_against_graph(G, None if generator_only else D, onnx_path, sample[:8])


def check_against_graph(G: nn.Module, D: nn.Module | None, onnx_path: Path, x: torch.Tensor) -> float:
    """Max |torch − ONNX| of the graph's outputs on `x` (shrunk to the graph's input size when it
    differs; the reconstruction alone when D is None)."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    size = sess.get_inputs()[0].shape[-1]
    if isinstance(size, int) and size != x.shape[-1]:
        x = F.interpolate(x, size=(size, size), mode="area")
    G.eval()
    with torch.no_grad():
        recon = G(x)
        ours = [recon] if D is None else [recon, D.eval().features(x), D.features(recon)]
    theirs = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[: len(ours)]
    diff = max(float(np.abs(a.numpy() - b).max()) for a, b in zip(ours, theirs))
    if diff > TOLERANCE:
        raise ValueError(f"weights read from {onnx_path} do not reproduce its outputs (max diff {diff:.2e})")
    return diff
