"""The whitelist expression parser: valid input parses to whitelisted SymPy, everything else is
refused with a message that points at the token, nothing runs code, nothing hangs."""

from __future__ import annotations

import builtins

import pytest
import sympy as sp
import sympy.parsing.sympy_parser as sympy_parser
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sympy.codegen.cfunctions import expm1, log1p

from derivations.expressions import (
    FUNCTIONS,
    MAX_DEPTH,
    MAX_NODES,
    ExpressionError,
    parse_expression,
)
from derivations.functions import Sigmoid, Softplus

X = sp.Symbol("x", real=True)
A = sp.Symbol("a", real=True)
VARIABLES = ("x", "a")
#: every class a parsed expression may contain
ALLOWED_TYPES = (
    sp.Symbol,
    sp.Number,
    sp.Add,
    sp.Mul,
    sp.Pow,
    sp.exp,
    sp.log,
    sp.Abs,
    sp.tanh,
    sp.sinh,
    sp.cosh,
    sp.sin,
    sp.cos,
    sp.atan,
    sp.erf,
    sp.Piecewise,
    sp.functions.elementary.piecewise.ExprCondPair,
    sp.core.relational.Relational,
    sp.logic.boolalg.BooleanAtom,
    sp.logic.boolalg.BooleanFunction,
    sp.NumberSymbol,
    sp.sign,
    Sigmoid,
    Softplus,
    expm1,
    log1p,
)
#: no parse may build a tree larger than this many nodes: the parser's own limit (MAX_NODES operations,
#: each with at most three operands) — work is bounded by counting it, never by the clock
MAX_TREE_NODES = 4 * MAX_NODES + 8


@pytest.fixture
def no_code_execution(monkeypatch):
    """Make eval/exec/compile and SymPy's string parser fail loudly while a test parses."""

    def forbidden(*args, **kwargs):
        raise AssertionError("the expression parser tried to execute or parse code")

    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    monkeypatch.setattr(sympy_parser, "parse_expr", forbidden)
    monkeypatch.setattr(sympy_parser, "eval_expr", forbidden)


def outcome(text: str) -> sp.Expr | ExpressionError:
    try:
        result: sp.Expr | ExpressionError = parse_expression(text, VARIABLES)
    except ExpressionError as exc:
        return exc
    size = sum(1 for _ in sp.preorder_traversal(result))
    assert size <= MAX_TREE_NODES, f"parsing {text[:60]!r} built {size} nodes (bound {MAX_TREE_NODES})"
    return result


def assert_whitelisted(expr: sp.Expr) -> None:
    assert expr.free_symbols <= {X, A}
    for node in sp.preorder_traversal(expr):
        assert isinstance(node, ALLOWED_TYPES), f"{type(node).__name__} in {expr}"
    assert not expr.has(sp.I, sp.zoo, sp.nan, sp.oo)


# ---------------------------------------------------------------------------------------------
# valid input


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("x * tanh(log(1 + exp(x)))", X * sp.tanh(sp.log(1 + sp.exp(X)))),
        ("-x**2", -(X**2)),
        ("2^-x", 2 ** (-X)),
        ("x ** a ** 2", X ** (A**2)),
        ("1.5e-3 * x", sp.Rational(3, 2000) * X),
        ("sigmoid(a*x) / (1 + abs(x))", Sigmoid(A * X) / (1 + sp.Abs(X))),
        ("max(0, x)", sp.Piecewise((0, 0 > X), (X, True))),
        ("where(x > 0, x, a * expm1(x))", sp.Piecewise((X, X > 0), (A * expm1(X), True))),
        ("pi * e", sp.pi * sp.E),
        ("  x\t+\n1 ", X + 1),
    ],
)
def test_valid_expressions_parse_to_the_expected_sympy(text, expected, no_code_execution):
    assert sp.simplify(parse_expression(text, VARIABLES) - expected) == 0


