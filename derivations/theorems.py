"""Theorems 1–2 of the paper (the RBF "degree of effect", Eq. 27–32), the erratum, and the
project's extensions to the other kernels — each proved by SymPy with γ > 0.

The degree of effect of a support vector p_i on the input p is the norm of the kernel gradient,

    E(p_i, p) = ‖∂K(p_i, p)/∂p‖₂ = 2γ d e^{−γd²},   d = ‖p_i − p‖₂     (RBF, Eq. 27–28).

Every proof step is a SymPy computation whose result is compared with the claimed closed form;
a theorem ``holds`` only when every step reduced to the claim.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import sympy as sp

from derivations.proof import is_identically_zero

__all__ = ["ProofStep", "Theorem", "all_theorems", "degree_of_effect_rbf"]

gamma = sp.Symbol("gamma", positive=True)
d = sp.Symbol("d", nonnegative=True)
t = sp.Symbol("t", positive=True)


@dataclass(frozen=True)
class ProofStep:
    """One step: what is computed (plain text, and ``caption`` as LaTeX text with inline maths, for
    the report), its LaTeX, and whether SymPy confirmed the claim."""

    description: str
    latex: str
    holds: bool = True
    caption: str = ""

    def to_json(self) -> dict[str, object]:
        return {"description": self.description, "latex": self.latex, "holds": self.holds, "caption": self.caption}


@dataclass(frozen=True)
class Theorem:
    key: str
    title: str
    statement: str
    statement_latex: str
    results: dict[str, str]
    proof_steps: tuple[ProofStep, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)
    title_latex: str = ""  # the title as LaTeX text (the report's)
    prose_latex: str = ""  # the statement in words, as LaTeX text with inline maths (the report's)

    @property
    def holds(self) -> bool:
        return all(step.holds for step in self.proof_steps)

    def to_json(self) -> dict[str, object]:
        return {
            "key": self.key,
            "title": self.title,
            "statement": self.statement,
            "statement_latex": self.statement_latex,
            "holds": self.holds,
            "results": dict(self.results),
            "proof_steps": [s.to_json() for s in self.proof_steps],
            "notes": list(self.notes),
        }


#: ‖p_i‖ in the extensions (printed as such, never as σ, which the sigmoid kernel does not own)
NORM_PI = sp.Symbol("sigma", positive=True)
#: the poly kernel's degree (printed \deg: d is the distance)
DEG = sp.Symbol("deg", integer=True, positive=True)


def _tex(expr: sp.Expr) -> str:
    r"""LaTeX with the report's names: ‖p_i‖ for NORM_PI, \deg for DEG."""
    return sp.latex(expr, symbol_names={NORM_PI: r"\lVert\mathbf p_i\rVert", DEG: r"\deg"})


def _same(a: sp.Expr, b: sp.Expr) -> bool:
    return is_identically_zero(sp.sympify(a) - sp.sympify(b))[0]


def degree_of_effect_rbf() -> sp.Expr:
    """E(d) = 2γ d e^{−γd²} (Eq. 28), derived as ‖∇_p exp(−γ‖p_i − p‖²)‖ in one dimension."""
    x, s = sp.symbols("x s", real=True)
    grad = sp.diff(sp.exp(-gamma * (s - x) ** 2), x)
    # |grad| = 2γ|s − x| e^{−γ(s−x)²}; with d = |s − x| ≥ 0:
    return sp.simplify(sp.Abs(grad).subs(x, s - d))


