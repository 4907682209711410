"""The architecture spec: a TOML file describing the backbone, the head, PCA and the SVM.

A spec names catalogue activations and kernels, or defines its own as expressions (parsed by
:mod:`derivations.expressions`, never evaluated). Loading validates every key; an error names
the key and the allowed values. Example (``derivations/examples/custom_head.toml`` is complete)::

    [backbone]
    name = "small_vgg"            # small_vgg | vgg16
    feature_layer = "pool"        # pool | conv
    input_size = 32

    [head]
    flatten = "channel_major"     # channel_major (PyTorch) | channels_last (Keras)
    classes = 10
    dense = [
      { width = 40, activation = "relu" },
      { width = 30, activation = "mish_log" },
      { width = 20, activation = "leaky_relu", parameters = { negative_slope = 0.1 } },
    ]

    [pca]
    after = 2                     # PCA on the output of dense layer 2; 0: on the pooled features x
    components = 3
    whiten = false
    kind = "pca"                  # pca | incremental_pca | truncated_svd
    scaler = false                # StandardScaler before the projection (folded into it exactly)

    [svm]
    kind = "svc"                  # svc | nu_svc | linear_svc | logistic | lda | ridge
    kernel = "inverse_quadratic"
    C = 1.0
    scaler = true                 # StandardScaler on the PCA scores
    parameters = { gamma = 0.5 }

    [activations.mish_log]
    expression = "x * tanh(log(1 + exp(x)))"

    [kernels.inverse_quadratic]
    kind = "stationary"           # of rho = |s - p|^2 ; dot_product: of u = s^T p
    expression = "1 / (1 + gamma * rho)"
    parameters = { gamma = 1.0 }

This module needs only the standard library to read and check a spec: the built-in names it may
use come in as a :class:`SpecCatalogue` (``cadcam_numeric`` passes the generated catalogue's
names; without one, :func:`symbolic_catalogue` reads SymPy's). A spec that defines its own
expressions also has its variable names checked against the expression parser's reserved names
(which loads SymPy: such a spec needs it anyway, to be derived). Expressions are parsed into
SymPy by :mod:`derivations.custom`.
"""

from __future__ import annotations

import hashlib
import json
import keyword
import re
import tomllib
import unicodedata
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

from derivations.errors import DerivationInputError

__all__ = [
    "ArchitectureSpec",
    "CustomActivationSpec",
    "CustomKernelSpec",
    "DenseSpec",
    "SpecCatalogue",
    "SpecError",
    "parse_architecture",
    "parse_architecture_text",
    "plain_text_problem",
    "symbolic_catalogue",
]

BACKBONES = ("small_vgg", "vgg16")
FEATURE_LAYERS = ("pool", "conv")
FLATTEN_ORDERS = ("channel_major", "channels_last")
SVM_KINDS = ("svc", "nu_svc", "linear_svc", "logistic", "lda", "ridge")
#: classifiers whose score is linear in the PCA scores: their spec's kernel must be "linear"
LINEAR_SVM_KINDS = ("linear_svc", "logistic", "lda", "ridge")
PCA_KINDS = ("pca", "incremental_pca", "truncated_svd")
#: widest input a spec's PCA on the pooled features (after = 0) may read
MAX_POOLED_FEATURES = 1 << 20
KERNEL_KINDS = ("stationary", "dot_product")
_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
#: Names the generated module already uses (its imports, arguments and temporaries).
_TAKEN = {
    "torch",
    "tensor",
    "z",
    "u",
    "p",
    "support_vectors",
    "dual_coef",
    "intercept",
    "weights",
    "dot_products",
    "squared_distances",
    "parameterinfo",
}


def _free_name(name: str) -> bool:
    return not (keyword.iskeyword(name) or name in _TAKEN or re.fullmatch(r"t\d+", name))


class SpecError(DerivationInputError):
    """A spec that cannot describe a head: the message names the key and what is allowed."""


@dataclass(frozen=True)
class SpecCatalogue:
    """The built-in activations and kernels a spec may name, each with its parameter names."""

    activations: Mapping[str, frozenset[str]]
    kernels: Mapping[str, frozenset[str]]


