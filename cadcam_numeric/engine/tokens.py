"""The closed form of a vision transformer's last block and head (:class:`TokenHead`), no autograd.

With F the tokens entering the last block (N, T, D) and A = LN₁(F) the target of the class map:

    x′ = F + γ₁ ⊙ Attn(A),   z = LN(x′ + γ₂ ⊙ MLP(LN₂(x′))),   e = fc_norm(pool(z)),   y = classifier(e)

Rows at e (class scores, PCA components, classifier scores — :mod:`cadcam_numeric.engine.head_rows`)
are pulled back by the generated blocks: through ``fc_norm`` and the pooling (the class token, or the
mean of the patch tokens), the final norm, the MLP's residual branch (LN₂, dense, GELU, dense,
LayerScale), then the attention's branch to A (output projection, each head's softmax attention, the
Q/K/V projections). The path F → x′ of the first residual does not pass through A and is held fixed,
as the gradient at ``norm1``'s output that pytorch-grad-cam takes. The result is ∂(·)/∂A at every
token (N, R, T, D); the patch tokens on their grid are the position gradients of the map methods,
with A's patch tokens as the features (N, D, h, w).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from cadcam_numeric.catalogue_types import ActivationCode
from cadcam_numeric.engine.activation_modules import activation_from_module
from cadcam_numeric.engine.chain import DenseLayer
from cadcam_numeric.engine.head import Head, parse_head
from cadcam_numeric.engine.moves import moved
from cadcam_numeric.engine.split_vit import TransformerHead, patch_grid
from cadcam_numeric.errors import CadcamInputError
from cadcam_numeric.generated import ACTIVATIONS
from cadcam_numeric.generated.blocks import (
    pullback_attention_keys,
    pullback_attention_probabilities,
    pullback_attention_queries,
    pullback_attention_values,
    pullback_dense,
    pullback_layer_norm,
    pullback_layer_scale,
    pullback_softmax,
)

__all__ = ["LayerNormLayer", "SelfAttention", "TokenForward", "TokenHead", "parse_token_head"]


@dataclass(frozen=True)
class LayerNormLayer:
    """y = γ ⊙ (x − μ)/σ + β over the last dimension, σ = √(var(x) + ε) (``nn.LayerNorm``)."""

    weight: Tensor
    bias: Tensor
    eps: float

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """y, x̂ and σ of x (..., D): (..., D), (..., D), (...)."""
        centred = x - x.mean(dim=-1, keepdim=True)
        sigma = torch.sqrt((centred * centred).mean(dim=-1) + self.eps)
        xhat = centred / sigma.unsqueeze(-1)
        return xhat * self.weight + self.bias, xhat, sigma

    def pullback(self, g: Tensor, xhat: Tensor, sigma: Tensor) -> Tensor:
        """Rows g (..., K, D) at y pulled back to x (generated ``pullback_layer_norm``)."""
        return pullback_layer_norm(g, self.weight, xhat, sigma, int(self.weight.shape[0]))

    def to(self, like: Tensor) -> LayerNormLayer:
        """This norm with its tensors in ``like``'s dtype and device."""
        return moved(self, like)