def _rbf_analysis() -> tuple[dict[str, sp.Expr], list[ProofStep]]:
    E = degree_of_effect_rbf()
    steps = [
        ProofStep(
            "E(d) as the norm of the RBF kernel gradient, d = ||p_i - p||",
            r"E(d)=\left\lVert\frac{\partial}{\partial\mathbf p}"
            r"e^{-\gamma\lVert\mathbf p_i-\mathbf p\rVert^2}\right\rVert"
            rf" = {sp.latex(E)}",
            _same(E, 2 * gamma * d * sp.exp(-gamma * d**2)),
        )
    ]
    E1 = sp.factor(sp.diff(E, d))
    E2 = sp.factor(sp.diff(E, d, 2))
    critical = sp.solve(sp.Eq(E1, 0), d)
    d_star = critical[0] if len(critical) == 1 else sp.nan
    e_max = sp.simplify(E.subs(d, d_star))
    e2_star = sp.simplify(E2.subs(d, d_star))
    before = sp.factor(sp.simplify(E1.subs(d, d_star * t / (1 + t))))
    after = sp.factor(sp.simplify(E1.subs(d, d_star * (1 + t))))
    lim0 = sp.limit(E, d, 0, "+")
    num, den = 2 * gamma * d, sp.exp(gamma * d**2)
    lhopital = sp.simplify(sp.diff(num, d) / sp.diff(den, d))
    lim_inf = sp.limit(E, d, sp.oo)
    values = {
        "E": E,
        "first_derivative": E1,
        "second_derivative": E2,
        "argmax": d_star,
        "max": e_max,
        "second_derivative_at_argmax": e2_star,
        "limit_zero": lim0,
        "limit_infinity": lim_inf,
        "first_derivative_before": before,
        "first_derivative_after": after,
        "lhopital_ratio": lhopital,
        "lhopital_limit": sp.limit(lhopital, d, sp.oo),
    }
    return values, steps


def _theorem_1(v: dict[str, sp.Expr], base: list[ProofStep]) -> Theorem:
    steps = base + [
        ProofStep(
            "limit at d -> 0+ by continuity",
            rf"\lim_{{d\to0^+}}E(d) = {sp.latex(v['limit_zero'])}",
            v["limit_zero"] == 0,
        ),
        ProofStep(
            "d -> infinity is the indeterminate form infinity/infinity: apply L'Hopital to 2 gamma d / exp(gamma d^2)",
            rf"\lim_{{d\to\infty}}\frac{{2\gamma d}}{{e^{{\gamma d^2}}}}"
            rf"=\lim_{{d\to\infty}}{sp.latex(v['lhopital_ratio'])}={sp.latex(v['lhopital_limit'])}",
            v["lhopital_limit"] == 0,
        ),
        ProofStep(
            "direct SymPy limit agrees",
            rf"\lim_{{d\to\infty}}E(d) = {sp.latex(v['limit_infinity'])}",
            v["limit_infinity"] == 0,
        ),
    ]
    return Theorem(
        "theorem_1",
        "Theorem 1 (RBF degree of effect vanishes near and far)",
        "For gamma > 0, E(d) = 2 gamma d exp(-gamma d^2) tends to 0 as d -> 0+ and as d -> infinity: "
        "support vectors very close to or very far from p barely affect the SVM gradient.",
        r"\lim_{d\to0^+}E(d)=0\quad\text{and}\quad\lim_{d\to\infty}E(d)=0\qquad(\gamma>0)",
        _results(v),
        tuple(steps),
    )


def _results(v: dict[str, sp.Expr]) -> dict[str, str]:
    keys = (
        "argmax",
        "max",
        "limit_zero",
        "limit_infinity",
        "second_derivative_at_argmax",
        "first_derivative",
        "second_derivative",
    )
    return {k: str(v[k]) for k in keys}


def _theorem_2(v: dict[str, sp.Expr], base: list[ProofStep]) -> Theorem:
    d_star = v["argmax"]
    steps = base + [
        ProofStep(
            "first derivative",
            rf"E'(d) = {sp.latex(v['first_derivative'])}",
            _same(v["first_derivative"], 2 * gamma * (1 - 2 * gamma * d**2) * sp.exp(-gamma * d**2)),
        ),
        ProofStep(
            "the only critical point on d > 0",
            rf"E'(d)=0\iff d^*={sp.latex(d_star)}",
            _same(d_star, 1 / sp.sqrt(2 * gamma)),
        ),
        ProofStep(
            "E' > 0 on (0, d*): substitute d = d* t/(1+t), t > 0",
            rf"E'\!\left(d^*\tfrac{{t}}{{1+t}}\right) = {sp.latex(v['first_derivative_before'])} > 0",
            bool(v["first_derivative_before"].is_positive),
        ),
        ProofStep(
            "E' < 0 on (d*, infinity): substitute d = d* (1+t), t > 0",
            rf"E'\!\left(d^*(1+t)\right) = {sp.latex(v['first_derivative_after'])} < 0",
            bool(v["first_derivative_after"].is_negative),
        ),
        ProofStep(
            "second derivative",
            rf"E''(d) = {sp.latex(v['second_derivative'])}",
            _same(v["second_derivative"], -4 * gamma**2 * d * (3 - 2 * gamma * d**2) * sp.exp(-gamma * d**2)),
        ),
        ProofStep(
            "strict local maximum: E''(d*) < 0",
            rf"E''(d^*) = {sp.latex(v['second_derivative_at_argmax'])} < 0",
            bool(v["second_derivative_at_argmax"].is_negative)
            and _same(
                v["second_derivative_at_argmax"],
                -4 * sp.sqrt(2) * gamma ** sp.Rational(3, 2) * sp.exp(-sp.Rational(1, 2)),
            ),
        ),
        ProofStep(
            "maximum value (global on d >= 0, since E increases before d* and decreases after)",
            rf"E(d^*) = {sp.latex(v['max'])}",
            _same(v["max"], sp.sqrt(2 * gamma) * sp.exp(-sp.Rational(1, 2))),
        ),
    ]
    return Theorem(
        "theorem_2",
        "Theorem 2 (the RBF degree of effect peaks at d* = 1/sqrt(2 gamma))",
        "For gamma > 0, E(d) is strictly increasing on (0, 1/sqrt(2 gamma)) and strictly decreasing "
        "after it, so argmax_{d >= 0} E(d) = 1/sqrt(2 gamma) and max E = sqrt(2 gamma) exp(-1/2).",
        r"\arg\max_{d\ge0}E(d)=\frac{1}{\sqrt{2\gamma}},\qquad \max_{d\ge0}E(d)=\sqrt{2\gamma}\,e^{-1/2}",
        _results(v),
        tuple(steps),
    )


