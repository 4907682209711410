"""Run every route of :mod:`cadcam_numeric.bench.routes` on the same inputs, in one process.

Each measurement: one warm-up call, then ``repeats`` timed calls (CUDA synchronised), reported as
median, min and max in milliseconds. Ratios are computed from medians of the same run:
2 ÷ 1 (explain over the backbone alone), 3 ÷ 2 (autograd / torch.func routes over explain),
4 ÷ 2 (pytorch-grad-cam over explain), and head-only autograd ÷ closed form. Peak memory of
routes 2 and 4 at the largest batch: on CUDA ``max_memory_allocated`` above what was allocated
before; on Linux CPUs the peak resident set (VmHWM, reset through ``/proc/self/clear_refs``)
above the resident set before. Also timed once: code generation into a temporary directory
(what ``python -m derivations generate`` does) and building the derivation report. Timings are
to be read as ratios; no test asserts them.
"""

from __future__ import annotations

import multiprocessing
import platform
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import torch
from tqdm.auto import tqdm

from cadcam_numeric.bench.closed_form_routes import (
    CLOSED_FORM_ROUTES,
    ORT_ROUTES,
    closed_form_agreement,
    closed_form_routes,
    onnx_runtime_routes,
)
from cadcam_numeric.bench.head_variants import VARIANTS, head_variants
from cadcam_numeric.bench.problem import BenchProblem, make_problem
from cadcam_numeric.bench.routes import Routes
from cadcam_numeric.devices import select_device
from cadcam_numeric.pipeline.backbones import feature_shape

__all__ = ["BenchConfig", "Timing", "run_suite", "to_markdown"]

E2E = ("backbone", "explain", "autograd", "torch_func", "grad_cam_pkg")
HEAD = ("closed_head", "autograd_head", "torch_func_head")


@dataclass
class BenchConfig:
    batches: tuple[int, ...] | None = None  # default (1, 8, 32), plus 256 on a GPU; quick: (1, 2)
    repeats: int = 3
    quick: bool = False
    device: str | None = None
    dtype: str = "float32"
    input_size: int | None = None  # default 200 (the paper's); quick: 96 (pool5 512×3×3)
    with_report: bool = True
    heads_only: bool = False  # only the backbone and the head variants
    decom_max_batch: int = 8  # Decom-CAM runs p + 1 = 11 backbone passes per call: small batches only on a CPU
    seed: int = 0

    def resolved_batches(self, device: torch.device) -> tuple[int, ...]:
        if self.batches:
            return tuple(self.batches)
        if self.quick:
            return (1, 2)
        return (1, 8, 32, 256) if device.type == "cuda" else (1, 8, 32)

    def resolved_input_size(self) -> int:
        return self.input_size or (96 if self.quick else 200)


@dataclass
class Timing:
    route: str
    batch: int
    median_ms: float
    min_ms: float
    max_ms: float
    repeats: int


@dataclass
class BenchResult:
    device: str
    device_name: str
    dtype: str
    input_size: int
    config: dict
    versions: dict[str, str]
    timings: list[Timing] = field(default_factory=list)
    ratios: dict[str, dict[str, float]] = field(default_factory=dict)
    memory_mb: dict[str, float | None] = field(default_factory=dict)
    agreement: dict[str, float] = field(default_factory=dict)
    once_s: dict[str, float | None] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    closed_form_ratios: dict[str, float | None] = field(default_factory=dict)

    def median(self, route: str, batch: int) -> float | None:
        for t in self.timings:
            if t.route == route and t.batch == batch:
                return t.median_ms
        return None

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for package in ("cadcam", "torch", "torchvision", "timm", "scikit-learn", "sympy", "grad-cam", "numpy"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = "not installed"
    return out


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_call(fn: Callable[[], object], repeats: int, device: torch.device) -> tuple[float, float, float]:
    fn()  # warm-up
    synchronise(device)
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        synchronise(device)
        samples.append((time.perf_counter() - start) * 1e3)
    return statistics.median(samples), min(samples), max(samples)


def _status_kb(field_name: str) -> int | None:
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return None
    match = re.search(rf"{field_name}:\s+(\d+) kB", text)
    return int(match.group(1)) if match else None


def _peak_memory_mb(fn: Callable[[], object], device: torch.device) -> float | None:
    """Peak memory the call adds above what is held before it (None where it cannot be measured).

    CUDA: the allocator's peak. CPU (Linux): the peak resident set (VmHWM, reset through
    ``/proc/self/clear_refs``) above the resident set before the call — meaningful only in a fresh
    process, before the allocator has cached anything; :func:`_memory_in_fresh_process` arranges that.
    """
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        torch.cuda.synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - before) / 2**20
    rss = _status_kb("VmRSS")
    try:
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current resident set
    except OSError:
        return None
    fn()
    peak = _status_kb("VmHWM")
    return None if rss is None or peak is None else (peak - rss) / 1024


