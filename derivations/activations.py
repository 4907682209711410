"""The activation catalogue: every elementwise nonlinearity a dense layer of the head may use.

Each :class:`Activation` holds

* ``forward`` — f(z) written with the stable named functions of :mod:`derivations.functions`
  (this is what gets printed into ``cadcam_numeric/generated/activations.py``);
* ``definition`` — the textbook elementary formula, written independently, against which
  the forward and its derivative are proved (``None`` when the forward is already elementary);
* ``derivative_form`` — optional hand-chosen stable form of f′; when given it is proved equal
  to d/dz of the definition, otherwise f′ is SymPy's ``diff`` of ``forward``;
* the PyTorch module it corresponds to, with the module attributes that carry its parameters.

Piecewise activations fix f′ at the kinks the way PyTorch's autograd does (ReLU′(0) = 0,
LeakyReLU′(0) = slope, ELU′(0) = α, Hardtanh′(min) = Hardtanh′(max) = 0): the boundary of each
``Piecewise`` condition is chosen so that ``diff`` lands on PyTorch's value, and
``kink_derivatives`` records (point, f′(point)) pairs, which the property tests hold against autograd.

Adding an activation = adding one entry to :data:`ACTIVATIONS` and running
``python -m derivations generate``; proofs and property tests iterate over this tuple.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp
from sympy.codegen.cfunctions import expm1

from derivations.functions import Sigmoid, Softplus

__all__ = ["ACTIVATIONS", "Activation", "Parameter", "Z", "activation_by_name"]

#: The pre-activation variable δ (a scalar; activations act elementwise).
Z = sp.Symbol("z", real=True)


@dataclass(frozen=True)
class Parameter:
    """A scalar parameter of an activation, read from the PyTorch module's attribute."""

    name: str
    default: float
    low: float
    high: float
    torch_attribute: str

    @property
    def symbol(self) -> sp.Symbol:
        return sp.Symbol(self.name, real=True)


@dataclass(frozen=True)
class Activation:
    """One catalogue entry; see the module docstring."""

    name: str
    description: str
    torch_module: str
    forward: sp.Expr
    definition: sp.Expr | None = None
    derivative_form: sp.Expr | None = None
    parameters: tuple[Parameter, ...] = ()
    torch_fixed: dict[str, str] = field(default_factory=dict)
    kink_derivatives: tuple[tuple[sp.Expr, sp.Expr], ...] = ()
    latex_name: str = ""

    @property
    def derivative(self) -> sp.Expr:
        """f′(z) in the form the generated code evaluates."""
        if self.derivative_form is not None:
            return self.derivative_form
        return sp.diff(self.forward, Z)

    @property
    def elementary_definition(self) -> sp.Expr:
        return self.forward if self.definition is None else self.definition


def _p(name: str, default: float, low: float, high: float, attr: str | None = None) -> Parameter:
    return Parameter(name, default, low, high, attr or name)


_slope = _p("negative_slope", 0.01, 0.0, 1.0)
_prelu_weight = _p("weight", 0.25, 0.0, 1.0, "init")  # built as PReLU(init=w); read from the learned .weight
_alpha = _p("alpha", 1.0, 0.1, 3.0)
_beta = _p("beta", 1.0, 0.25, 4.0)
_threshold = _p("threshold", 20.0, 1.0, 30.0)
_min_val = _p("min_val", -1.0, -3.0, -0.1)
_max_val = _p("max_val", 1.0, 0.1, 3.0)

# SELU constants as PyTorch defines them (Klambauer et al. 2017).
SELU_ALPHA = sp.Float("1.6732632423543772848170429916717", 40)
SELU_SCALE = sp.Float("1.0507009873554804934193349852946", 40)
# GELU tanh approximation: sqrt(2/pi) and 0.044715 (Hendrycks & Gimpel 2016).
_GELU_C = sp.sqrt(2 / sp.pi)
_GELU_K = sp.Rational(44715, 1000000)

z = Z
s, a, b, th = _slope.symbol, _alpha.symbol, _beta.symbol, _threshold.symbol
lo, hi = _min_val.symbol, _max_val.symbol

