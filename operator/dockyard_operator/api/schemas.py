"""Turn a pydantic model's JSON Schema into a Kubernetes structural OpenAPI v3 schema.

pydantic writes JSON Schema 2020-12: shared definitions behind ``$ref``, ``anyOf [X, null]`` for optionals,
titles, ``additionalProperties: false``. A CRD needs a structural schema: everything inlined, a type on every
node, no ``$ref``, ``anyOf`` only in the int-or-string form, and only the keywords Kubernetes knows. This module
does that rewrite and refuses (:class:`SchemaError`) anything it does not understand, instead of emitting a CRD
the API server would reject or, worse, accept with weaker validation than the models.

It also refuses a property without a description: the CRD is the API's documentation (``kubectl explain``).
"""

from collections.abc import Mapping
from typing import Any, Final

from pydantic import BaseModel

from dockyard_operator.errors import DockyardError

# Keywords a CRD schema may carry, after our rewrite.
_ALLOWED_KEYWORDS: Final = frozenset(
    {
        "type",
        "description",
        "properties",
        "required",
        "items",
        "additionalProperties",
        "enum",
        "default",
        "pattern",
        "format",
        "minLength",
        "maxLength",
        "minimum",
        "maximum",
        "minItems",
        "maxItems",
        "minProperties",
        "maxProperties",
        "anyOf",
    }
)
_DROPPED_KEYWORDS: Final = frozenset({"title"})
_ALLOWED_FORMATS: Final = frozenset({"date-time", "int32", "int64"})


class SchemaError(DockyardError):
    """A model cannot be expressed as a structural CRD schema (a bug in the models, found at generation time)."""


def structural_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The structural OpenAPI v3 schema of a model, with its JSON (camelCase) field names."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    definitions: dict[str, Any] = raw.pop("$defs", {})
    return _rewrite(raw, definitions=definitions, where=model.__name__)


def _resolve(node: Mapping[str, Any], *, definitions: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Inline $ref and collapse ``anyOf [X, null]``; siblings (description, default) win over the target's."""
    node = dict(node)
    if "$ref" in node:
        name = node.pop("$ref").rsplit("/", 1)[-1]
        if name not in definitions:
            raise SchemaError(f"{where}: unknown $ref {name!r}")
        target = _resolve(definitions[name], definitions=definitions, where=where)
        return {**target, **node}
    if "allOf" in node and len(node["allOf"]) == 1:
        target = _resolve(node.pop("allOf")[0], definitions=definitions, where=where)
        return {**target, **node}
    if "anyOf" in node and not node.get("x-kubernetes-int-or-string"):
        options = [o for o in node["anyOf"] if o != {"type": "null"}]
        if len(options) != 1:
            raise SchemaError(f"{where}: a union other than Optional[X] or int-or-string: {node['anyOf']}")
        del node["anyOf"]
        target = _resolve(options[0], definitions=definitions, where=where)
        return {**target, **node}
    return node


def _rewrite(node: Mapping[str, Any], *, definitions: Mapping[str, Any], where: str) -> dict[str, Any]:
    resolved = _resolve(node, definitions=definitions, where=where)
    out: dict[str, Any] = {}
    empty_object_default = False
    for key, value in resolved.items():
        if key in _DROPPED_KEYWORDS:
            continue
        if key == "additionalProperties":
            # false is what extra="forbid" says; Kubernetes prunes unknown fields instead (and rejects false).
            if value is not False:
                out[key] = _rewrite(value, definitions=definitions, where=f"{where}.*")
        elif key == "properties":
            out[key] = {
                name: _rewrite(sub, definitions=definitions, where=f"{where}.{name}") for name, sub in value.items()
            }
        elif key == "items":
            out[key] = _rewrite(value, definitions=definitions, where=f"{where}[]")
        elif key == "default":
            # None, [] and {} are "unset": writing them into every stored object only adds noise. The exception,
            # kept below: {} on an object whose fields have defaults, which is how the API server learns to fill
            # them in when the object itself is left out (as `strategy` of a Deployment reads back filled in).
            if value not in (None, [], {}):
                out[key] = value
            elif value == {}:
                empty_object_default = True
        elif key == "description":
            out[key] = _unwrap(value)
        elif key == "format":
            if value not in _ALLOWED_FORMATS:
                raise SchemaError(f"{where}: format {value!r} is not one we emit")
            out[key] = value
        elif key == "anyOf":
            out[key] = value  # int-or-string only; _resolve refused every other union
        elif key.startswith("x-kubernetes-") or key in _ALLOWED_KEYWORDS:
            out[key] = value
        else:
            raise SchemaError(f"{where}: keyword {key!r} has no place in a structural schema")
    if "type" not in out and not out.get("x-kubernetes-int-or-string"):
        if "enum" in out:
            out["type"] = "string"
        else:
            raise SchemaError(f"{where}: no type")
    for name, sub in out.get("properties", {}).items():
        if not sub.get("description"):
            raise SchemaError(f"{where}.{name}: no description (every field needs a docstring)")
    if empty_object_default and any("default" in sub for sub in out.get("properties", {}).values()):
        out["default"] = {}
    return out


def _unwrap(text: str) -> str:
    """Docstrings wrap at our line length; kubectl explain wraps to the terminal. Keep only paragraph breaks."""
    paragraphs = [" ".join(p.split()) for p in text.strip().split("\n\n")]
    return "\n\n".join(p for p in paragraphs if p)