def symbolic_catalogue() -> SpecCatalogue:
    """The names of the SymPy catalogue (imports SymPy)."""
    from derivations.activations import ACTIVATIONS
    from derivations.kernels import KERNELS

    return SpecCatalogue(
        {a.name: frozenset(p.name for p in a.parameters) for a in ACTIVATIONS},
        {k.name: frozenset(p.name for p in k.parameters) for k in KERNELS},
    )


@dataclass(frozen=True)
class DenseSpec:
    width: int
    activation: str
    parameters: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class CustomActivationSpec:
    """f(variable) = expression; ``torch_module``: the user's own ``nn.Module`` class, if any."""

    name: str
    expression: str
    variable: str = "x"
    parameters: dict[str, float] = field(default_factory=dict)
    torch_module: str = ""


@dataclass(frozen=True)
class CustomKernelSpec:
    """K(s, p) = k(variable) with variable ρ = ‖s − p‖² (stationary) or u = sᵀp (dot_product)."""

    name: str
    kind: str
    expression: str
    variable: str
    parameters: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ArchitectureSpec:
    name: str
    backbone: str
    feature_layer: str
    input_size: int
    weights: str
    flatten: str
    classes: int
    dense: tuple[DenseSpec, ...]
    pca_after: int  # 0: the pooled, flattened features x
    n_components: int
    whiten: bool
    svm_kind: str
    kernel: str
    svm_c: float
    scaler: bool
    kernel_parameters: dict[str, float]
    activations: dict[str, CustomActivationSpec]
    kernels: dict[str, CustomKernelSpec]
    training: dict[str, object]
    pca_kind: str = "pca"
    pca_scaler: bool = False

    @property
    def widths(self) -> tuple[int, ...]:
        return tuple(d.width for d in self.dense)

    @property
    def channels_last(self) -> bool:
        return self.flatten == "channels_last"

    def to_json(self) -> dict[str, object]:
        return json.loads(json.dumps(asdict(self)))

    def sha256(self) -> str:
        """Hash of the validated content (comments and key order in the file do not count)."""
        return hashlib.sha256(json.dumps(self.to_json(), sort_keys=True).encode()).hexdigest()


# ---------------------------------------------------------------------------------------------
# validation helpers: every message names the key


def _table(doc: dict, key: str, where: str, required: bool = True) -> dict:
    if key not in doc:
        if required:
            raise SpecError(f"{where}{key}: missing (a [{where}{key}] table is required)")
        return {}
    value = doc[key]
    if not isinstance(value, dict):
        raise SpecError(f"{where}{key}: expected a table, got {type(value).__name__}")
    return value


def _unknown(doc: dict, allowed: set[str], where: str) -> None:
    extra = sorted(set(doc) - allowed)
    if extra:
        raise SpecError(f"{where}: unknown key(s) {extra}; allowed: {sorted(allowed)}")


def _choice(doc: dict, key: str, where: str, allowed: tuple[str, ...], default: str | None = None) -> str:
    value = doc.get(key, default)
    if value is None:
        raise SpecError(f"{where}.{key}: missing; allowed values: {', '.join(allowed)}")
    if value not in allowed:
        raise SpecError(f"{where}.{key}: {value!r} is not allowed; allowed values: {', '.join(allowed)}")
    return str(value)


def _integer(doc: dict, key: str, where: str, low: int, high: int, default: int | None = None) -> int:
    value = doc.get(key, default)
    if value is None:
        raise SpecError(f"{where}.{key}: missing; expected an integer in {low}..{high}")
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise SpecError(f"{where}.{key}: expected an integer in {low}..{high}, got {value!r}")
    return value


def _number(doc: dict, key: str, where: str, default: float, positive: bool = False) -> float:
    value = doc.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value or abs(value) == float("inf"):
        raise SpecError(f"{where}.{key}: expected a finite number, got {value!r}")
    if positive and value <= 0:
        raise SpecError(f"{where}.{key}: expected a positive number, got {value!r}")
    return float(value)


def _boolean(doc: dict, key: str, where: str, default: bool) -> bool:
    value = doc.get(key, default)
    if not isinstance(value, bool):
        raise SpecError(f"{where}.{key}: expected true or false, got {value!r}")
    return value


