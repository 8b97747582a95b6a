"""Child process of ``lutkan.testing.attacks.run_class``: ``python -m lutkan.testing.attacks CASES_MODULE`` runs
the module's ``CASES`` (a class name of ``CLASSES`` is accepted too)."""

from __future__ import annotations

import importlib
import json
import sys
import time
import traceback
import warnings

from lutkan.testing.attacks import CLASSES


def _peak_reset() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM (Linux >= 4.0)
    except OSError:
        pass


def _peak_mb() -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def main(name: str) -> int:
    module = importlib.import_module(CLASSES[name][0] if name in CLASSES else name)
    warnings.simplefilter("ignore")
    for case, fn in module.CASES:
        print(json.dumps({"start": case}), flush=True)
        _peak_reset()
        t0 = time.perf_counter()
        info: dict = {}
        try:
            outcome, detail = fn(info)
        except AssertionError as e:
            outcome, detail = "wrong", str(e)
        except MemoryError as e:
            outcome, detail = "exhausted", f"MemoryError: {e}"
        except Exception as e:  # noqa: BLE001 - anything else escaped the case: report it as such
            outcome, detail = "escaped", f"{type(e).__name__}: {e}\n{traceback.format_exc()[-1500:]}"
        rec = {"case": case, "outcome": outcome, "detail": str(detail)[:600], "info": info,
               "seconds": round(time.perf_counter() - t0, 4), "peak_mb": round(_peak_mb(), 1)}
        print(json.dumps(rec), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
