"""The InferenceService CRD, made from the schema tests/k8s derives from the kserve SDK's models.

tests/k8s/kserve_schema.py gives a strict JSON schema (`$ref`s, `additionalProperties: false`).
An API server wants a structural OpenAPI v3 schema instead: references inlined, no
`additionalProperties: false` (the server prunes unknown fields, and strict field validation
refuses them, which is the same outcome), free-form and int-or-string fields marked with the
`x-kubernetes-*` extensions KServe's own CRD uses.
"""

from __future__ import annotations

from typing import Any

from tests.k8s.kserve_schema import inferenceservice_schema

GROUP, VERSION, KIND, PLURAL = (
    "serving.kserve.io",
    "v1beta1",
    "InferenceService",
    "inferenceservices",
)

# An unconstrained node ({} in the JSON schema): int-or-string ports and free-form objects.
_ANY = {"x-kubernetes-preserve-unknown-fields": True}
# KServe's ResourceQuantity: a quantity such as "500m" or 2, as Kubernetes declares quantities.
_QUANTITY = {"anyOf": [{"type": "integer"}, {"type": "string"}], "x-kubernetes-int-or-string": True}


def _structural(node: dict[str, Any], definitions: dict[str, Any], seen: tuple[str, ...]) -> dict:
    """One JSON-schema node as a structural OpenAPI node, references inlined."""
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[1]
        if name in seen:  # a recursive type: its inner levels are left open
            return {"type": "object", **_ANY}
        return _structural(definitions[name], definitions, (*seen, name))
    if not node:
        return dict(_ANY)
    if node.get("type") == ["string", "number"]:
        return dict(_QUANTITY)
    converted: dict[str, Any] = {"type": node["type"]}
    if "properties" in node:
        converted["properties"] = {
            key: _structural(value, definitions, seen) for key, value in node["properties"].items()
        }
    elif isinstance(node.get("additionalProperties"), dict):
        converted["additionalProperties"] = _structural(
            node["additionalProperties"], definitions, seen
        )
    if "items" in node:
        converted["items"] = _structural(node["items"], definitions, seen)
    if node.get("required"):
        converted["required"] = node["required"]
    return converted


def inferenceservice_crd() -> dict[str, Any]:
    """The CustomResourceDefinition of `serving.kserve.io/v1beta1` InferenceService."""
    schema, _ = inferenceservice_schema()
    definitions = schema["$defs"]
    root = definitions["V1beta1InferenceService"]
    properties = {
        name: _structural(value, definitions, ("V1beta1InferenceService",))
        for name, value in root["properties"].items()
        if name not in ("apiVersion", "kind", "metadata")
    }
    # The API server owns apiVersion, kind and metadata's schema.
    properties |= {"apiVersion": {"type": "string"}, "kind": {"type": "string"}}
    properties["metadata"] = {"type": "object"}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": KIND.lower(),
                "shortNames": ["isvc"],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": properties,
                            "required": ["spec"],
                        }
                    },
                }
            ],
        },
    }