def plain_text_problem(value: str) -> str | None:
    """Why ``value`` is not plain one-line text, or None: control, format and private-use
    characters and line or paragraph separators (``\r``, ``\n``, ``\x0b``, ``\x0c``,
    ``\x1c``–``\x1e``, ``\x85``, U+2028, U+2029, NUL, …) are refused, so that no spec string can
    end a line of anything it is printed into."""
    for position, char in enumerate(value):
        category = unicodedata.category(char)
        if category[0] == "C" or category in ("Zl", "Zp"):
            return f"character {position + 1} is {unicodedata.name(char, repr(char))} ({category})"
    return None


def _string(doc: dict, key: str, where: str, default: str | None = None, limit: int = 1000) -> str:
    value = doc.get(key, default)
    if value is None:
        raise SpecError(f"{where}.{key}: missing (a string is required)")
    if not isinstance(value, str) or len(value) > limit:
        raise SpecError(f"{where}.{key}: expected a string of at most {limit} characters, got {value!r:.80}")
    problem = plain_text_problem(value)
    if problem:
        raise SpecError(f"{where}.{key}: expected plain one-line text; {problem}")
    return value


def _parameters(doc: dict, where: str) -> dict[str, float]:
    params = _table(doc, "parameters", f"{where}.", required=False)
    out = {}
    for key in params:
        if not isinstance(key, str) or not _NAME.fullmatch(key):
            raise SpecError(f"{where}.parameters: {key!r} is not a valid name (lower case, digits, _)")
        if not _free_name(key):
            raise SpecError(
                f"{where}.parameters: {key!r} is reserved (a Python keyword or a name the generated code uses)"
            )
        out[key] = _number(params, key, f"{where}.parameters", 0.0)
    return out


def _name(key: str, where: str) -> str:
    if not _NAME.fullmatch(key):
        raise SpecError(f"{where}: {key!r} is not a valid name (start with a-z; a-z, 0-9, _; at most 40)")
    if not _free_name(key):
        raise SpecError(f"{where}: {key!r} is reserved (a Python keyword or a name the generated code uses)")
    return key


# ---------------------------------------------------------------------------------------------


def _entries(doc: dict, group: str, builtin: set[str], keys: set[str], needs: str) -> list[tuple[str, dict, str]]:
    """(name, table, where) for each ``[group.name]`` table, its name and keys checked."""
    out = []
    for key, entry in _table(doc, group, "", required=False).items():
        where = f"{group}.{_name(key, group)}"
        if key in builtin:
            raise SpecError(f"{where}: {key!r} is a catalogue {group[:-1]}; choose another name")
        if not isinstance(entry, dict):
            raise SpecError(f"{where}: expected a table with {needs}")
        _unknown(entry, keys, where)
        out.append((key, entry, where))
    return out


def _variable_and_parameters(entry: dict, where: str, default_variable: str) -> tuple[str, dict[str, float]]:
    from derivations.expressions import reserved_names

    variable = _string(entry, "variable", where, default_variable, 40)
    params = _parameters(entry, where)
    for n in (variable, *params):
        if n in reserved_names():
            raise SpecError(f"{where}: {n!r} is a function or constant name; choose another")
    if variable in params:
        raise SpecError(f"{where}: the variable {variable!r} is also a parameter")
    return variable, params


def _custom_activations(doc: dict, builtin: set[str]) -> dict[str, CustomActivationSpec]:
    out = {}
    keys = {"expression", "variable", "parameters", "torch_module"}
    for key, entry, where in _entries(doc, "activations", builtin, keys, "'expression'"):
        variable, params = _variable_and_parameters(entry, where, "x")
        module = _string(entry, "torch_module", where, "", 200)
        if module and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+", module):
            raise SpecError(f"{where}.torch_module: expected a dotted class name like 'mypkg.layers.MyAct'")
        out[key] = CustomActivationSpec(key, _string(entry, "expression", where), variable, params, module)
    return out