@dataclass(frozen=True)
class SelfAttention:
    """Multi-head scaled dot-product self-attention: Q/K/V = A W_{q,k,v}ᵀ + b, per head
    O_h = softmax_rows(c Q_h K_hᵀ) V_h, out = [O_1 … O_H] W_oᵀ + b_o."""

    qkv_weight: Tensor  # (3D, D): queries, keys, values, each head after head
    qkv_bias: Tensor
    out_weight: Tensor
    out_bias: Tensor
    heads: int
    scale: float

    def forward(self, a: Tensor, queries: slice) -> tuple[Tensor, Tensor, Tensor]:
        """The output at the ``queries`` tokens S (N, |S|, D), their attention weights P (N, H, |S|, T)
        and Q, K, V of every token (3, N, H, T, d): keys and values are every token's, but only the
        rows the head reads are formed (a class-token head reads one)."""
        n, t, d = a.shape
        qkv = (a @ self.qkv_weight.T + self.qkv_bias).reshape(n, t, 3, self.heads, d // self.heads)
        qkv = qkv.permute(2, 0, 3, 1, 4)
        probs = torch.softmax(self.scale * (qkv[0][:, :, queries] @ qkv[1].transpose(-1, -2)), dim=-1)
        heads_out = (probs @ qkv[2]).transpose(1, 2)
        return heads_out.reshape(n, heads_out.shape[1], d) @ self.out_weight.T + self.out_bias, probs, qkv

    def pullback(self, g: Tensor, probs: Tensor, qkv: Tensor, queries: slice) -> Tensor:
        """Rows g (N, |S|, R, D) at the output of the ``queries`` tokens S pulled back to A (N, T, R, D),
        every head at once; the queries of tokens outside S get no rows (their outputs are not read)."""
        n, s, r, d = g.shape
        t = qkv.shape[3]
        ones = torch.ones(d, dtype=g.dtype, device=g.device)
        g_out = pullback_dense(g, ones, self.out_weight)  # at the heads' concatenated outputs
        g_out = g_out.reshape(n, s, r, self.heads, d // self.heads).permute(0, 2, 3, 1, 4)  # (N, R, H, |S|, d)
        p = probs.unsqueeze(1)
        q, k, v = (m.unsqueeze(1) for m in qkv)
        g_probs = pullback_attention_probabilities(g_out, v)  # (N, R, H, |S|, T)
        g_scores = pullback_softmax(g_probs.unsqueeze(-2), p).squeeze(-2)  # each query's softmax
        g_queries = pullback_attention_queries(g_scores, k, self.scale)  # (N, R, H, |S|, d)
        if s != t:
            g_queries = g_queries.new_zeros(*g_queries.shape[:3], t, g_queries.shape[-1]).index_copy(
                3, torch.arange(t, device=g.device)[queries], g_queries
            )
        parts = (
            g_queries,
            pullback_attention_keys(g_scores, q[:, :, :, queries], self.scale),
            pullback_attention_values(p, g_out),
        )
        g_qkv = torch.stack(parts, dim=2)  # (N, R, 3, H, T, d) -> (N, T, R, 3D) in qkv's layout
        g_qkv = g_qkv.permute(0, 4, 1, 2, 3, 5).reshape(n, t, r, 3 * d)
        return pullback_dense(g_qkv, torch.ones(3 * d, dtype=g.dtype, device=g.device), self.qkv_weight)

    def to(self, like: Tensor) -> SelfAttention:
        """This attention with its tensors in ``like``'s dtype and device."""
        return moved(self, like)


@dataclass(frozen=True)
class TokenForward:
    """What the forward keeps for the pullback: ``a`` and ``qkv`` of every token (N, T, ·), ``probs``
    (N, H, |S|, T) and the rest at the tokens S the pooling reads (N, |S|, ·) (``TokenHead.read_tokens``)."""

    a: Tensor
    probs: Tensor
    qkv: Tensor
    norm2: tuple[Tensor, Tensor]  # x̂, σ of LN₂
    delta1: Tensor  # the MLP's first pre-activation
    final: tuple[Tensor, Tensor] | None  # x̂, σ of the final norm
    pooled_norm: tuple[Tensor, Tensor] | None  # x̂, σ of fc_norm
    embedding: Tensor  # e (N, D)


@dataclass(frozen=True)
class TokenHead:
    """A :class:`~cadcam_numeric.engine.split_vit.TransformerHead` read into tensors (module docstring);
    ``dense``: the classifier on e as a head of dense layers (flattening (N, D, 1, 1))."""

    norm1: LayerNormLayer
    attention: SelfAttention
    layer_scale1: Tensor | None
    norm2: LayerNormLayer
    fc1: DenseLayer
    fc2: Tensor
    fc2_bias: Tensor
    layer_scale2: Tensor | None
    final_norm: LayerNormLayer | None
    fc_norm: LayerNormLayer | None
    pool: str
    num_prefix_tokens: int
    grid: tuple[int, int]
    dense: Head

    @property
    def has_class_output(self) -> bool:
        """Whether the classifier on e ends in class scores (it has a Linear layer)."""
        return self.dense.has_class_output

    @property
    def num_outputs(self) -> int:
        """The number of class scores (0 without a classifier)."""
        return self.dense.num_outputs

    def read_tokens(self, t: int) -> slice:
        """The tokens whose block output the pooling reads: the class token, or the T − P patch tokens.
        Everything after the attention is tokenwise, so only these are formed and pulled back."""
        return slice(0, 1) if self.pool == "token" else slice(self.num_prefix_tokens, t)

    def forward(self, f: Tensor) -> TokenForward:
        """The block, the norms and the pooling on tokens f (N, T, D), after the attention only at
        the tokens the pooling reads (:meth:`read_tokens`)."""
        read = self.read_tokens(f.shape[1])
        a, _, _ = self.norm1.forward(f)
        attended, probs, qkv = self.attention.forward(a, read)
        x1 = f[:, read] + (attended if self.layer_scale1 is None else attended * self.layer_scale1)
        n2, xhat2, sigma2 = self.norm2.forward(x1)
        delta1 = n2 @ self.fc1.weight.T + self.fc1.bias
        m = self.fc1.activate(delta1) @ self.fc2.T + self.fc2_bias
        z = x1 + (m if self.layer_scale2 is None else m * self.layer_scale2)
        final = None
        if self.final_norm is not None:
            z, xhat, sigma = self.final_norm.forward(z)
            final = (xhat, sigma)
        e = z[:, 0] if self.pool == "token" else z.mean(dim=1)
        pooled_norm = None
        if self.fc_norm is not None:
            e, xhat, sigma = self.fc_norm.forward(e)
            pooled_norm = (xhat, sigma)
        return TokenForward(a, probs, qkv, (xhat2, sigma2), delta1, final, pooled_norm, e)

    def pullback(self, rows: Tensor, fwd: TokenForward) -> Tensor:
        """Rows (N, R, D) at e pulled back to A = LN₁(F): (N, R, T, D) (module docstring)."""
        if self.fc_norm is not None:
            rows = self.fc_norm.pullback(rows, *fwd.pooled_norm)
        n, r, d = rows.shape
        read = self.read_tokens(fwd.a.shape[1])
        s = fwd.delta1.shape[1]  # the tokens read: 1, or the patch tokens, whose mean is e
        g = rows.unsqueeze(1) if self.pool == "token" else (rows / s).unsqueeze(1).expand(n, s, r, d)
        if self.final_norm is not None:
            g = self.final_norm.pullback(g, *fwd.final)
        branch = g if self.layer_scale2 is None else pullback_layer_scale(g, self.layer_scale2)
        branch = pullback_dense(branch, torch.ones_like(self.fc2_bias), self.fc2)
        branch = pullback_dense(branch, self.fc1.fprime(fwd.delta1), self.fc1.weight)
        g = g + self.norm2.pullback(branch, *fwd.norm2)  # at x′: the residual adds its rows
        g = g if self.layer_scale1 is None else pullback_layer_scale(g, self.layer_scale1)
        return self.attention.pullback(g, fwd.probs, fwd.qkv, read).transpose(1, 2)

    def patch_grid(self, tokens: Tensor) -> Tensor:
        """(..., T, D) -> the patch tokens on their grid, channels first: (..., D, h, w)."""
        return patch_grid(tokens, self.num_prefix_tokens, self.grid)

    def to(self, like: Tensor) -> TokenHead:
        """This head with its tensors in ``like``'s dtype and device."""
        return moved(self, like)


def _layer_norm(module: nn.Module, like: Tensor, what: str) -> LayerNormLayer | None:
    if isinstance(module, nn.Identity):
        return None
    if not isinstance(module, nn.LayerNorm) or len(module.normalized_shape) != 1:
        raise CadcamInputError(f"head: {what} must be a LayerNorm over the embedding, got {type(module).__name__}")
    d = module.normalized_shape[0]
    weight = module.weight if module.weight is not None else torch.ones(d)
    bias = module.bias if module.bias is not None else torch.zeros(d)
    return LayerNormLayer(weight.detach().to(like), bias.detach().to(like), float(module.eps))


def _linear(module: nn.Linear, like: Tensor) -> tuple[Tensor, Tensor]:
    bias = module.bias if module.bias is not None else torch.zeros(module.out_features)
    return module.weight.detach().to(like), bias.detach().to(like)


def _attention(module: nn.Module, like: Tensor) -> SelfAttention:
    """timm ``Attention`` (no q/k norm, no gate) or ``nn.MultiheadAttention`` (batch first, packed Q/K/V)."""
    if isinstance(module, nn.MultiheadAttention):
        if not module._qkv_same_embed_dim or module.bias_k is not None or module.add_zero_attn:
            raise CadcamInputError("head: nn.MultiheadAttention must pack Q/K/V (no bias_k, no add_zero_attn)")
        bias = module.in_proj_bias if module.in_proj_bias is not None else torch.zeros(3 * module.embed_dim)
        out_w, out_b = _linear(module.out_proj, like)
        scale = float(module.head_dim) ** -0.5
        weight = module.in_proj_weight.detach().to(like)
        return SelfAttention(weight, bias.detach().to(like), out_w, out_b, int(module.num_heads), scale)
    extra = [
        name
        for name in ("q_norm", "k_norm", "norm")
        if not isinstance(getattr(module, name, nn.Identity()), nn.Identity)
    ]
    if extra or getattr(module, "gate", None) is not None or not hasattr(module, "qkv"):
        raise CadcamInputError(f"head: the last block's attention ({type(module).__name__}) holds {extra or 'a gate'}")
    qkv_w, qkv_b = _linear(module.qkv, like)
    out_w, out_b = _linear(module.proj, like)
    return SelfAttention(qkv_w, qkv_b, out_w, out_b, int(module.num_heads), float(module.scale))


def _layer_scale(module: nn.Module, like: Tensor) -> Tensor | None:
    if isinstance(module, nn.Identity):
        return None
    gamma = getattr(module, "gamma", None)
    if not isinstance(gamma, Tensor):
        raise CadcamInputError(f"head: {type(module).__name__} is not a LayerScale (no gamma)")
    return gamma.detach().to(like)


def _mlp_activation(module: nn.Module) -> ActivationCode:
    found = activation_from_module(module)
    if found is None or found[1]:
        known = [k for k in ACTIVATIONS if k.startswith("gelu")]
        raise CadcamInputError(f"head: the MLP's activation {module!r} is not one of the catalogue's ({known}, ...)")
    return found[0]


def parse_token_head(head: TransformerHead, like: Tensor) -> TokenHead:
    """Read ``head`` into a :class:`TokenHead`, its tensors in ``like``'s dtype and device."""
    parts = head.parts
    fc1, act, fc2 = parts.mlp
    fc1_w, fc1_b = _linear(fc1, like)
    fc2_w, fc2_b = _linear(fc2, like)
    d = int(fc2.out_features)
    probe = torch.zeros(1, d, 1, 1, dtype=like.dtype, device=like.device)
    dense = parse_head(nn.Sequential(nn.Flatten(), *head.classifier), probe)
    return TokenHead(
        _layer_norm(parts.norm1, like, "norm1"),
        _attention(parts.attention, like),
        _layer_scale(parts.layer_scale1, like),
        _layer_norm(parts.norm2, like, "norm2"),
        DenseLayer(fc1_w, fc1_b, _mlp_activation(act)),
        fc2_w,
        fc2_b,
        _layer_scale(parts.layer_scale2, like),
        _layer_norm(head.norm, like, "the final norm"),
        _layer_norm(head.fc_norm, like, "fc_norm"),
        head.pool,
        head.num_prefix_tokens,
        head.grid,
        dense,
    )