def _erratum(v: dict[str, sp.Expr]) -> Theorem:
    d_star = v["argmax"]
    slope = sp.simplify(sp.diff(d_star, gamma))
    at_01 = sp.nsimplify(d_star.subs(gamma, sp.Rational(1, 10)))
    steps = (
        ProofStep(
            "d* decreases in gamma",
            rf"\frac{{\partial d^*}}{{\partial\gamma}} = {sp.latex(slope)} < 0",
            bool(slope.is_negative),
        ),
        ProofStep(
            "example: gamma = 0.1",
            rf"d^*(0.1) = {sp.latex(at_01)} \approx {float(at_01):.3f}",
            _same(at_01, sp.sqrt(5)),
        ),
    )
    return Theorem(
        "erratum_small_gamma",
        "Erratum: a small gamma makes the most influential distance long, not short",
        "The paper states that a small gamma makes the maximising distance short. Since "
        "d* = 1/sqrt(2 gamma) decreases in gamma, a small gamma makes it long "
        "(gamma = 0.1 gives d* = sqrt(5) ~ 2.236) and a large gamma makes it short.",
        r"\frac{\partial d^*}{\partial\gamma}<0:\ \text{small }\gamma\Rightarrow\text{large }d^*",
        {"argmax_derivative_wrt_gamma": str(slope), "argmax_at_gamma_0_1": str(at_01)},
        steps,
    )


def _linear_extension() -> Theorem:
    sn = NORM_PI  # ||p_i||
    E = sn  # ||grad_p (p_i^T p)|| = ||p_i||
    steps = (
        ProofStep(
            "gradient of the linear kernel is the support vector itself",
            r"\nabla_{\mathbf p}\,\mathbf p_i^\top\mathbf p=\mathbf p_i,\quad E=\lVert\mathbf p_i\rVert",
            True,
        ),
        ProofStep(
            "E does not depend on p: no decay near or far, no maximiser",
            r"\frac{\partial E}{\partial\mathbf p}=0",
            sp.diff(E, sp.Symbol("u")) == 0,
        ),
    )
    return Theorem(
        "extension_linear",
        "Extension (linear kernel): every support vector has a constant effect",
        "For K = p_i^T p, E(p_i, p) = ||p_i|| for every p. Theorem 1 does not hold (no decay) and "
        "Theorem 2 has no analogue (no maximiser): the linear SVM gradient is the fixed vector "
        "sum_i alpha_i c_i p_i.",
        r"E(\mathbf p_i,\mathbf p)=\lVert\mathbf p_i\rVert",
        {"E": str(E), "limit_zero": "sigma", "limit_infinity": "sigma", "argmax": "none (constant)"},
        steps,
    )


