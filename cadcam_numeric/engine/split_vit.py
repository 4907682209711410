"""Split a vision transformer (timm ``VisionTransformer``, torchvision ``VisionTransformer``) into
(backbone, :class:`TransformerHead`) so that the head starts at the last block: ``F = backbone(x)`` is
the tokens entering the last block (N, T, D) — prefix tokens (class, registers) first, then the patch
tokens in row-major grid order — and ``head(F)`` is ``model(x)``.

Why there: the class map of a ViT is Grad-CAM at the output of the last block's first LayerNorm
(timm ``blocks[-1].norm1``, torchvision ``encoder.layers[-1].ln_1``), the target pytorch-grad-cam
documents. The residual stream *after* the last block carries no gradient to the patch tokens of a
class-token head (only the class token is read), so a map there is zero; at ``norm1`` of the last
block the attention mixes every patch token into the class token, and the gradient reaches them.
The head holds the model's own modules (no copies); the split is checked on a random image.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from cadcam_numeric.errors import CadcamInputError

__all__ = ["TokenBackbone", "TransformerHead", "patch_grid", "split_vision_transformer", "vision_transformer_kind"]


def vision_transformer_kind(model: nn.Module) -> str | None:
    """``"timm"``, ``"torchvision"`` or None, read from the type's MRO (no import of either package)."""
    for c in type(model).__mro__:
        if c.__name__ == "VisionTransformer" and c.__module__.startswith("timm.models"):
            return "timm"
        if c.__name__ == "VisionTransformer" and c.__module__.startswith("torchvision.models"):
            return "torchvision"
    return None


def patch_grid(tokens: Tensor, num_prefix_tokens: int, grid: tuple[int, int]) -> Tensor:
    """(..., T, D) tokens -> the patch tokens on their (h, w) grid, channels first: (..., D, h, w)."""
    patches = tokens[..., num_prefix_tokens:, :]
    return patches.reshape(*patches.shape[:-2], *grid, patches.shape[-1]).movedim(-1, -3)


@dataclass(frozen=True)
class BlockParts:
    """The modules of one pre-norm transformer block, named alike for both libraries."""

    norm1: nn.LayerNorm
    attention: nn.Module  # timm Attention or nn.MultiheadAttention
    layer_scale1: nn.Module  # timm LayerScale or Identity
    norm2: nn.LayerNorm
    mlp: tuple[nn.Linear, nn.Module, nn.Linear]  # fc1, activation, fc2
    layer_scale2: nn.Module


class TokenBackbone(nn.Module):
    """images (N, C, H, W) -> the tokens entering the model's last block (N, T, D)."""

    def __init__(self, model: nn.Module, kind: str) -> None:
        super().__init__()
        self.model, self.kind = model, kind

    def forward(self, images: Tensor) -> Tensor:
        """The model's own embedding (patches, prefix tokens, positions) and every block but the last."""
        m = self.model
        if self.kind == "timm":
            x = m.norm_pre(m.patch_drop(m._pos_embed(m.patch_embed(images))))
            return m.blocks[:-1](x)
        x = m._process_input(images)
        x = torch.cat([m.class_token.expand(x.shape[0], -1, -1), x], dim=1)
        encoder = m.encoder
        return encoder.layers[:-1](encoder.dropout(x + encoder.pos_embedding))


