"""Accuracy of compiled models: the controlled L x scheme x interp sweep, the init-amplitude study,
trained checkpoints (error relative to the output scale, F1 on test sets) and the OOB robustness matrix.

Every error is ``compiled (NumpyEvaluator, the definition of correct) - reference`` where the
reference is ``float64`` (``SourceModel.forward``, pykan's math in float64) or ``pykan`` (pykan's own
torch float32 forward of the same model, where a live model is available). Errors are absolute;
trained models also get ``max_abs_err_over_std`` = max over outputs j of (max_n |err_nj|) / std_n(y_nj),
the scale-free figure the paper never reported.

Input sets:
    in_domain   uniform over layer 0's whole table domain [t_0, t_K] (random models)
    clipped1    N(0, 1) clipped to the domain (the paper's controlled inputs)
    gauss1      N(0, 1) unclipped (the paper's "stress" inputs)
    gauss3      N(0, 3^2) unclipped: genuinely out of domain for most rows
    natural     the model's own data (test set of bundled models, cache_data of real checkpoints)
    wide        natural mean + 3 x natural std x N(0, 1), per column (out of the trained range)
Rows whose activations leave some layer's knot domain are "OOB rows" (``zoo.layer_domains``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np

from lutkan.bench.rows import row, skipped
from lutkan.bench.zoo import BenchModel, layer_domains, random_model, torch_forward
from lutkan.compiler import compile_model
from lutkan.contract import ContractOptions
from lutkan.evaluators.numpy_eval import NumpyEvaluator
from lutkan.metrics import compare_outputs, error_over_std
from lutkan.reporting import f1, predict
from lutkan.source import base_function

CONTROLLED_WIDTH = [10, 8]
CONTROLLED_GRID = 8
CONTROLLED_K = 3
N_ROWS = 1024


def _contract_cols(o: ContractOptions) -> dict:
    return {"L": o.L, "scheme": o.scheme, "interp": o.interp, "boundary": o.boundary, "oob": o.oob}


def error_rows(study: str, y: np.ndarray, y_ref: np.ndarray, *, reference: str, input_set: str,
               oob_mask: np.ndarray | None = None, with_std: bool = False, **cols) -> list[dict]:
    """max_abs_err and mae (plus in-domain / OOB-row splits and the std-relative error on request)."""
    st = compare_outputs(y, y_ref)
    base = dict(reference=reference, input_set=input_set, batch=int(y.shape[0]), **cols)
    note = f"{st['extreme_mismatch']} non-finite mismatches" if st["extreme_mismatch"] else ""
    out = [row(study, "max_abs_err", st["max_abs"], n=st["n_ordinary"], note=note, **base),
           row(study, "mae", st["mean_abs"], n=st["n_ordinary"], **base)]
    if with_std:
        ratio = error_over_std(y, y_ref)
        out.append(row(study, "max_abs_err_over_std", ratio, n=int(y.shape[0]), **base))
    if oob_mask is not None:
        for name, m in (("in_rows", ~oob_mask), ("oob_rows", oob_mask)):
            if m.any():
                s = compare_outputs(y[m], y_ref[m])
                out.append(row(study, f"max_abs_err_{name}", s["max_abs"], n=int(m.sum()), **base))
    return out


def inputs_for(bm: BenchModel, names: tuple[str, ...], n: int, seed: int) -> dict[str, np.ndarray]:
    """The named input sets for ``bm`` (sets that need natural data are left out if it has none)."""
    rng = np.random.default_rng(10_000 + seed)
    layer0 = bm.src.layers[0]
    lo = layer0.grid[:, 0].astype(np.float32)
    hi = layer0.grid[:, -1].astype(np.float32)
    n_in = bm.src.n_inputs
    cols = bm.src.input_id
    out = {}
    for name in names:
        if name == "in_domain":
            x = np.zeros((n, n_in), dtype=np.float32)
            x[:, cols] = rng.uniform(lo, hi, (n, lo.size)).astype(np.float32)
            x[:, cols] = np.clip(x[:, cols], lo, hi)
        elif name == "clipped1":
            x = rng.standard_normal((n, n_in)).astype(np.float32)
            x[:, cols] = np.clip(x[:, cols], lo, hi)
        elif name == "gauss1":
            x = rng.standard_normal((n, n_in)).astype(np.float32)
        elif name == "gauss3":
            x = (3.0 * rng.standard_normal((n, n_in))).astype(np.float32)
        elif name in ("natural", "wide"):
            if bm.x is None:
                continue
            if name == "natural":
                x = bm.x
            else:
                mu, sd = bm.x.mean(axis=0), bm.x.std(axis=0)
                x = (mu + 3.0 * np.where(sd > 0, sd, 1.0) * rng.standard_normal((min(n, 4 * bm.x.shape[0]), n_in))
                     ).astype(np.float32)
        else:
            raise ValueError(f"unknown input set {name!r}")
        out[name] = np.ascontiguousarray(x, dtype=np.float32)
    return out


def _pykan_reference(bm: BenchModel, x: np.ndarray) -> tuple[np.ndarray | None, str | None]:
    model, why = bm.pykan()
    if model is None:
        return None, why
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch_forward(model, x), None
    except Exception as e:  # noqa: BLE001 - recorded
        return None, f"pykan forward failed: {type(e).__name__}: {e}"


def _references(bm: BenchModel, sets: dict[str, np.ndarray], use_pykan: bool):
    """{input_set: {"float64": y, "pykan": y | None}} and the reason pykan is missing (if it is)."""
    refs, reason = {}, None
    for name, x in sets.items():
        refs[name] = {"float64": bm.src.forward(x)}
        if use_pykan:
            y, why = _pykan_reference(bm, x)
            if y is not None:
                refs[name]["pykan"] = y
            else:
                reason = why
    return refs, reason


def controlled(p, tick: Callable[[str], None] = lambda s: None) -> list[dict]:
    """Controlled sweep on trained-like random [10, 8] layers (grid 8, k 3): L x scheme x interp x seed."""
    rows: list[dict] = []
    sets_names = ("in_domain", "gauss1", "gauss3")
    for seed in range(p.seeds):
        bm = random_model(CONTROLLED_WIDTH, CONTROLLED_GRID, CONTROLLED_K, seed, "trained-like")
        sets = inputs_for(bm, sets_names, N_ROWS, seed)
        refs, why = _references(bm, sets, p.use_pykan)
        if why and seed == 0:
            rows.append(skipped("accuracy_controlled", f"no pykan comparison: {why}", model=bm.name,
                                reference="pykan"))
        oob = {name: layer_domains(bm.src, x) for name, x in sets.items()}
        for name, m in oob.items():
            rows.append(row("accuracy_controlled", "oob_row_frac", float(m.mean()), model=bm.name, seed=seed,
                            input_set=name, n=int(m.size)))
        for L in p.sweep_L:
            for scheme in p.sweep_schemes:
                for interp in p.sweep_interps:
                    if interp == "nearest" and L not in p.nearest_L:
                        continue
                    opts = ContractOptions(L=L, scheme=scheme, interp=interp)
                    model = compile_model(bm.src, opts)
                    ev = NumpyEvaluator(model)
                    cols = dict(model=bm.name, contender="lut", backend="numpy", seed=seed, **_contract_cols(opts))
                    rows.append(row("accuracy_controlled", "max_tab_error",
                                    max(float(l.tab_error.max()) for l in model.layers), **cols))
                    for name, x in sets.items():
                        y = ev(x)
                        for ref_name, y_ref in refs[name].items():
                            rows += error_rows("accuracy_controlled", y, y_ref, reference=ref_name, input_set=name,
                                               oob_mask=oob[name] if name != "in_domain" else None, **cols)
                    tick(f"controlled seed {seed} L{L} {scheme} {interp}")
    return rows


def init_amplitude(p, trained: list[BenchModel], tick: Callable[[str], None] = lambda s: None) -> list[dict]:
    """Why random inits hide errors: the same compile on pykan-init-like vs trained-like layers."""
    rows: list[dict] = []
    for kind in ("pykan-init", "trained-like"):
        for seed in range(p.seeds):
            bm = random_model(CONTROLLED_WIDTH, CONTROLLED_GRID, CONTROLLED_K, seed, kind)
            x = inputs_for(bm, ("in_domain",), N_ROWS, seed)["in_domain"]
            y_ref = bm.src.forward(x)
            layer = bm.src.layers[0]
            # single layer, identity node affines: y = base branch + spline branch
            base_part = base_function(bm.src.base_fun, x.astype(np.float64)) @ (layer.mask * layer.scale_base)
            spline_part = y_ref - base_part
            cols = dict(model=bm.name, seed=seed, input_set="in_domain", reference="float64", batch=x.shape[0])
            rows.append(row("accuracy_init", "coef_std", float(np.std(layer.coef)), **cols))
            rows.append(row("accuracy_init", "output_std", float(np.std(y_ref)), **cols))
            rows.append(row("accuracy_init", "spline_branch_std", float(np.std(spline_part)), **cols))
            rows.append(row("accuracy_init", "base_branch_std", float(np.std(base_part)), **cols))
            for L in p.init_L:
                opts = ContractOptions(L=L, scheme="int8")
                y = NumpyEvaluator(compile_model(bm.src, opts))(x)
                rows += error_rows("accuracy_init", y, y_ref, reference="float64", input_set="in_domain",
                                   with_std=True, model=bm.name, contender="lut", backend="numpy", seed=seed,
                                   **_contract_cols(opts))
            tick(f"init {kind} seed {seed}")
    for bm in trained:
        rows.append(row("accuracy_init", "coef_std", float(np.mean(bm.info.get("coef_std", [np.nan]))),
                        model=bm.name, note="mean over layers of the trained checkpoint's coefficient std"))
    return rows


def trained(p, models: list[BenchModel], tick: Callable[[str], None] = lambda s: None) -> list[dict]:
    """Every trained checkpoint at the profile's (L, scheme): error vs float64 and pykan, F1 on test sets."""
    rows: list[dict] = []
    for bm in models:
        sets = inputs_for(bm, ("natural", "wide"), 4096, 0)
        if not sets:
            rows.append(skipped("accuracy_trained", "the checkpoint has no natural inputs (no cache_data)",
                                model=bm.name))
            continue
        refs, why = _references(bm, sets, p.use_pykan)
        if why:
            rows.append(skipped("accuracy_trained", f"no pykan comparison: {why}", model=bm.name, reference="pykan"))
        oob = {name: layer_domains(bm.src, x) for name, x in sets.items()}
        for name, m in oob.items():
            rows.append(row("accuracy_trained", "oob_row_frac", float(m.mean()), model=bm.name, input_set=name,
                            n=int(m.size)))
            rows.append(row("accuracy_trained", "output_std", float(np.std(refs[name]["float64"])), model=bm.name,
                            input_set=name, reference="float64", n=int(m.size)))
        float_f1 = {}
        if bm.task and bm.y is not None:
            for ref_name, y_ref in refs["natural"].items():
                float_f1[ref_name] = f1(bm.y, predict(y_ref), binary=bm.task == "binary")
                rows.append(row("classification", "f1", float_f1[ref_name], model=bm.name, contender=ref_name,
                                reference="labels", input_set="natural", batch=int(bm.y.size),
                                note="binary F1 (logit > 0)" if bm.task == "binary" else "macro F1 (argmax)"))
        for L in p.trained_L:
            for scheme in p.trained_schemes:
                opts = ContractOptions(L=L, scheme=scheme)
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        model = compile_model(bm.src, opts)
                except Exception as e:  # noqa: BLE001 - a refusal is a result
                    rows.append(skipped("accuracy_trained", f"compile refused: {type(e).__name__}: {e}",
                                        status="failed", model=bm.name, **_contract_cols(opts)))
                    continue
                ev = NumpyEvaluator(model)
                cols = dict(model=bm.name, contender="lut", backend="numpy", **_contract_cols(opts))
                rows.append(row("accuracy_trained", "max_tab_error",
                                max(float(l.tab_error.max(initial=0)) for l in model.layers),
                                note="compile-time max error of a stored table vs its exact edge function", **cols))
                for name, x in sets.items():
                    y = ev(x)
                    for ref_name, y_ref in refs[name].items():
                        rows += error_rows("accuracy_trained", y, y_ref, reference=ref_name, input_set=name,
                                           oob_mask=oob[name], with_std=True, **cols)
                    if name == "natural" and bm.task and bm.y is not None:
                        pred = predict(y)
                        f1_lut = f1(bm.y, pred, binary=bm.task == "binary")
                        rows.append(row("classification", "f1", f1_lut, reference="labels", input_set=name,
                                        batch=int(bm.y.size), **cols))
                        for ref_name, y_ref in refs[name].items():
                            rows.append(row("classification", "f1_delta", f1_lut - float_f1[ref_name],
                                            reference=ref_name, input_set=name, batch=int(bm.y.size), **cols))
                            flips = int(np.sum(pred != predict(y_ref)))
                            rows.append(row("classification", "decisions_changed", flips, reference=ref_name,
                                            input_set=name, batch=int(bm.y.size), **cols))
                tick(f"trained {bm.name} L{L} {scheme}")
    return rows