ACTIVATIONS: tuple[Activation, ...] = (
    Activation("identity", "f(z) = z", "torch.nn.Identity", z, latex_name=r"\mathrm{id}"),
    Activation(
        "relu",
        "f(z) = max(0, z)",
        "torch.nn.ReLU",
        sp.Piecewise((z, z > 0), (0, True)),
        kink_derivatives=((sp.S.Zero, sp.S.Zero),),
        latex_name=r"\mathrm{ReLU}",
    ),
    Activation(
        "leaky_relu",
        "f(z) = z if z > 0 else negative_slope * z",
        "torch.nn.LeakyReLU",
        sp.Piecewise((z, z > 0), (s * z, True)),
        parameters=(_slope,),
        kink_derivatives=((sp.S.Zero, s),),
        latex_name=r"\mathrm{LeakyReLU}",
    ),
    Activation(
        "prelu",
        "f(z) = z if z > 0 else weight * z (weight learned; one per unit or shared)",
        "torch.nn.PReLU",
        sp.Piecewise((z, z > 0), (_prelu_weight.symbol * z, True)),
        parameters=(_prelu_weight,),
        kink_derivatives=((sp.S.Zero, _prelu_weight.symbol),),
        latex_name=r"\mathrm{PReLU}",
    ),
    Activation(
        "elu",
        "f(z) = z if z > 0 else alpha * (exp(z) - 1)",
        "torch.nn.ELU",
        sp.Piecewise((z, z > 0), (a * expm1(z), True)),
        definition=sp.Piecewise((z, z > 0), (a * (sp.exp(z) - 1), True)),
        parameters=(_alpha,),
        kink_derivatives=((sp.S.Zero, a),),
        latex_name=r"\mathrm{ELU}",
    ),
    Activation(
        "selu",
        "f(z) = scale * (z if z > 0 else alpha * (exp(z) - 1)), fixed alpha, scale",
        "torch.nn.SELU",
        SELU_SCALE * sp.Piecewise((z, z > 0), (SELU_ALPHA * expm1(z), True)),
        definition=SELU_SCALE * sp.Piecewise((z, z > 0), (SELU_ALPHA * (sp.exp(z) - 1), True)),
        kink_derivatives=((sp.S.Zero, SELU_SCALE * SELU_ALPHA),),
        latex_name=r"\mathrm{SELU}",
    ),
    Activation(
        "sigmoid",
        "f(z) = 1 / (1 + exp(-z))",
        "torch.nn.Sigmoid",
        Sigmoid(z),
        definition=1 / (1 + sp.exp(-z)),
        latex_name=r"\sigma",
    ),
    Activation("tanh", "f(z) = tanh(z)", "torch.nn.Tanh", sp.tanh(z), latex_name=r"\tanh"),
    Activation(
        "softplus",
        "f(z) = log(1 + exp(beta z)) / beta, and z where beta z > threshold (PyTorch)",
        "torch.nn.Softplus",
        sp.Piecewise((z, b * z > th), (Softplus(b * z) / b, True)),
        definition=sp.Piecewise((z, b * z > th), (sp.log(1 + sp.exp(b * z)) / b, True)),
        parameters=(_beta, _threshold),
        latex_name=r"\mathrm{softplus}",
    ),
    Activation(
        "gelu",
        "f(z) = z Phi(z) = z (1 + erf(z / sqrt 2)) / 2",
        "torch.nn.GELU",
        z * (1 + sp.erf(z / sp.sqrt(2))) / 2,
        torch_fixed={"approximate": "none"},
        latex_name=r"\mathrm{GELU}",
    ),
    Activation(
        "gelu_tanh",
        "f(z) = z (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3))) / 2",
        "torch.nn.GELU",
        z * (1 + sp.tanh(_GELU_C * (z + _GELU_K * z**3))) / 2,
        torch_fixed={"approximate": "tanh"},
        latex_name=r"\mathrm{GELU}_{\tanh}",
    ),
    Activation(
        "silu",
        "f(z) = z sigmoid(z)",
        "torch.nn.SiLU",
        z * Sigmoid(z),
        definition=z / (1 + sp.exp(-z)),
        latex_name=r"\mathrm{SiLU}",
    ),
    Activation(
        "mish",
        "f(z) = z tanh(softplus(z))",
        "torch.nn.Mish",
        z * sp.tanh(Softplus(z)),
        definition=z * sp.tanh(sp.log(1 + sp.exp(z))),
        latex_name=r"\mathrm{Mish}",
    ),
    Activation(
        "softsign",
        "f(z) = z / (1 + |z|)",
        "torch.nn.Softsign",
        z / (1 + sp.Abs(z)),
        derivative_form=1 / (1 + sp.Abs(z)) ** 2,
        latex_name=r"\mathrm{softsign}",
    ),
    Activation(
        "hardtanh",
        "f(z) = min(max(z, min_val), max_val)",
        "torch.nn.Hardtanh",
        sp.Piecewise((lo, z <= lo), (hi, z >= hi), (z, True)),
        parameters=(_min_val, _max_val),
        kink_derivatives=((lo, sp.S.Zero), (hi, sp.S.Zero)),
        latex_name=r"\mathrm{hardtanh}",
    ),
    Activation(
        "relu6",
        "f(z) = min(max(z, 0), 6)",
        "torch.nn.ReLU6",
        sp.Piecewise((sp.S.Zero, z <= 0), (sp.Integer(6), z >= 6), (z, True)),
        kink_derivatives=((sp.S.Zero, sp.S.Zero), (sp.Integer(6), sp.S.Zero)),
        latex_name=r"\mathrm{ReLU6}",
    ),
    Activation(
        "hardswish",
        "f(z) = z * min(max(z + 3, 0), 6) / 6",
        "torch.nn.Hardswish",
        sp.Piecewise((sp.S.Zero, z <= -3), (z, z >= 3), (z * (z + 3) / 6, True)),
        kink_derivatives=((sp.Integer(-3), sp.S.Zero), (sp.Integer(3), sp.S.One)),
        latex_name=r"\mathrm{Hardswish}",
    ),
)


def activation_by_name(name: str) -> Activation:
    """Return the catalogue entry called ``name``; raise ``KeyError`` listing the known names."""
    for act in ACTIVATIONS:
        if act.name == name:
            return act
    known = ", ".join(a.name for a in ACTIVATIONS)
    raise KeyError(f"unknown activation {name!r}; the catalogue has: {known}")
