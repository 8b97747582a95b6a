"""Test support shared by the suite, the demo and the benchmarks (not needed at inference time).

* ``oracle``: ``BACKENDS``, ``backends(model)``, ``assert_backends_agree(model, x)`` (re-exported here);
* ``models``: ``random_source`` / ``random_model``, the one seeded random-model factory;
* ``inputs``: ``adversarial_inputs`` and friends, the one adversarial input generator;
* ``strategies``: the hypothesis strategies (needs the ``dev`` extra; never imported by lutkan itself).

Importing this package loads only NumPy and ``lutkan.metrics``; the backends are imported on first use.
"""

from lutkan.testing.oracle import BACKENDS, assert_backends_agree, backends, onnx_runner, rounding_allowance

__all__ = ["BACKENDS", "assert_backends_agree", "backends", "onnx_runner", "rounding_allowance"]
