"""The dockyard.dev/v1alpha1 API: pydantic models that are the single source of truth for the CRDs.

Modules: :mod:`common` (base model, conditions, references, selectors, quantity types), :mod:`quantities`
(the quantity parser), :mod:`dockerhost`, :mod:`dockercontainer`, :mod:`schemas` (model -> structural schema)
and :mod:`crds` (the CustomResourceDefinitions). See docs/api.md for the decisions behind the fields.
"""
