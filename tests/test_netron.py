"""Netron (the ONNX viewer) opens our ``function`` export in a real headless browser and shows one
``LUTKanEdge`` node per layer with named inputs; clicking a node lists the op's formal inputs and
attributes, and the node's ƒ button opens the standard-op function body.

Needs (skipped with the reason otherwise): pip ``netron`` and ``playwright`` (no browser download:
the system Chromium is used) and Debian's ``chromium`` (``apt-get install -y chromium``; override the
binary with ``LUTKAN_CHROMIUM``). Everything stays on 127.0.0.1: all other hosts are blocked, the
consent cookie is preset (otherwise the app waits on a cookie dialog) and the page clock is set to
Netron's build date (the app refuses to run 180 days after it). ``LUTKAN_UPDATE_DOCS=1`` copies the
screenshot to ``docs/netron.png``.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

import pytest
from conftest import REPO

from lutkan.compiler import compile_model
from lutkan.contract import ContractOptions
from lutkan.custom_ops.schema import INPUTS

netron = pytest.importorskip("netron", reason="Netron is not installed (pip install netron)")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
CHROMIUM = os.environ.get("LUTKAN_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(not CHROMIUM, reason="no Chromium binary (apt-get install -y chromium, or set "
                                                     "LUTKAN_CHROMIUM=/path/to/chromium)")

# Keep window.eval (Netron disables it; playwright's locator helpers need it) and give the SVG a font
# that has Netron's 〈 〉 shape brackets when one is installed (fonts-wqy-microhei; cosmetic only).
INIT_SCRIPT = """
const _eval = window.eval;
Object.defineProperty(window, 'eval', { get() { return _eval; }, set(v) {}, configurable: false });
document.addEventListener('DOMContentLoaded', () => {
  const st = document.createElement('style');
  st.textContent = ".node-item text, .node-argument > text, .edge-label, body, .sidebar " +
                   "{ font-family: 'DejaVu Sans', 'WenQuanYi Micro Hei', sans-serif !important; }";
  document.head.appendChild(st);
});
"""


def _netron_build_date() -> datetime:
    html = (Path(netron.__file__).parent / "index.html").read_text(encoding="utf-8")
    m = re.search(r'<meta name="date" content="([0-9-]+)', html)
    return datetime.strptime(m.group(1), "%Y-%m-%d") if m else datetime.now()


def _texts(html: str) -> list[str]:
    """Visible text runs of an HTML/SVG fragment (tags removed, <title> tooltips dropped)."""
    html = re.sub(r"<title>.*?</title>", "", html, flags=re.S)
    return [t.strip() for t in re.split(r"<[^>]+>", html) if t.strip()]


def _sidebar_items(html: str) -> dict[str, str]:
    """Sidebar rows ``name -> visible value text`` (names are read-only <input value=...> fields)."""
    items = {}
    for chunk in html.split('<div class="sidebar-item">')[1:]:
        m = re.search(r'<input[^>]*value="([^"]*)"', chunk)
        if m:
            items[m.group(1)] = " ".join(_texts(chunk))
    return items


def _source():
    """The bundled breast_cancer classifier if pykan can read it, else a synthetic [3, 4, 2] KAN."""
    try:
        import kan  # noqa: F401

        from lutkan.compiler.pykan import load_source

        return "breast_cancer", load_source(str(REPO / "models" / "breast_cancer" / "0.0"))
    except ImportError:  # identity affines and input_id: the graph has only the LUTKanEdge nodes
        from lutkan.testing.models import random_source

        return "synthetic", random_source([3, 4, 2], G=5, k=3, seed=0, domain=(-1.0, 1.0), amplitude="signed",
                                          affine=False, input_id="sorted")


@pytest.fixture(scope="module")
def function_onnx(tmp_path_factory):
    from lutkan.exporter import export, save_onnx

    name, src = _source()
    model = compile_model(src, ContractOptions(L=64, scheme="int8"))
    path = tmp_path_factory.mktemp("netron") / f"{name}_L64_int8.function.onnx"
    save_onnx(export(model, form="function"), path)
    return path, model


@pytest.fixture(scope="module")
def page_at(function_onnx):
    path, _ = function_onnx
    addr = netron.serve(str(path), None, address=("127.0.0.1", 0), browse=False)
    base = f"http://{addr[0]}:{addr[1]}"
    blocked: list[str] = []

    def route(r):
        if r.request.url.startswith(base + "/"):
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    pw = sync_api.sync_playwright().start()
    browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--headless=new", "--no-sandbox", "--disable-gpu"])
    try:
        ctx = browser.new_context(viewport={"width": 1400, "height": 860})
        ctx.add_cookies([{"name": "consent", "value": str(int(time.time() * 1000)), "url": base}])
        ctx.route("**/*", route)
        ctx.add_init_script(INIT_SCRIPT)
        page = ctx.new_page()
        page.clock.set_system_time(_netron_build_date() + timedelta(days=1))
        page.goto(base + "/")
        page.wait_for_selector("#canvas g.graph-node", timeout=60_000)
        yield page, blocked
    finally:
        browser.close()
        pw.stop()
        netron.stop(addr)


def test_graph_shows_one_lutkanedge_node_per_layer_with_named_inputs(page_at, function_onnx):
    page, blocked = page_at
    _, model = function_onnx
    nodes = page.locator("#canvas g.graph-node")
    assert nodes.count() == len(model.layers)
    texts = _texts(page.inner_html("#canvas"))
    assert texts.count("LUTKanEdge") == len(model.layers), texts
    assert texts.count("ƒ") == len(model.layers), "no function (ƒ) button on the nodes"
    # Initializer inputs are labelled with the op's formal names (not 0, 1, 2, ...).
    for name in ("Knots", "Bounds", "SegScale", "BaseWeight", "EdgeMask", "Table", "TableScale"):
        assert texts.count(name) == len(model.layers), (name, texts)
    # Shapes are shown: layer 0's table is [I, K, L, O].
    l0 = model.layers[0]
    assert f"〈{l0.in_dim}×{l0.n_segments}×64×{l0.out_dim}〉" in texts, texts
    assert f"batch×{model.n_inputs}" in texts and f"batch×{model.n_outputs}" in texts
    # Only third-party hosts were blocked (Netron's analytics); nothing it needs from 127.0.0.1.
    assert all(urlparse(u).hostname != "127.0.0.1" for u in blocked), blocked


def test_node_sidebar_lists_formal_inputs_and_attributes(page_at, function_onnx, tmp_path):
    page, _ = page_at
    _, model = function_onnx
    page.locator("#canvas g.graph-node").first.locator(".node-item-type").first.click()
    page.wait_for_selector("#sidebar", state="visible", timeout=10_000)
    page.wait_for_timeout(400)  # the sidebar slides in
    html = page.inner_html("#sidebar")
    side, items = _texts(html), _sidebar_items(html)
    assert "Node Properties" in side
    assert "LUTKanEdge" in items["type"] and items["module"] == "lutkan" and items["name"] == "kan0", items
    # Every input row is labelled with the op's formal name and shows the initializer it is bound to.
    n_inputs = len(INPUTS) - (0 if model.contract.scheme == "uint8" else 1)  # int8: no TableOffset
    for formal in INPUTS[:n_inputs]:
        assert formal in items, (formal, list(items))
    assert "kan0.table" in items["Table"] and "kan0.knots" in items["Knots"], items
    for attr, value in (("L", "64"), ("interp", "linear"), ("boundary", "closed"), ("oob", "zero"),
                        ("base_fun", "silu")):
        assert value in items.get(attr, ""), (attr, items)
    shot = tmp_path / "netron.png"
    page.screenshot(path=str(shot))
    assert shot.read_bytes()[:4] == b"\x89PNG"
    if os.environ.get("LUTKAN_UPDATE_DOCS"):
        (REPO / "docs").mkdir(exist_ok=True)
        shutil.copy(shot, REPO / "docs" / "netron.png")


def test_function_button_opens_the_standard_op_body(page_at):
    page, _ = page_at
    page.locator("#canvas g.graph-node").first.get_by_text("ƒ").click()
    page.wait_for_function("() => document.querySelectorAll('#canvas g.graph-node').length > 5", timeout=20_000)
    texts = _texts(page.inner_html("#canvas"))
    assert "LUTKanEdge" not in texts or texts.count("LUTKanEdge") < 2
    assert {"Gather", "Clip"} & set(texts) or {"Gather", "Floor"} & set(texts), texts[:80]