def _poly_extension() -> Theorem:
    u = sp.Symbol("u", real=True)
    r = sp.Symbol("r", real=True)
    w = sp.Symbol("w", real=True)  # w = gamma u + r
    sn = NORM_PI
    n = sp.Symbol("n", integer=True, nonnegative=True)  # degree = n + 2 >= 2 (printed as deg)
    deg = n + 2
    kprime = sp.diff((gamma * u + r) ** deg, u)
    kprime_w = deg * gamma * w ** (n + 1)
    E = sn * deg * gamma * sp.Abs(w) ** (n + 1)
    v = sp.Symbol("v", positive=True)
    grow = sp.limit(E.subs(w, v), v, sp.oo)
    at_root = kprime_w.subs(w, 0)
    steps = (
        ProofStep(
            "gradient of the poly kernel: grad K = k'(u) p_i with u = p_i^T p; write w = gamma u + r",
            rf"k'(u) = {_tex(kprime_w.subs(n, DEG - 2))},\quad E = \lVert\mathbf p_i\rVert\,|k'(u)| = "
            rf"{_tex(E.subs(n, DEG - 2))}",
            _same(kprime, kprime_w.subs(w, gamma * u + r)),
        ),
        ProofStep(
            "degree >= 2: E grows without bound as w = gamma u + r -> infinity (no Theorem 1 analogue)",
            rf"\lim_{{w\to\infty}}E = {sp.latex(grow)}",
            grow == sp.oo,
        ),
        ProofStep(
            "degree >= 2: E vanishes on the hyperplane w = 0 (its minimum, not a maximum)",
            rf"k'\big|_{{w=0}} = {sp.latex(at_root)}",
            at_root == 0,
        ),
    )
    return Theorem(
        "extension_poly",
        "Extension (poly kernel): no locality",
        "For K = (gamma p_i^T p + r)^degree the degree of effect is E = ||p_i|| degree gamma "
        "|gamma p_i^T p + r|^(degree-1), a function of the projection u = p_i^T p, not of the distance. "
        "For degree = 1 it is constant (as the linear kernel); for degree >= 2 it is zero on the "
        "hyperplane gamma u + r = 0 and unbounded as |u| grows. Neither theorem carries over: far "
        "support vectors dominate.",
        r"E=\lVert\mathbf p_i\rVert\,\deg\,\gamma\,|\gamma\mathbf p_i^\top\mathbf p+r|^{\deg-1}",
        {
            "E": str(E),
            "limit_infinity": str(grow),
            "argmax": "none (unbounded for degree >= 2)",
            "argmin": str(-r / gamma),
        },
        steps,
    )


def _sigmoid_extension() -> Theorem:
    u = sp.Symbol("u", real=True)
    r = sp.Symbol("r", real=True)
    sn = NORM_PI
    E = sn * sp.diff(sp.tanh(gamma * u + r), u)  # k' = gamma (1 - tanh^2) > 0
    E1 = sp.factor(sp.diff(E, u))
    u_star = -r / gamma
    E_max = sp.simplify(E.subs(u, u_star))
    E2_star = sp.simplify(sp.diff(E, u, 2).subs(u, u_star))
    lim_m, lim_p = sp.limit(E, u, -sp.oo), sp.limit(E, u, sp.oo)
    before = sp.simplify(E1.subs(u, u_star - t))
    after = sp.simplify(E1.subs(u, u_star + t))
    steps = (
        ProofStep(
            "gradient of the sigmoid kernel: grad K = gamma (1 - tanh^2(gamma u + r)) p_i",
            rf"E(u) = {_tex(E)} > 0",
            bool(sp.simplify(E.rewrite(sp.exp)).is_positive)
            or _same(E, sn * gamma * (1 - sp.tanh(gamma * u + r) ** 2)),
        ),
        ProofStep(
            "limits along the projection",
            rf"\lim_{{u\to-\infty}}E={sp.latex(lim_m)},\ \lim_{{u\to\infty}}E={sp.latex(lim_p)}",
            lim_m == 0 and lim_p == 0,
        ),
        ProofStep(
            "E' > 0 before u* = -r/gamma and < 0 after (substitute u = u* -/+ t, t > 0)",
            rf"E'(u^*-t)={_tex(before)},\quad E'(u^*+t)={_tex(after)}",
            bool(before.is_positive) and bool(after.is_negative),
        ),
        ProofStep(
            "maximum and curvature",
            rf"E(u^*)={_tex(E_max)},\quad E''(u^*)={_tex(E2_star)}<0",
            _same(E_max, gamma * sn) and _same(E2_star, -2 * gamma**3 * sn),
        ),
    )
    return Theorem(
        "extension_sigmoid",
        "Extension (sigmoid kernel): Theorems 1-2 hold along the projection u = p_i^T p",
        "For K = tanh(gamma p_i^T p + r), E = ||p_i|| gamma (1 - tanh^2(gamma u + r)) with u = p_i^T p. "
        "E -> 0 as u -> +-infinity (Theorem 1 in u, not in distance) and E is maximal, gamma ||p_i||, "
        "at u* = -r/gamma with E''(u*) = -2 gamma^3 ||p_i|| < 0 (Theorem 2 in u). What does not "
        "carry over: E depends on p only through u, so moving p orthogonally to p_i never decays.",
        r"\arg\max_u E=-\frac{r}{\gamma},\quad \max E=\gamma\lVert\mathbf p_i\rVert,\quad \lim_{u\to\pm\infty}E=0",
        {
            "E": str(E),
            "argmax": str(u_star),
            "max": str(E_max),
            "limit_minus_infinity": str(lim_m),
            "limit_infinity": str(lim_p),
            "second_derivative_at_argmax": str(E2_star),
        },
        steps,
    )