def _memory_child(route: str, batch: int, config: BenchConfig) -> float | None:
    device = select_device(config.device)
    dtype = {"float32": torch.float32, "float64": torch.float64}[config.dtype]
    problem = make_problem(device, dtype, config.resolved_input_size(), config.seed)
    routes = Routes(problem)
    images = problem.images(batch, config.seed)
    try:
        return _peak_memory_mb(lambda: getattr(routes, route)(images), device)
    finally:
        routes.close()


def _memory_in_fresh_process(route: str, batch: int, config: BenchConfig, device: torch.device) -> float | None:
    """Peak memory of one call of ``route``, measured in a new process on the CPU (the allocator of a
    process that already ran other routes keeps their memory resident, which hides the peak)."""
    if device.type == "cuda":
        return _memory_child(route, batch, config)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(_memory_child, route, batch, config).result()


def _max_rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().double().cpu(), b.detach().double().cpu()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


def _once(label: str, fn: Callable[[], object]) -> float | None:
    start = time.perf_counter()
    try:
        fn()
    except Exception as exc:
        print(f"bench: {label} skipped ({exc})", file=sys.stderr)
        return None
    return time.perf_counter() - start


def _generate_once() -> None:
    from derivations.codegen.render import write

    with tempfile.TemporaryDirectory() as tmp:
        write(Path(tmp))


#: Builds the derivation report into a directory (``reports`` sits above this package, so the CLI
#: passes it in): ``build(out_dir, verify)``.
ReportBuilder = Callable[[Path, bool], object]


