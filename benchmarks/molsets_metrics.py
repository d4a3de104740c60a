"""molsets' own metric code (`moses.metrics`), imported as installed, for comparing with seqvae.

molsets 0.3.1 does not import on current versions. Three shims, all here and none in seqvae,
let its code run unchanged:

- `rdkit.six` (gone from RDKit): its SA scorer imports `iteritems` from it;
- `pandas.DataFrame.append` (gone from pandas 2): it joins its MCF and PAINS tables with it;
- `numpy.NaN` (gone from numpy 2): its fingerprint helper names it.

`moses/__init__.py` is not run (it imports every model); a bare package module whose
`__path__` is the installed folder lets `moses.metrics` and `moses.dataset` import as they are.
"""

from __future__ import annotations

import importlib.metadata
import os
import sys
import types


def import_molsets_metrics() -> types.ModuleType:
    """`moses.metrics.metrics` with the shims above installed."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    if "rdkit.six" not in sys.modules:
        six = types.ModuleType("rdkit.six")
        six.iteritems = lambda mapping: iter(mapping.items())
        sys.modules["rdkit.six"] = six
    import numpy as np
    import pandas as pd

    if not hasattr(np, "NaN"):
        np.NaN = np.nan
    if not hasattr(pd.DataFrame, "append"):
        def append(self, other, sort=False):
            return pd.concat([self, other], sort=sort)
        pd.DataFrame.append = append
    if "moses" not in sys.modules:
        package = types.ModuleType("moses")
        package.__path__ = [str(importlib.metadata.distribution("molsets").locate_file("moses"))]
        sys.modules["moses"] = package
    import moses.metrics.metrics as metrics

    return metrics