#: Each proof step's caption as LaTeX text (the report typesets these; ``description`` stays plain
#: text for the terminal and JSON). Notation: d = ‖p_i − p‖ the distance, deg the poly degree,
#: ‖p_i‖ written as such.
STEP_CAPTIONS = {
    "E(d) as the norm of the RBF kernel gradient, d = ||p_i - p||": r"$E(d)$ as the norm of the RBF kernel's gradient, "
    r"with $d=\lVert\mathbf p_i-\mathbf p\rVert$",
    "limit at d -> 0+ by continuity": r"the limit as $d\to0^+$, by continuity",
    "d -> infinity is the indeterminate form infinity/infinity: apply L'Hopital to 2 gamma d / exp(gamma d^2)": (
        r"as $d\to\infty$ the quotient $2\gamma d/e^{\gamma d^2}$ has the form $\infty/\infty$: "
        r"apply L'H\^opital's rule"
    ),
    "direct SymPy limit agrees": r"SymPy's limit of $E$ itself agrees",
    "first derivative": r"the first derivative",
    "the only critical point on d > 0": r"the only critical point with $d>0$",
    "E' > 0 on (0, d*): substitute d = d* t/(1+t), t > 0": r"$E'>0$ on $(0,d^*)$: substitute $d=d^*t/(1+t)$, $t>0$",
    "E' < 0 on (d*, infinity): substitute d = d* (1+t), t > 0": r"$E'<0$ on $(d^*,\infty)$: substitute $d=d^*(1+t)$, "
    r"$t>0$",
    "second derivative": r"the second derivative",
    "strict local maximum: E''(d*) < 0": r"a strict local maximum: $E''(d^*)<0$",
    "maximum value (global on d >= 0, since E increases before d* and decreases after)": (
        r"the maximum value, global on $d\ge0$ since $E$ increases before $d^*$ and decreases after it"
    ),
    "d* decreases in gamma": r"$d^*$ decreases in $\gamma$",
    "example: gamma = 0.1": r"for example $\gamma=0.1$",
    "gradient of the linear kernel is the support vector itself": r"the gradient of the linear kernel is the support "
    r"vector itself",
    "E does not depend on p: no decay near or far, no maximiser": r"$E$ does not depend on $\mathbf p$: no decay near "
    r"or far, no maximiser",
    "gradient of the poly kernel: grad K = k'(u) p_i with u = p_i^T p; write w = gamma u + r": (
        r"the gradient of the poly kernel is $k'(u)\,\mathbf p_i$ with $u=\mathbf p_i^\top\mathbf p$; write "
        r"$w=\gamma u+r$ and $\deg\ge2$ for the degree"
    ),
    "degree >= 2: E grows without bound as w = gamma u + r -> infinity (no Theorem 1 analogue)": r"for $\deg\ge2$, "
    r"$E$ grows without bound as $w\to\infty$ (no analogue of Theorem 1)",
    "degree >= 2: E vanishes on the hyperplane w = 0 (its minimum, not a maximum)": r"for $\deg\ge2$, $E$ vanishes on "
    r"the hyperplane $w=0$ (its minimum, not a maximum)",
    "gradient of the sigmoid kernel: grad K = gamma (1 - tanh^2(gamma u + r)) p_i": r"the gradient of the sigmoid "
    r"kernel is $\gamma\big(1-\tanh^2(\gamma u+r)\big)\,\mathbf p_i$",
    "limits along the projection": r"the limits along the projection $u$",
    "E' > 0 before u* = -r/gamma and < 0 after (substitute u = u* -/+ t, t > 0)": r"$E'>0$ before $u^*=-r/\gamma$ and "
    r"$E'<0$ after it (substitute $u=u^*\mp t$, $t>0$)",
    "maximum and curvature": r"the maximum and the curvature there",
}