def run_suite(
    config: BenchConfig, log: Callable[[str], None] = print, report_builder: ReportBuilder | None = None
) -> BenchResult:
    """Measure every route for every batch size (see the module docstring); the report build is timed
    when ``config.with_report`` and a ``report_builder`` is given."""
    device = select_device(config.device)
    dtype = {"float32": torch.float32, "float64": torch.float64}[config.dtype]
    batches = config.resolved_batches(device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else (platform.processor() or "CPU")
    if device.type == "cpu":
        name = f"{name} ({torch.get_num_threads()} threads)"
    result = BenchResult(
        str(device),
        name,
        config.dtype,
        config.resolved_input_size(),
        {**asdict(config), "batches": batches},
        package_versions(),
    )
    problem = make_problem(device, dtype, config.resolved_input_size(), config.seed)
    routes = Routes(problem)
    try:
        routes_per_batch = (
            ("backbone",) if config.heads_only else (*E2E, *HEAD, "eigen_cam", "eigen_cam_pkg", "decom_cam")
        )
        progress = tqdm(total=len(batches) * len(routes_per_batch), desc="bench", leave=False)
        for batch in batches:
            images = problem.images(batch, config.seed)
            with torch.no_grad():
                features = problem.backbone(images)
            for route in routes_per_batch:
                progress.set_postfix_str(f"{route} @ {batch}")
                progress.update()
                if route == "decom_cam" and device.type == "cpu" and batch > config.decom_max_batch:
                    continue
                med, lo, hi = time_call(_route(routes, route, images, features), config.repeats, device)
                result.timings.append(Timing(route, batch, round(med, 3), round(lo, 3), round(hi, 3), config.repeats))
        progress.close()
        log("bench: head variants (the blocks beyond the paper's head), closed form from the features")
        variants = head_variants(problem, config.seed)
        for batch in batches:
            with torch.no_grad():
                features = problem.backbone(problem.images(batch, config.seed))
            for route, fn in variants.items():
                med, lo, hi = time_call(lambda fn=fn, f=features: fn(f), config.repeats, device)
                result.timings.append(Timing(route, batch, round(med, 3), round(lo, 3), round(hi, 3), config.repeats))
        _closed_form_section(result, problem, routes, config, log)
        if config.heads_only:
            return result
        for batch in batches:
            result.ratios[str(batch)] = _ratios(result, batch)
        largest = batches[-1]
        log(f"bench: peak memory of explain and pytorch-grad-cam at batch {largest}")
        for route in ("explain", "grad_cam_pkg"):
            result.memory_mb[f"{route}@{largest}"] = _memory_in_fresh_process(route, largest, config, device)
        result.agreement.update(_agreement(routes, problem.images(min(batches[-1], 4), config.seed + 1)))
    finally:
        routes.close()
    log("bench: code generation and the report, once each")
    result.once_s["generate"] = _once("generate", _generate_once)
    if config.with_report and report_builder is not None:

        def report_once() -> None:
            with tempfile.TemporaryDirectory() as tmp:
                report_builder(Path(tmp), not config.quick)

        result.once_s["report"] = _once("report", report_once)
    if device.type == "cpu":
        result.notes.append("CPU: no GPU was used; ratios on a GPU differ (the head is tiny next to VGG16).")
    return result


def _closed_form_section(
    result: BenchResult, problem: BenchProblem, routes: Routes, config: BenchConfig, log: Callable[[str], None]
) -> None:
    """The reused ``ClosedForm`` against the head's forward and the autograd baselines (batches 32 and
    256; quick: 2), and the exported demo architecture in ONNX Runtime (batch 32; quick: 2)."""
    device = problem.device
    cf_batches = (2,) if config.quick else (32, 256)
    log(f"bench: ClosedForm reused, its compiled form and the autograd baselines at batches {cf_batches}")
    for batch in cf_batches:
        for route, fn in closed_form_routes(problem, routes, batch).items():
            med, lo, hi = time_call(fn, config.repeats, device)
            result.timings.append(Timing(route, batch, round(med, 3), round(lo, 3), round(hi, 3), config.repeats))
    ort_batch = 2 if config.quick else 32
    log(f"bench: the demo architecture exported to ONNX, run by ONNX Runtime at batch {ort_batch}")
    ort = onnx_runtime_routes(ort_batch, config.seed)
    result.agreement["ClosedForm weights vs autograd, batched (max rel)"] = closed_form_agreement(
        problem, routes, cf_batches[0]
    )
    if isinstance(ort, str):
        result.notes.append(f"ONNX Runtime rows not measured: {ort}.")
    else:
        ort, difference = ort
        result.agreement["ONNX Runtime vs eager ExplainingModel (max rel)"] = difference
        for route, fn in ort.items():
            med, lo, hi = time_call(fn, config.repeats, torch.device("cpu"))
            result.timings.append(Timing(route, ort_batch, round(med, 3), round(lo, 3), round(hi, 3), config.repeats))
    result.closed_form_ratios = _closed_form_ratios(result, cf_batches, ort_batch)


def median_ratio(result: object, a: str, b: str, batch: int) -> float | None:
    """median(a) ÷ median(b) at ``batch`` in one run's ``result`` (3 decimals; None if either is missing or b is 0)."""
    x, y = result.median(a, batch), result.median(b, batch)
    return None if x is None or y is None or y == 0 else round(x / y, 3)


def _closed_form_ratios(result: BenchResult, cf_batches: tuple[int, ...], ort_batch: int) -> dict[str, float | None]:
    def ratio(a: str, b: str, batch: int) -> float | None:
        return median_ratio(result, a, b, batch)

    out: dict[str, float | None] = {}
    for b in cf_batches:
        out[f"ClosedForm / head(F) at {b}"] = ratio("cf_reused", "head_forward", b)
        out[f"ClosedForm / logits + p + SVM scores at {b}"] = ratio("cf_reused", "explained_forward", b)
        out[f"explain() per call / ClosedForm at {b}"] = ratio("explain_per_call", "cf_reused", b)
        out[f'classes="all" / "predicted" at {b}'] = ratio("cf_all", "cf_reused", b)
        out[f"compiled / eager ClosedForm at {b}"] = ratio("cf_compiled", "cf_reused", b)
        for route in ("autograd_loop", "autograd_batched", "torch_func"):
            out[f"{CLOSED_FORM_ROUTES[route]} / ClosedForm at {b}"] = ratio(route, "cf_reused", b)
    out[f"ONNX Runtime: maps / logits at {ort_batch}"] = ratio("ort_maps", "ort_logits", ort_batch)
    return out


def _route(routes: Routes, route: str, images: torch.Tensor, features: torch.Tensor) -> Callable[[], object]:
    table = {
        "backbone": lambda: routes.backbone(images),
        "explain": lambda: routes.explain(images),
        "autograd": lambda: routes.with_backbone(routes.autograd_head)(images),
        "torch_func": lambda: routes.with_backbone(routes.torch_func_head)(images),
        "grad_cam_pkg": lambda: routes.grad_cam_pkg(images),
        "closed_head": lambda: routes.closed_head(features),
        "autograd_head": lambda: routes.autograd_head(features),
        "torch_func_head": lambda: routes.torch_func_head(features),
        "eigen_cam": lambda: routes.eigen_cam(images),
        "eigen_cam_pkg": lambda: routes.eigen_cam_pkg(images),
        "decom_cam": lambda: routes.decom_cam(images),
    }
    return table[route]


def _ratios(result: BenchResult, batch: int) -> dict[str, float]:
    def ratio(a: str, b: str) -> float | None:
        return median_ratio(result, a, b, batch)

    return {
        "explain / backbone (2/1)": ratio("explain", "backbone"),
        "autograd / explain (3/2)": ratio("autograd", "explain"),
        "torch.func / explain (3/2)": ratio("torch_func", "explain"),
        "pytorch-grad-cam / explain (4/2)": ratio("grad_cam_pkg", "explain"),
        "head: autograd / closed form": ratio("autograd_head", "closed_head"),
        "head: torch.func / closed form": ratio("torch_func_head", "closed_head"),
        "eigen-cam: package / ours": ratio("eigen_cam_pkg", "eigen_cam"),
    }


def _agreement(routes: Routes, images: torch.Tensor) -> dict[str, float]:
    """The routes compute the same quantities: weights (closed vs autograd vs torch.func) and maps."""
    features = routes.backbone(images)
    closed = routes.closed_head(features)
    ours = routes.explain(images)
    peer = routes.grad_cam_pkg(images)
    eigen_peer = routes.eigen_cam_pkg(images).double()
    # up to the documented sign rule: the package keeps the SVD's sign, ours orients each map
    eigen_both = [routes.eigen_cam(images, sign).cpu().double() for sign in (1.0, -1.0)]
    eigen_diff = torch.stack([(e - eigen_peer).abs().flatten(1).max(1).values for e in eigen_both]).min(0).values
    return {
        "weights: autograd vs closed form (max rel)": _max_rel(routes.autograd_head(features)[0], closed),
        "weights: torch.func vs closed form (max rel)": _max_rel(routes.torch_func_head(features)[0], closed),
        "class map: pytorch-grad-cam vs explain (max abs)": float(
            (ours["gradcam"].cpu().double() - peer["gradcam"].double()).abs().max()
        ),
        "SVM map: pytorch-grad-cam vs explain (max abs)": float(
            (ours["svm"].cpu().double() - peer["svm"].double()).abs().max()
        ),
        "Eigen-CAM: package vs ours, up to sign (max abs)": float(eigen_diff.max()),
    }


def fmt_ms(value: float | None, unit: str = "") -> str:
    if value is None:
        return "n/a"
    return f"{value:,.1f}{unit}" if value >= 10 else f"{value:.2f}{unit}"


def to_markdown(result: BenchResult) -> str:
    """The tables the README shows: end to end, head only, Eigen/Decom-CAM, memory, one-off costs."""
    batches = result.config["batches"]
    t, m, n = feature_shape("vgg16", "pool", result.input_size)
    if result.config.get("heads_only"):
        head = [
            f"Device: **{result.device_name}** ({result.device}), {result.dtype}, VGG16 at "
            f"{result.input_size}×{result.input_size} px (pool5 {t}×{m}×{n}); median of {result.config['repeats']} "
            "run(s) after a warm-up, ms. Backbone forward: "
            + ", ".join(f"{fmt_ms(result.median('backbone', b))} at batch {b}" for b in batches)
            + ".",
        ]
        return "\n".join([*head, *_variant_lines(result, batches), *_closed_form_lines(result)]) + "\n"
    lines = [
        f"Device: **{result.device_name}** ({result.device}), {result.dtype}, VGG16 at "
        f"{result.input_size}×{result.input_size} px (pool5 {t}×{m}×{n}), head 40-30-20-10, PCA B = 3 on layer 2, "
        f"RBF SVM (10 classes, one-vs-one); median of {result.config['repeats']} run(s) after a warm-up, ms. "
        "Versions: " + ", ".join(f"{k} {v}" for k, v in result.versions.items()) + ".",
        "",
        "| batch | 1 backbone | 2 explain | 3 autograd | 3 torch.func | 4 pytorch-grad-cam | 2÷1 | 3÷2 autograd "
        "| 3÷2 func | 4÷2 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for b in batches:
        r = result.ratios[str(b)]
        cells = [fmt_ms(result.median(k, b)) for k in E2E]
        lines.append(
            f"| {b} | " + " | ".join(cells) + f" | {fmt_ms(r['explain / backbone (2/1)'], '×')} | "
            f"{fmt_ms(r['autograd / explain (3/2)'], '×')} | {fmt_ms(r['torch.func / explain (3/2)'], '×')} | "
            f"{fmt_ms(r['pytorch-grad-cam / explain (4/2)'], '×')} |"
        )
    lines += [
        "",
        "Head only (from the features; the closed form's gain in isolation):",
        "",
        "| batch | closed form | autograd, 1 backward per target | torch.func | autograd÷closed | func÷closed |",
        "|---|---|---|---|---|---|",
    ]
    for b in batches:
        r = result.ratios[str(b)]
        lines.append(
            f"| {b} | "
            + " | ".join(fmt_ms(result.median(k, b)) for k in HEAD)
            + f" | {fmt_ms(r['head: autograd / closed form'], '×')} "
            + f"| {fmt_ms(r['head: torch.func / closed form'], '×')} |"
        )
    lines += _variant_lines(result, batches)
    lines += _closed_form_lines(result)
    lines += [
        "",
        "| batch | Eigen-CAM (ours) | EigenCAM (pytorch-grad-cam) | Decom-CAM (ours; no reference package) |",
        "|---|---|---|---|",
    ]
    for b in batches:
        lines.append(
            f"| {b} | {fmt_ms(result.median('eigen_cam', b))} | {fmt_ms(result.median('eigen_cam_pkg', b))} | "
            f"{fmt_ms(result.median('decom_cam', b))} |"
        )
    lines += ["", "| peak memory above the model (MiB) | |", "|---|---|"]
    lines += [f"| {k} | {fmt_ms(v)} |" for k, v in result.memory_mb.items()]
    lines += ["", "| agreement between routes | |", "|---|---|"]
    lines += [f"| {k} | {v:.1e} |" for k, v in result.agreement.items()]
    lines += ["", "| once | seconds |", "|---|---|"]
    lines += [f"| {k} | {fmt_ms(v)} |" for k, v in result.once_s.items()]
    lines += [f"\n{note}" for note in result.notes]
    return "\n".join(lines) + "\n"


def _variant_lines(result: BenchResult, batches: list[int]) -> list[str]:
    """The head-variant table: each variant's ms per batch and (backbone + head) ÷ backbone."""
    largest = batches[-1]
    lines = [
        "",
        "Head variants (the blocks beyond the paper's head; `explain` from the features, all maps), ms, "
        f"and the end-to-end cost they imply at batch {largest}, (backbone + head) ÷ backbone:",
        "",
        "| head | " + " | ".join(f"batch {b}" for b in batches) + f" | (1 + head) ÷ 1 at {largest} |",
        "|---|" + "---|" * (len(batches) + 1),
    ]
    floor = result.median("backbone", largest)
    for route, label in VARIANTS.items():
        head_ms = result.median(route, largest)
        implied = None if floor is None or head_ms is None else (floor + head_ms) / floor
        lines.append(
            f"| {label} | "
            + " | ".join(fmt_ms(result.median(route, b)) for b in batches)
            + f" | {'n/a' if implied is None else f'{implied:.3f}×'} |"
        )
    return lines


def _closed_form_lines(result: BenchResult) -> list[str]:
    """The ClosedForm table (ms per route and batch) and its ratios, from the same run."""
    if not result.closed_form_ratios:
        return []
    labels = {**CLOSED_FORM_ROUTES, **ORT_ROUTES}
    batches = sorted({t.batch for t in result.timings if t.route in labels})
    lines = [
        "",
        "ClosedForm (paper head on pool5-shaped features; ONNX Runtime rows: the demo architecture, image in), ms:",
        "",
        "| route | " + " | ".join(f"batch {b}" for b in batches) + " |",
        "|---|" + "---|" * len(batches),
    ]
    for route, label in labels.items():
        cells = [fmt_ms(result.median(route, b)) for b in batches]
        if any(c != "n/a" for c in cells):
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", "| ratio (same run) | |", "|---|---|"]
    lines += [f"| {k} | {fmt_ms(v, '×')} |" for k, v in result.closed_form_ratios.items()]
    return lines
