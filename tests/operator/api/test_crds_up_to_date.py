"""manifests/crds/ is exactly what hack/gen-crds generates from the models today."""

from __future__ import annotations

from pathlib import Path

from dockyard_operator.api import crds

CRD_DIR = Path(__file__).resolve().parents[3] / "manifests" / "crds"


def test_committed_crds_match_the_models() -> None:
    """Regenerate in memory and compare file by file: a model change without regeneration fails here."""
    expected = crds.render_files()
    on_disk = {p.name: p.read_text() for p in CRD_DIR.glob("*.yaml")}
    stale = sorted(name for name in expected if on_disk.get(name) != expected[name])
    extra = sorted(set(on_disk) - set(expected))
    assert not extra, f"manifests/crds/ has files hack/gen-crds does not generate: {extra}"
    assert not stale, f"manifests/crds/ is out of date (stale: {stale}); run: .venv/bin/python hack/gen-crds"


def test_every_kind_has_status_subresource_columns_short_names_and_category() -> None:
    """The kubectl experience every kind promises: status subresource, columns, short names, `dockyard`."""
    for info in crds.KINDS:
        crd = crds.build_crd(info)
        version = crd["spec"]["versions"][0]
        assert version["subresources"]["status"] == {}
        if info.scale is not None:  # `kubectl scale`, HPA and KEDA work on it
            assert version["subresources"]["scale"]["labelSelectorPath"] == ".status.selector"
        assert version["additionalPrinterColumns"]
        assert crd["spec"]["names"]["shortNames"]
        assert crd["spec"]["names"]["categories"] == ["dockyard"]


def test_every_schema_node_is_typed_and_every_property_described() -> None:
    """Structural: no $ref, no bare anyOf, a type (or int-or-string) everywhere, a description on every field."""

    def walk(node: dict[str, object], where: str) -> None:
        assert "$ref" not in node, where
        assert "type" in node or node.get("x-kubernetes-int-or-string") is True, where
        if "anyOf" in node:
            assert node.get("x-kubernetes-int-or-string") is True, where
        properties = node.get("properties", {})
        assert isinstance(properties, dict)
        for name, sub in properties.items():
            assert isinstance(sub, dict)
            if where != "" or name != "metadata":
                assert sub.get("description"), f"{where}.{name}"
            walk(sub, f"{where}.{name}")
        items = node.get("items")
        if isinstance(items, dict):
            walk(items, f"{where}[]")
        extra = node.get("additionalProperties")
        if isinstance(extra, dict):
            walk(extra, f"{where}.*")

    for info in crds.KINDS:
        walk(crds.build_crd(info)["spec"]["versions"][0]["schema"]["openAPIV3Schema"], "")
