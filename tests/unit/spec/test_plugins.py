"""The spec models are built without pydantic's plugin discovery (it reads the metadata of
every installed distribution at each start); any other model of the process keeps it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PROBE = """
import json, sys
from pathlib import Path
from stackmatrix.spec.load import load_spec
load_spec(Path("matrix.yaml"))
before = sorted(m for m in sys.modules if m.startswith(("importlib.metadata", "pydantic.plugin")))
import pydantic
class Other(pydantic.BaseModel):
    x: int
loader = sys.modules.get("pydantic.plugin._loader")
print(json.dumps({"before": before, "after_loader": getattr(loader, "__file__", None),
                  "real": hasattr(loader, "entry_points"), "valid": Other(x=1).x}))
"""


def test_spec_models_skip_plugin_discovery_and_other_models_keep_it() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, cwd=ROOT,
        timeout=60,
    )  # fmt: skip
    outcome = json.loads(done.stdout)

    assert "importlib.metadata" not in outcome["before"]
    assert "pydantic.plugin._loader" not in outcome["before"]
    # A model built afterwards looks for plugins with pydantic's own loader.
    assert outcome["after_loader"].endswith("_loader.py")
    assert outcome["real"] is True
    assert outcome["valid"] == 1


HAND_OVER = """
import json, sys
import stackmatrix.spec.models as models
sys.modules.pop("pydantic.plugin._loader", None)
stand_in = models._without_plugins()
found = stand_in.get_plugins()
# A name the stand-in does not have (as a later pydantic might ask for) comes from the real
# loader, which from then on is the one in place.
entry_points = stand_in.entry_points
loader = sys.modules["pydantic.plugin._loader"]
print(json.dumps({"found": list(found), "real": loader is not stand_in,
                  "same": entry_points is loader.entry_points}))
"""


def test_the_stand_in_hands_any_other_name_to_pydantics_loader() -> None:
    done = subprocess.run(
        [sys.executable, "-c", HAND_OVER], capture_output=True, text=True, check=True, cwd=ROOT,
        timeout=60,
    )  # fmt: skip

    assert json.loads(done.stdout) == {"found": [], "real": True, "same": True}