def _custom_kernels(doc: dict, builtin: set[str]) -> dict[str, CustomKernelSpec]:
    out = {}
    keys = {"kind", "expression", "variable", "parameters"}
    for key, entry, where in _entries(doc, "kernels", builtin, keys, "'kind' and 'expression'"):
        kind = _choice(entry, "kind", where, KERNEL_KINDS)
        variable, params = _variable_and_parameters(entry, where, "rho" if kind == "stationary" else "u")
        out[key] = CustomKernelSpec(key, kind, _string(entry, "expression", where), variable, params)
    return out


def _parse_backbone(doc: dict) -> tuple[dict, str, str, int]:
    bb = _table(doc, "backbone", "")
    _unknown(bb, {"name", "feature_layer", "input_size", "weights"}, "backbone")
    backbone = _choice(bb, "name", "backbone", BACKBONES)
    feature_layer = _choice(bb, "feature_layer", "backbone", FEATURE_LAYERS, "pool")
    input_size = _integer(bb, "input_size", "backbone", 8, 1024, 32 if backbone == "small_vgg" else 200)
    if backbone == "small_vgg" and input_size % 4:
        raise SpecError(f"backbone.input_size: the small backbone needs a multiple of 4, got {input_size}")
    return bb, backbone, feature_layer, input_size


def _known_parameters(given: dict, builtin: dict, custom: dict, name: str, where: str, what: str) -> None:
    """Refuse parameters that the (built-in or custom) activation or kernel ``name`` does not take."""
    known = set(builtin[name]) if name in builtin else set(custom[name].parameters)
    if set(given) - known:
        raise SpecError(
            f"{where}: {sorted(set(given) - known)} are not parameters of {what}{name} "
            f"(it takes {sorted(known) or 'none'})"
        )


def _parse_dense(head: dict, builtin_acts: dict, custom_acts: dict) -> tuple[DenseSpec, ...]:
    layers = head.get("dense")
    if not isinstance(layers, list) or not layers:
        raise SpecError("head.dense: expected a non-empty array of { width = ..., activation = ... }")
    dense = []
    allowed = tuple(sorted(builtin_acts)) + tuple(sorted(custom_acts))
    for i, layer in enumerate(layers):
        where = f"head.dense[{i}]"
        if not isinstance(layer, dict):
            raise SpecError(f"{where}: expected a table {{ width = ..., activation = ... }}")
        _unknown(layer, {"width", "activation", "parameters"}, where)
        width = _integer(layer, "width", where, 1, 65536)
        activation = _choice(layer, "activation", where, allowed, "relu")
        params = _parameters(layer, where)
        _known_parameters(params, builtin_acts, custom_acts, activation, f"{where}.parameters", "")
        dense.append(DenseSpec(width, activation, params))
    return tuple(dense)


def _parse_pca(doc: dict, dense: tuple[DenseSpec, ...]) -> tuple[dict, int, int, bool, str]:
    pca = _table(doc, "pca", "")
    _unknown(pca, {"after", "components", "whiten", "kind", "scaler"}, "pca")
    after = _integer(pca, "after", "pca", 0, len(dense))
    components = _integer(pca, "components", "pca", 1, dense[after - 1].width if after else MAX_POOLED_FEATURES)
    whiten = _boolean(pca, "whiten", "pca", False)
    pca_kind = _choice(pca, "kind", "pca", PCA_KINDS, "pca")
    if pca_kind == "truncated_svd" and whiten:
        raise SpecError("pca.whiten: truncated_svd has no whitening; use kind = 'pca' or whiten = false")
    return pca, after, components, whiten, pca_kind


def _parse_svm(doc: dict, builtin_kernels: dict, custom_kernels: dict) -> tuple[dict, str, str, dict]:
    svm = _table(doc, "svm", "")
    _unknown(svm, {"kind", "kernel", "C", "scaler", "parameters"}, "svm")
    svm_kind = _choice(svm, "kind", "svm", SVM_KINDS, "svc")
    kernel_names = tuple(sorted(builtin_kernels)) + tuple(sorted(custom_kernels))
    kernel = _choice(svm, "kernel", "svm", kernel_names, "rbf")
    if svm_kind in LINEAR_SVM_KINDS and kernel != "linear":
        raise SpecError(f"svm.kernel: {svm_kind} is linear; got kernel {kernel!r} (use kind = 'svc')")
    params = _parameters(svm, "svm")
    _known_parameters(params, builtin_kernels, custom_kernels, kernel, "svm.parameters", "kernel ")
    degree = params.get("degree")
    if kernel == "poly" and degree is not None and (degree != int(degree) or not 1 <= degree <= 100):
        raise SpecError(f"svm.parameters.degree: expected an integer in 1..100, got {degree}")
    if kernel in builtin_kernels and params.get("gamma", 1.0) <= 0:
        raise SpecError(f"svm.parameters.gamma: expected a positive number, got {params['gamma']}")
    return svm, svm_kind, kernel, params