def _expressions() -> st.SearchStrategy[str]:
    leaves = st.sampled_from(["x", "a", "2", "0.5", "pi", "e", "1e-2"])

    def extend(inner):
        unary = st.sampled_from([f for f, (n, _) in FUNCTIONS.items() if n == 1])
        return st.one_of(
            st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "**"]), inner).map(
                lambda t: f"({t[0]} {t[1]} {t[2]})"
            ),
            st.tuples(unary, inner).map(lambda t: f"{t[0]}({t[1]})"),
            st.tuples(st.sampled_from(["max", "min"]), inner, inner).map(lambda t: f"{t[0]}({t[1]}, {t[2]})"),
            inner.map(lambda s: f"-{s}"),
        )

    return st.recursive(leaves, extend, max_leaves=12)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_expressions())
def test_generated_grammar_strings_parse_or_are_refused_cleanly(text):
    result = outcome(text)  # e.g. 1/(x - x) is refused as division by zero, log(0) as not finite
    if isinstance(result, ExpressionError):
        assert "^" in str(result)
    else:
        assert_whitelisted(result)


# ---------------------------------------------------------------------------------------------
# hostile input

ATTACKS = [
    "__import__('os').system('echo pwned')",
    "x.__class__.__mro__",
    "().__class__.__bases__[0].__subclasses__()",
    "lambda: 1",
    "lambda x: x",
    "exec('import os')",
    "eval('1+1')",
    "open('/etc/passwd').read()",
    "getattr(x, 'y')",
    "globals()",
    "__builtins__",
    "x if x else 1",
    "[x for x in ()]",
    "{x}",
    "x[0]",
    "x; import os",
    "x = 1",
    "x := 1",
    "f'{x}'",
    "'x'",
    "x @ x",
    "x % 2",
    "x // 2",
    "x & a",
    "\\x",
    "x\x00",
    "\u0445 + 1",  # Cyrillic 'х'
    "Symbol('y')",
    "sympify('x')",
    "Function('f')(x)",
    "factorial(1000000)",
    "9**9**9**9",
    "2**10000000",
    "(10**30)**64**64",
    "1e999999",
    "x**" + "9" * 50,
    "1" * 5000,
    "(" * 1000 + "x" + ")" * 1000,
    "-" * 5000 + "x",
    "x" + "+x" * 3000,
    "exp(" * 200 + "x" + ")" * 200,
    "sqrt(-1)",
    "log(0)",
    "1/0",
    "x/(x-x)",
    "0**-1",
    "",
    "   ",
    "x +",
    "max(x)",
    "where(x, 1, 2)",
    "exp",
    "x(1)",
    "pi(2)",
]


@pytest.mark.parametrize("text", ATTACKS, ids=range(len(ATTACKS)))
def test_known_attack_shapes_are_refused_with_a_pointer(text, no_code_execution):
    result = outcome(text)
    assert isinstance(result, ExpressionError), f"{text[:60]!r} was accepted as {result}"
    message = str(result)
    assert message.startswith("expression: ")
    assert "(at character " in message and "^" in message


def test_the_message_points_at_the_offending_token():
    with pytest.raises(ExpressionError) as info:
        parse_expression("x * __import__('os')", ["x"], where="activations.bad.expression")
    message = str(info.value)
    assert message.startswith("activations.bad.expression: name '__import__' is not allowed")
    assert info.value.position == 4
    line, caret = message.splitlines()[1:3]
    assert caret.index("^") == line.index("__import__")
    with pytest.raises(ExpressionError, match="attribute access is not allowed"):
        parse_expression("x.real", ["x"])


def test_depth_and_size_limits_name_the_limit():
    with pytest.raises(ExpressionError, match=f"nested too deeply \\(more than {MAX_DEPTH} levels\\)"):
        parse_expression("(" * 60 + "x" + ")" * 60, ["x"])
    with pytest.raises(ExpressionError, match=r"exponent .* larger than 64"):
        parse_expression("x**100", ["x"])
    with pytest.raises(ExpressionError, match="longer than 1000 characters"):
        parse_expression("x+" * 600 + "x", ["x"])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=120))
def test_random_text_is_parsed_or_refused_and_never_runs_code(text):
    result = outcome(text)
    if not isinstance(result, ExpressionError):
        assert_whitelisted(result)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet="xa0123456789.eE+-*/^()<>=, _piexplogsqrtanhmaxwhere", max_size=200))
def test_random_strings_over_the_grammars_alphabet_are_parsed_or_refused(text):
    result = outcome(text)
    if not isinstance(result, ExpressionError):
        assert_whitelisted(result)
