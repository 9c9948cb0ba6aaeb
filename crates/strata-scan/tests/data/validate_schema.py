"""Validate an SBOM (or a SARIF log) against its published JSON schema (vendored in
schema/).

usage: validate_schema.py spdx|cyclonedx|sarif DOC.json
Prints each violation as `PATH: message`; exits 1 when there is any.
"""
import json
import os
import sys

from jsonschema import validators
from referencing import Registry, Resource

here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "schema")


def load(name):
    with open(os.path.join(here, name)) as f:
        return json.load(f)


kind, path = sys.argv[1], sys.argv[2]
with open(path) as f:
    doc = json.load(f)
if kind == "spdx":
    schema, registry = load("spdx-2.3.schema.json"), Registry()
elif kind == "sarif":
    schema, registry = load("sarif-schema-2.1.0.json"), Registry()
else:
    schema = load("bom-1.5.schema.json")
    # bom-1.5 refers to its neighbours by relative name against its $id.
    registry = Registry().with_resources(
        [
            ("http://cyclonedx.org/schema/spdx.SNAPSHOT.schema.json", Resource.from_contents(load("spdx.schema.json"))),
            ("http://cyclonedx.org/schema/jsf-0.82.SNAPSHOT.schema.json", Resource.from_contents(load("jsf-0.82.schema.json"))),
        ]
    )
cls = validators.validator_for(schema)
validator = cls(schema, registry=registry, format_checker=cls.FORMAT_CHECKER)
errors = sorted(validator.iter_errors(doc), key=lambda e: e.json_path)
for e in errors:
    print(f"{e.json_path}: {e.message}")
sys.exit(1 if errors else 0)