def _parse_training(doc: dict) -> dict:
    training = _table(doc, "training", "", required=False)
    _unknown(training, {"data", "epochs", "seed", "lr", "momentum"}, "training")
    if "epochs" in training:
        _integer(training, "epochs", "training", 1, 100000)
    if "seed" in training:
        _integer(training, "seed", "training", 0, 2**31 - 1)
    for key in ("lr", "momentum"):
        if key in training:
            _number(training, key, "training", 0.0, positive=key == "lr")
    if "data" in training:
        _string(training, "data", "training", limit=500)
    return dict(training)


def parse_architecture(doc: dict, catalogue: SpecCatalogue | None = None) -> ArchitectureSpec:
    """Validate a parsed TOML document (see the module docstring) against ``catalogue``'s names."""
    if not isinstance(doc, dict):
        raise SpecError("spec: expected a TOML document")
    _unknown(doc, {"name", "backbone", "head", "pca", "svm", "activations", "kernels", "training"}, "spec")
    catalogue = catalogue or symbolic_catalogue()
    builtin_acts, builtin_kernels = dict(catalogue.activations), dict(catalogue.kernels)
    custom_acts = _custom_activations(doc, set(builtin_acts))
    custom_kernels = _custom_kernels(doc, set(builtin_kernels))
    bb, backbone, feature_layer, input_size = _parse_backbone(doc)
    head = _table(doc, "head", "")
    _unknown(head, {"flatten", "classes", "dense"}, "head")
    flatten = _choice(head, "flatten", "head", FLATTEN_ORDERS, "channel_major")
    classes = _integer(head, "classes", "head", 2, 100000)
    dense = _parse_dense(head, builtin_acts, custom_acts)
    pca, after, components, whiten, pca_kind = _parse_pca(doc, dense)
    svm, svm_kind, kernel, kernel_params = _parse_svm(doc, builtin_kernels, custom_kernels)
    training = _parse_training(doc)
    return ArchitectureSpec(
        name=_string(doc, "name", "spec", "unnamed architecture", 200),
        backbone=backbone,
        feature_layer=feature_layer,
        input_size=input_size,
        weights=_string(bb, "weights", "backbone", "", 1000),
        flatten=flatten,
        classes=classes,
        dense=dense,
        pca_after=after,
        n_components=components,
        whiten=whiten,
        svm_kind=svm_kind,
        kernel=kernel,
        svm_c=_number(svm, "C", "svm", 1.0, positive=True),
        scaler=_boolean(svm, "scaler", "svm", False),
        kernel_parameters=kernel_params,
        activations=custom_acts,
        kernels=custom_kernels,
        training=training,
        pca_kind=pca_kind,
        pca_scaler=_boolean(pca, "scaler", "pca", False),
    )


def parse_architecture_text(
    text: str, catalogue: SpecCatalogue | None = None, origin: str = "spec"
) -> ArchitectureSpec:
    """Decode TOML ``text`` and validate it (TOML only: nothing in it is executed)."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{origin}: not valid TOML ({exc})") from exc
    except RecursionError as exc:  # arrays or inline tables nested thousands deep
        raise SpecError(
            f"{origin}: nested too deeply to be a spec (arrays or tables thousands of levels deep)"
        ) from exc
    try:
        return parse_architecture(doc, catalogue)
    except SpecError as exc:
        raise SpecError(f"{origin}: {exc}") from exc
    except RecursionError as exc:
        raise SpecError(f"{origin}: nested too deeply to be a spec") from exc