class TransformerHead(nn.Module):
    """The last block, the final norm, the token pooling and the classifier: tokens (N, T, D) -> logits.

    Attributes read by the engine: :attr:`parts` (:class:`BlockParts`), :attr:`norm` (the final
    LayerNorm or Identity), :attr:`pool` (``"token"``: the class token; ``"avg"``: the mean of the
    patch tokens), :attr:`fc_norm` (LayerNorm or Identity, on the pooled embedding),
    :attr:`classifier` (``nn.Sequential`` on the pooled embedding: Linear, Tanh, Dropout, or empty),
    :attr:`num_prefix_tokens` and :attr:`grid` (h, w) of the patch tokens.
    """

    def __init__(self, model: nn.Module, kind: str) -> None:
        super().__init__()
        self.kind = kind
        if kind == "timm":
            self._init_timm(model)
        else:
            self._init_torchvision(model)

    def _init_timm(self, m: nn.Module) -> None:
        if getattr(m, "attn_pool", None) is not None or m.global_pool not in ("token", "avg"):
            raise CadcamInputError(f"model: timm global_pool {m.global_pool!r} is not supported (token or avg)")
        if getattr(m, "pool_include_prefix", False):
            raise CadcamInputError("model: pool_include_prefix=True is not supported (the mean of patch tokens)")
        block = m.blocks[-1]
        self.block = block
        self.parts = BlockParts(block.norm1, block.attn, block.ls1, block.norm2, _timm_mlp(block.mlp), block.ls2)
        self.norm, self.fc_norm = m.norm, m.fc_norm
        self.pool, self.num_prefix_tokens = m.global_pool, int(m.num_prefix_tokens)
        self.classifier = nn.Sequential(*(x for x in (m.head_drop, m.head) if not isinstance(x, nn.Identity)))
        self.grid = tuple(int(s) for s in m.patch_embed.grid_size)

    def _init_torchvision(self, m: nn.Module) -> None:
        layer = m.encoder.layers[-1]
        self.block = layer
        mlp = layer.mlp
        self.parts = BlockParts(
            layer.ln_1, layer.self_attention, nn.Identity(), layer.ln_2, (mlp[0], mlp[1], mlp[3]), nn.Identity()
        )
        self.norm, self.fc_norm = m.encoder.ln, nn.Identity()
        self.pool, self.num_prefix_tokens = "token", 1
        self.classifier = nn.Sequential(*m.heads)
        side = m.image_size // m.patch_size
        self.grid = (side, side)

    def target_activations(self, tokens: Tensor) -> Tensor:
        """A = LN₁(tokens) of the last block, its patch tokens on their grid: (N, D, h, w) — the
        activations the class maps weigh (pytorch-grad-cam's target layer with a token-to-grid reshape).

        >>> import torchvision
        >>> vit = torchvision.models.VisionTransformer(32, 8, 2, 2, 16, 24, num_classes=3).eval()
        >>> backbone, head = split_vision_transformer(vit, "torchvision")
        >>> head.target_activations(backbone(torch.rand(2, 3, 32, 32))).shape
        torch.Size([2, 16, 4, 4])
        """
        return patch_grid(self.parts.norm1(tokens), self.num_prefix_tokens, self.grid)

    def embedding(self, tokens: Tensor) -> Tensor:
        """The pooled embedding (N, D) the classifier reads (timm ``forward_head(pre_logits=True)``)."""
        z = self.norm(self.block(tokens))
        pooled = z[:, 0] if self.pool == "token" else z[:, self.num_prefix_tokens :].mean(dim=1)
        return self.fc_norm(pooled)

    def forward(self, tokens: Tensor) -> Tensor:
        """tokens (N, T, D) entering the last block -> the model's output."""
        return self.classifier(self.embedding(tokens))


def _timm_mlp(mlp: nn.Module) -> tuple[nn.Linear, nn.Module, nn.Linear]:
    """fc1, act, fc2 of a timm ``Mlp`` (norm Identity, dropouts eval no-ops); anything else refused."""
    if type(mlp).__name__ != "Mlp" or not isinstance(getattr(mlp, "norm", nn.Identity()), nn.Identity):
        raise CadcamInputError(f"model: the last block's MLP ({type(mlp).__name__}) is not a plain timm Mlp")
    return mlp.fc1, mlp.act, mlp.fc2


def split_vision_transformer(model: nn.Module, kind: str) -> tuple[TokenBackbone, TransformerHead]:
    """``(backbone, head)`` of a ViT of ``kind`` (module docstring)."""
    return TokenBackbone(model, kind), TransformerHead(model, kind)
