"""A whitelist parser for the expressions users write in an architecture spec.

``parse_expression("x * tanh(log(1 + exp(x)))", variables=["x"])`` returns the SymPy expression.
It is a small recursive-descent parser that builds SymPy objects itself; nothing is passed to
``eval``, ``sympify`` or ``parse_expr``, so no text a user writes can import, call or reach an
attribute of anything. The grammar is

    expression := sum
    sum        := product (("+" | "-") product)*
    product    := unary (("*" | "/") unary)*
    unary      := ("+" | "-") unary | power
    power      := atom (("**" | "^") unary)?          (right-associative; -x**2 = -(x**2))
    atom       := NUMBER | NAME | NAME "(" arguments ")" | "(" sum ")"
    arguments  := sum ("," sum)*;  the first argument of where() is  sum ("<"|"<="|">"|">=") sum

with NAME one of the declared variables, the constants ``pi`` and ``e``, or a function from
:data:`FUNCTIONS`. Everything else (``__import__``, ``.``, ``lambda``, brackets, strings,
``=``) is refused with an :class:`ExpressionError` whose message quotes the expression and
points at the offending token. Size is bounded so that parsing always ends quickly: at most
:data:`MAX_LENGTH` characters, :data:`MAX_DEPTH` nested operations, :data:`MAX_NODES` operations,
numeric literals of at most 30 characters, numeric exponents of at most :data:`MAX_EXPONENT`
in magnitude, and exact numbers of at most :data:`MAX_NUMBER_BITS` bits.

``max(a, b)``, ``min(a, b)`` and ``where(c, a, b)`` become ``Piecewise``; at a tie ``max`` and
``min`` take the branch of ``b`` — the code generated from them makes the same choice, so the
derivative there is that of ``b`` on both sides of every check.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import sympy as sp
from sympy.codegen.cfunctions import expm1, log1p

from derivations.errors import DerivationInputError
from derivations.functions import Sigmoid, Softplus

__all__ = [
    "CONSTANTS",
    "FUNCTIONS",
    "MAX_DEPTH",
    "MAX_EXPONENT",
    "MAX_LENGTH",
    "MAX_NODES",
    "MAX_NUMBER_BITS",
    "ExpressionError",
    "parse_expression",
    "reserved_names",
]

MAX_LENGTH = 1000
MAX_DEPTH = 40
MAX_NODES = 300
MAX_EXPONENT = 64
MAX_NUMBER_BITS = 4096
_MAX_LITERAL = 30


def _max(a: sp.Expr, b: sp.Expr) -> sp.Expr:
    return sp.Piecewise((a, a > b), (b, True))


def _min(a: sp.Expr, b: sp.Expr) -> sp.Expr:
    return sp.Piecewise((a, a < b), (b, True))


#: name -> (number of arguments, constructor). Every function acts on real arguments.
FUNCTIONS: dict[str, tuple[int, Callable[..., sp.Expr]]] = {
    "exp": (1, sp.exp),
    "log": (1, sp.log),
    "log1p": (1, log1p),
    "expm1": (1, expm1),
    "sqrt": (1, sp.sqrt),
    "abs": (1, sp.Abs),
    "tanh": (1, sp.tanh),
    "sinh": (1, sp.sinh),
    "cosh": (1, sp.cosh),
    "sin": (1, sp.sin),
    "cos": (1, sp.cos),
    "atan": (1, sp.atan),
    "erf": (1, sp.erf),
    "sigmoid": (1, Sigmoid),
    "softplus": (1, Softplus),
    "max": (2, _max),
    "min": (2, _min),
    "where": (3, lambda c, a, b: sp.Piecewise((a, c), (b, True))),
}
CONSTANTS: dict[str, sp.Expr] = {"pi": sp.pi, "e": sp.E}

_TOKEN = re.compile(
    r"(?P<space>\s+)"
    r"|(?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op>\*\*|<=|>=|[-+*/^(),<>])"
)
_COMPARISONS = {"<": sp.StrictLessThan, "<=": sp.LessThan, ">": sp.StrictGreaterThan, ">=": sp.GreaterThan}


def reserved_names() -> frozenset[str]:
    """Names a variable or parameter may not take: the functions and constants."""
    return frozenset(FUNCTIONS) | frozenset(CONSTANTS)


class ExpressionError(DerivationInputError):
    """An expression outside the whitelist; the message points at the offending token."""

    def __init__(self, text: str, position: int, message: str, where: str = "expression") -> None:
        shown = text if len(text) <= 120 else text[:117] + "..."
        caret = " " * min(position, len(shown)) + "^"
        super().__init__(f"{where}: {message} (at character {position + 1})\n  {shown}\n  {caret}")
        self.position = position

    def __reduce__(self) -> tuple:  # pickled whole (it crosses the budget's process boundary)
        return (_rebuild_expression_error, (str(self), self.position))


def _rebuild_expression_error(message: str, position: int) -> ExpressionError:
    error = ExpressionError.__new__(ExpressionError)
    Exception.__init__(error, message)
    error.position = position
    return error


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    position: int


def _tokenise(text: str) -> list[_Token]:
    """Tokens up to the first character outside the grammar, which becomes an ``error`` token
    (reported when the parser reaches it, so the first problem in reading order is the one named)."""
    tokens, position = [], 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            tokens.append(_Token("error", text[position], position))
            break
        kind = match.lastgroup or ""
        if kind != "space":
            tokens.append(_Token(kind, match.group(), position))
        position = match.end()
    tokens.append(_Token("end", "", len(text)))
    return tokens


class _Parser:
    def __init__(self, text: str, symbols: dict[str, sp.Symbol], where: str) -> None:
        self.text, self.symbols, self.where = text, symbols, where
        self.tokens = _tokenise(text)
        self.index, self.depth, self.nodes = 0, 0, 0

    # -- helpers ---------------------------------------------------------------------------
    def error(self, token: _Token, message: str) -> ExpressionError:
        return ExpressionError(self.text, token.position, message, self.where)

    @property
    def token(self) -> _Token:
        token = self.tokens[self.index]
        if token.kind == "error":
            hint = " (attribute access is not allowed)" if token.text == "." else ""
            raise self.error(token, f"character {token.text!r} is not allowed{hint}")
        return token

    def take(self, text: str | None = None) -> _Token:
        token = self.token
        if text is not None and token.text != text:
            found = "the end of the expression" if token.kind == "end" else repr(token.text)
            raise self.error(token, f"expected {text!r}, found {found}")
        self.index += 1
        return token

    def node(self, token: _Token) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise self.error(token, f"expression too large (more than {MAX_NODES} operations)")

    def enter(self, token: _Token) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(token, f"expression nested too deeply (more than {MAX_DEPTH} levels)")

    # -- grammar ---------------------------------------------------------------------------
    def parse(self) -> sp.Expr:
        expr = self.sum()
        if self.token.kind != "end":
            raise self.error(self.token, f"unexpected {self.token.text!r}")
        return expr

    def sum(self) -> sp.Expr:
        self.enter(self.token)
        expr = self.product()
        while self.token.text in ("+", "-"):
            op = self.take()
            rhs = self.product()
            self.node(op)
            expr = expr + rhs if op.text == "+" else expr - rhs
        self.depth -= 1
        return expr

    def product(self) -> sp.Expr:
        expr = self.unary()
        while self.token.text in ("*", "/"):
            op = self.take()
            rhs = self.unary()
            self.node(op)
            if op.text == "/" and rhs.is_zero:
                raise self.error(op, "division by zero")
            expr = expr * rhs if op.text == "*" else expr / rhs
        return expr

    def unary(self) -> sp.Expr:
        if self.token.text in ("+", "-"):
            op = self.take()
            self.enter(op)
            operand = self.unary()
            self.depth -= 1
            self.node(op)
            return -operand if op.text == "-" else operand
        return self.power()

    def power(self) -> sp.Expr:
        base = self.atom()
        if self.token.text not in ("**", "^"):
            return base
        op = self.take()
        self.enter(op)
        exponent = self.unary()
        self.depth -= 1
        self.node(op)
        return self.checked_power(base, exponent, op)

    def checked_power(self, base: sp.Expr, exponent: sp.Expr, op: _Token) -> sp.Expr:
        if exponent.is_number:
            if not exponent.is_real or not exponent.is_finite:
                raise self.error(op, "the exponent must be a finite real number")
            if abs(float(exponent)) > MAX_EXPONENT:
                shown = str(exponent) if len(str(exponent)) <= 24 else f"{float(exponent):.3g}"
                raise self.error(op, f"exponent {shown} is larger than {MAX_EXPONENT} in magnitude")
            if base.is_Rational and exponent.is_Integer:
                p, q = sp.fraction(base)
                bits = max(int(abs(p)).bit_length(), int(q).bit_length()) * abs(int(exponent))
                if bits > MAX_NUMBER_BITS:
                    raise self.error(op, f"number too large (over {MAX_NUMBER_BITS} bits)")
                if base == 0 and exponent < 0:
                    raise self.error(op, "division by zero")
        return base**exponent

    def atom(self) -> sp.Expr:
        token = self.token
        if token.kind == "number":
            self.take()
            return self.number(token)
        if token.text == "(":
            self.take()
            self.enter(token)
            expr = self.sum()
            self.depth -= 1
            self.take(")")
            return expr
        if token.kind == "name":
            self.take()
            if self.token.text == "(":
                return self.call(token)
            if token.text in self.symbols:
                return self.symbols[token.text]
            if token.text in CONSTANTS:
                return CONSTANTS[token.text]
            if token.text in FUNCTIONS:
                raise self.error(token, f"function {token.text!r} must be called, as {token.text}(...)")
            raise self.error(token, self.unknown_name(token.text))
        if token.kind == "end":
            raise self.error(token, "unexpected end of the expression")
        raise self.error(token, f"unexpected {token.text!r}")

    def unknown_name(self, name: str) -> str:
        declared = ", ".join(sorted(self.symbols)) or "none"
        return (
            f"name {name!r} is not allowed; use the declared variables and parameters ({declared}), "
            f"the constants pi and e, or the functions {', '.join(sorted(FUNCTIONS))}"
        )

    def number(self, token: _Token) -> sp.Expr:
        if len(token.text) > _MAX_LITERAL:
            raise self.error(token, f"numeric literal longer than {_MAX_LITERAL} characters")
        exponent = token.text.lower().partition("e")[2]
        if exponent and abs(int(exponent)) > 30:
            raise self.error(token, "numeric literal exponent beyond 1e±30")
        return sp.Rational(token.text)

    def call(self, name: _Token) -> sp.Expr:
        if name.text not in FUNCTIONS:
            if name.text in self.symbols or name.text in CONSTANTS:
                raise self.error(name, f"{name.text!r} is not a function")
            raise self.error(name, self.unknown_name(name.text))
        arity, build = FUNCTIONS[name.text]
        opening = self.take("(")
        self.enter(opening)
        args: list[sp.Basic] = []
        while True:
            if name.text == "where" and not args:
                args.append(self.comparison())
            else:
                args.append(self.sum())
            if self.token.text != ",":
                break
            self.take(",")
        self.take(")")
        self.depth -= 1
        if len(args) != arity:
            raise self.error(name, f"{name.text}() takes {arity} argument(s), got {len(args)}")
        self.node(name)
        return build(*args)

    def comparison(self) -> sp.Basic:
        lhs = self.sum()
        op = self.token
        if op.text not in _COMPARISONS:
            raise self.error(op, "where() needs a comparison first, as where(x > 0, a, b)")
        self.take()
        rhs = self.sum()
        self.node(op)
        return _COMPARISONS[op.text](lhs, rhs)


def parse_expression(
    text: str, variables: Iterable[str], where: str = "expression", symbols: dict[str, sp.Symbol] | None = None
) -> sp.Expr:
    """Parse ``text`` into a real-valued SymPy expression in ``variables`` (see the module docstring).

    ``symbols`` maps a variable name to the SymPy symbol to use (default: a real symbol of that
    name). ``where`` names the spec key in error messages. Raises :class:`ExpressionError`.
    """
    if not isinstance(text, str):
        raise ExpressionError(str(text), 0, f"expected a string, got {type(text).__name__}", where)
    if len(text) > MAX_LENGTH:
        raise ExpressionError(text, MAX_LENGTH, f"longer than {MAX_LENGTH} characters", where)
    if not text.strip():
        raise ExpressionError(text, 0, "empty expression", where)
    table = dict(symbols or {})
    for name in variables:
        if name in reserved_names() or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name):
            raise ExpressionError(text, 0, f"{name!r} cannot be a variable name", where)
        table.setdefault(name, sp.Symbol(name, real=True))
    expr = _Parser(text, table, where).parse()
    if expr.has(sp.I, sp.zoo, sp.nan, sp.oo, -sp.oo):
        raise ExpressionError(text, 0, f"not a finite real expression (it simplifies to {expr})", where)
    return expr