#: Each theorem's title and statement in words, as LaTeX text (the report's).
THEOREM_PROSE = {
    "theorem_1": (
        r"RBF degree of effect vanishes near and far",
        r"For $\gamma>0$ the degree of effect $E(d)=2\gamma d\,e^{-\gamma d^2}$ tends to $0$ as $d\to0^+$ and "
        r"as $d\to\infty$: support vectors very close to $\mathbf p$ or very far from it barely move the SVM's "
        r"gradient.",
    ),
    "theorem_2": (
        r"the RBF degree of effect peaks at $d^*=1/\sqrt{2\gamma}$",
        r"For $\gamma>0$, $E$ increases strictly on $(0,d^*)$ and decreases strictly on $(d^*,\infty)$, so its "
        r"maximiser over $d\ge0$ is $d^*=1/\sqrt{2\gamma}$ and its maximum $\sqrt{2\gamma}\,e^{-1/2}$.",
    ),
    "erratum_small_gamma": (
        r"a small $\gamma$ makes the most influential distance long, not short",
        r"The paper says a small $\gamma$ makes the maximising distance short. Since $d^*=1/\sqrt{2\gamma}$ "
        r"decreases in $\gamma$, a small $\gamma$ makes it long ($\gamma=0.1$ gives $d^*=\sqrt5\approx2.236$) and a "
        r"large $\gamma$ makes it short.",
    ),
    "extension_linear": (
        r"linear kernel: every support vector has a constant effect",
        r"For $K=\mathbf p_i^\top\mathbf p$, $E=\lVert\mathbf p_i\rVert$ whatever $\mathbf p$ is: Theorem 1 does "
        r"not hold (no decay) and Theorem 2 has no analogue (no maximiser); the linear SVM's gradient is the fixed "
        r"vector $\sum_i\alpha_ic_i\mathbf p_i$.",
    ),
    "extension_poly": (
        r"poly kernel: no locality",
        r"For $K=(\gamma\,\mathbf p_i^\top\mathbf p+r)^{\deg}$, $E$ depends on $\mathbf p$ only through the "
        r"projection $u=\mathbf p_i^\top\mathbf p$, not the distance. For $\deg=1$ it is constant (as the linear "
        r"kernel); for $\deg\ge2$ it is zero on the hyperplane $\gamma u+r=0$ and unbounded as $|u|$ grows. Neither "
        r"theorem carries over: far support vectors dominate.",
    ),
    "extension_sigmoid": (
        r"sigmoid kernel: Theorems 1--2 hold along $u=\mathbf p_i^\top\mathbf p$",
        r"For $K=\tanh(\gamma\,\mathbf p_i^\top\mathbf p+r)$, $E\to0$ as $u\to\pm\infty$ (Theorem 1 in $u$, not "
        r"in the distance) and $E$ is largest, $\gamma\lVert\mathbf p_i\rVert$, at $u^*=-r/\gamma$ with "
        r"$E''(u^*)<0$ (Theorem 2 in $u$). What does not carry over: moving $\mathbf p$ orthogonally to "
        r"$\mathbf p_i$ never decays.",
    ),
}


def _typeset(theorem: Theorem) -> Theorem:
    """The theorem with its report captions (KeyError if a step or theorem has none: a test holds this)."""
    title, prose = THEOREM_PROSE[theorem.key]
    steps = tuple(replace(s, caption=STEP_CAPTIONS[s.description]) for s in theorem.proof_steps)
    return replace(theorem, proof_steps=steps, title_latex=title, prose_latex=prose)


def all_theorems() -> list[Theorem]:
    """Theorems 1–2 (RBF), the erratum, and the linear/poly/sigmoid extensions, in that order."""
    values, base = _rbf_analysis()
    theorems = [
        _theorem_1(values, list(base)),
        _theorem_2(values, list(base)),
        _erratum(values),
        _linear_extension(),
        _poly_extension(),
        _sigmoid_extension(),
    ]
    return [_typeset(t) for t in theorems]
