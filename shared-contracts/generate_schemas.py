"""Write the JSON Schema of the envelope and of every event payload to `schemas/`.

Run by `make contracts`; `tests/test_schemas.py` fails when the committed files drift.
"""

import json
from pathlib import Path

from shared_contracts import PAYLOADS, Envelope

SCHEMA_DIR = Path(__file__).parent / "schemas"


def render() -> dict[str, str]:
    """Return the content of every schema file, keyed by file name."""
    files = {"Envelope.json": Envelope.model_json_schema()}
    for (event_type, version), model in PAYLOADS.items():
        files[f"{event_type}.v{version}.json"] = model.model_json_schema()
    return {
        name: json.dumps(schema, indent=2, sort_keys=True) + "\n" for name, schema in files.items()
    }


def main() -> None:
    """Regenerate `schemas/`, removing files of events that no longer exist."""
    files = render()
    for stale in SCHEMA_DIR.glob("*.json"):
        if stale.name not in files:
            stale.unlink()
    for name, text in files.items():
        (SCHEMA_DIR / name).write_text(text)


if __name__ == "__main__":
    main()