def robustness(p, models: list[BenchModel], tick: Callable[[str], None] = lambda s: None) -> list[dict]:
    """boundary {closed, half_open} x oob {clip, zero} (+ extrapolate) at L=64, per model and input set.

    Per cell: max abs error over rows that stay in every layer's domain (``in``), over rows that leave
    it (``oob``), over all rows (``out``), and the OOB row fraction under that boundary mode.
    """
    rows: list[dict] = []
    for bm in models:
        seed = int(bm.info.get("seed", 0))
        names = ("clipped1", "gauss1", "gauss3") if bm.kind == "random" else ("natural", "wide")
        sets = inputs_for(bm, names, N_ROWS if bm.kind == "random" else 4096, seed)
        refs, _ = _references(bm, sets, use_pykan=False)
        membership: dict = {}
        for scheme in p.robust_schemes:
            for boundary, oob in p.robust_cells:
                opts = ContractOptions(L=p.robust_L, scheme=scheme, boundary=boundary, oob=oob)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    ev = NumpyEvaluator(compile_model(bm.src, opts))
                cols = dict(model=bm.name, contender="lut", backend="numpy", reference="float64",
                            seed=seed if bm.kind == "random" else "", **_contract_cols(opts))
                for name, x in sets.items():
                    if (name, boundary) not in membership:
                        membership[(name, boundary)] = layer_domains(bm.src, x, boundary)
                    m = membership[(name, boundary)]
                    y, y_ref = ev(x), refs[name]["float64"]
                    st = compare_outputs(y, y_ref)
                    rows.append(row("robustness", "out_max_abs", st["max_abs"], input_set=name, batch=len(x), **cols))
                    rows.append(row("robustness", "oob_any_frac", float(m.mean()), input_set=name, batch=len(x),
                                    **cols))
                    for label, mask in (("in_max_abs", ~m), ("oob_max_abs", m)):
                        v = compare_outputs(y[mask], y_ref[mask])["max_abs"] if mask.any() else 0.0
                        rows.append(row("robustness", label, v, input_set=name, batch=len(x), n=int(mask.sum()),
                                        **cols))
            tick(f"robustness {bm.name} {scheme}")
    return rows


__all__ = ["controlled", "error_rows", "init_amplitude", "inputs_for", "robustness", "trained"]
