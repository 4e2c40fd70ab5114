"""azcluster as a Pulumi component package: `Cluster` and `GpuPool` for TypeScript, Go, C#, Java and YAML.

`provider/__main__.py` hosts them with `pulumi.provider.experimental`, whose analyzer infers the package
schema from type annotations and reads each property's description from the attribute docstring that
follows it in the class's source. The Python API takes pydantic models and dataclasses, which that
analyzer cannot read, so the provider-facing classes are *rendered* here from the very same definitions:
the spec's field descriptions, `GpuPoolArgs`' attribute docstrings and the components' output docstrings
become the generated source's docstrings. That source is compiled once with its text registered in
`linecache`, the way `inspect.getsource` (and so the analyzer) finds it. Nothing is written twice, so the
schema cannot drift from what Python users read.

The provider-facing classes subclass the real components, so a cluster deployed from YAML or TypeScript
is built by the same code, resource for resource, as one built with `from azcluster.components import
Cluster`.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import keyword
import linecache
import re
import sys
import textwrap
import types
import typing
from enum import Enum
from functools import cache
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel

PACKAGE_NAME = "azcluster"
"""The package's name: resource tokens are `azcluster:index:<Component>`, as the components register."""

GENERATED_MODULE = __name__ + "_types"
"""Module the generated classes live in (never a file on disk: its source sits in linecache)."""

_GENERATED_FILENAME = f"<{GENERATED_MODULE}>"


class PluginTypeError(TypeError):
    """A spec field has a type the Pulumi schema cannot express; the message names the field."""


# --- rendering -------------------------------------------------------------------------------------------


def _args_name(model: type) -> str:
    """`ClusterSpec` -> `ClusterArgs`, `SubnetPrefixes` -> `SubnetPrefixesArgs`: one schema type per model."""
    return re.sub(r"Spec$", "", model.__name__) + "Args"


def _pascal(snake: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in snake.split("_"))


def _member_name(value: str) -> str:
    name = re.sub(r"\W+", "_", str(value)).strip("_").upper() or "EMPTY"
    if name[0].isdigit() or keyword.iskeyword(name):
        name = "V_" + name
    return name


def _docstring(text: str | None, indent: str) -> str:
    body = (text or "").strip().replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    return f'{indent}"""{body}"""\n' if body else ""


def attribute_docstrings(cls: type) -> dict[str, str]:
    """`name -> docstring` for the annotated attributes of `cls`, read from its source like the analyzer."""
    tree = ast.parse(_class_source(cls))
    found: dict[str, str] = {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    for node, following in zip(body, body[1:], strict=False):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            found[node.target.id] = inspect.cleandoc(following.value.value)
    return found


def _class_source(cls: type) -> str:
    return textwrap.dedent(inspect.getsource(cls))


class _Renderer:
    """Collects the generated classes in dependency order (a type is defined before it is used)."""

    def __init__(self) -> None:
        self.blocks: list[str] = []
        self.defined: set[str] = set()

    def model(self, model: type[BaseModel]) -> str:
        """A TypedDict for a pydantic model; required keys are the model's required fields."""
        name = _args_name(model)
        if name in self.defined:
            return name
        self.defined.add(name)
        lines = [f"class {name}(TypedDict):\n", _docstring(model.__doc__, "    ")]
        for field_name, info in model.model_fields.items():
            annotation = self.annotation(info.annotation, f"{model.__name__}.{field_name}", plain=True)
            if not info.is_required():
                annotation = f"NotRequired[{annotation}]"
            lines.append(f"    {field_name}: {annotation}\n")
            lines.append(_docstring(info.description, "    "))
        self.blocks.append("".join(lines))
        return name

    def enum(self, owner: str, values: tuple[Any, ...]) -> str:
        """A string enum for a `Literal[...]` field, e.g. `LustreSpec.sku` -> `LustreSku`."""
        model_name, field_name = owner.split(".")
        name = re.sub(r"Spec$", "", model_name) + _pascal(field_name)
        if name in self.defined:
            return name
        if not all(isinstance(v, str) for v in values):
            raise PluginTypeError(f"{owner}: only string literals can become a schema enum, got {values!r}")
        self.defined.add(name)
        lines = [f"class {name}(str, Enum):\n", _docstring(f"Values of `{owner}`.", "    ")]
        lines += [f"    {_member_name(v)} = {v!r}\n" for v in values]
        self.blocks.append("".join(lines))
        return name

    def annotation(self, tp: Any, owner: str, *, plain: bool) -> str:
        """The annotation text for a field type. `plain`: the value is needed while the program runs
        (names, counts), so it cannot be another resource's output."""
        origin, args = get_origin(tp), get_args(tp)
        if tp in (str, int, float, bool):
            return tp.__name__ if plain else f"pulumi.Input[{tp.__name__}]"
        if tp is Any:
            return "Any"
        if origin is typing.Annotated:
            return self.annotation(args[0], owner, plain=plain)
        if origin in (typing.Union, types.UnionType):
            rest = [a for a in args if a is not type(None)]
            if len(rest) != 1:
                raise PluginTypeError(f"{owner}: a union of {rest!r} has no Pulumi schema type")
            return f"Optional[{self.annotation(rest[0], owner, plain=plain)}]"
        if origin is Literal:
            return self.enum(owner, args)
        if origin is list:
            return f"list[{self.annotation(args[0], owner, plain=plain)}]"
        if origin is dict:
            if args[0] is not str:
                raise PluginTypeError(f"{owner}: map keys must be strings, got {args[0]!r}")
            return f"dict[str, {self.annotation(args[1], owner, plain=plain)}]"
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            return self.model(tp)
        raise PluginTypeError(f"{owner}: type {tp!r} has no Pulumi schema type")

    def source(self, tail: str) -> str:
        head = (
            "# Generated by azcluster.components.plugin from the spec and the components' docstrings.\n"
            "from enum import Enum\n"
            "from typing import Any, Optional\n"
            "from typing_extensions import NotRequired, TypedDict\n"
            "import pulumi\n"
            "from azcluster.components import cluster as _cluster, gpu_pool as _gpu_pool\n"
            "from azcluster.components.plugin import construct_cluster, construct_gpu_pool\n\n\n"
        )
        return head + "\n\n".join(self.blocks) + "\n\n" + tail


# The GpuPool inputs a program outside Python can give: GpuPoolArgs without what only Python can pass
# (`size` is looked up from `pool.size`, `custom_data` is rendered from the pool).
_GPU_POOL_INPUTS = (
    "cluster_name",
    "pool",
    "location",
    "resource_group_name",
    "subnet_id",
    "identity_id",
    "admin_username",
    "ssh_public_keys",
    "zone",
    "tags",
)
_GPU_POOL_OUTPUT_INPUTS = {"resource_group_name", "subnet_id", "identity_id"}
"""GpuPoolArgs fields that are usually another resource's output (pulumi.Input), not plain values."""


def _gpu_pool_args_block(renderer: _Renderer) -> str:
    from .gpu_pool import GpuPoolArgs

    docs = attribute_docstrings(GpuPoolArgs)
    namespace = vars(sys.modules[GpuPoolArgs.__module__])
    fields = {f.name: f for f in dataclasses.fields(GpuPoolArgs)}
    lines = [
        "class GpuPoolInputs(TypedDict):\n",
        _docstring("One pool of GPU nodes in a network you already have: GpuPoolArgs' inputs.", "    "),
    ]
    for name in _GPU_POOL_INPUTS:
        declared = fields[name].type
        tp = eval(declared, namespace) if isinstance(declared, str) else declared  # noqa: S307 - our source
        has_default = fields[name].default is not dataclasses.MISSING or (
            fields[name].default_factory is not dataclasses.MISSING
        )
        if name in _GPU_POOL_OUTPUT_INPUTS:
            annotation = "pulumi.Input[str]"
        else:
            annotation = renderer.annotation(tp, f"GpuPoolArgs.{name}", plain=True)
        if has_default:
            annotation = f"NotRequired[{annotation}]"
        lines.append(f"    {name}: {annotation}\n")
        lines.append(_docstring(docs.get(name), "    "))
    return "".join(lines)


def _component_block(name: str, base: str, args_type: str, construct: str, component: type) -> str:
    """A subclass of the real component whose `__init__` takes the provider's `args` mapping."""
    docs = attribute_docstrings(component)
    outputs = output_annotations(component)
    lines = [f"class {name}({base}):\n", _docstring(component.__doc__, "    ")]
    for attr, annotation in outputs.items():
        lines.append(f"    {attr}: {annotation}\n")
        lines.append(_docstring(docs.get(attr), "    "))
    lines.append(
        f"\n    def __init__(self, name: str, args: {args_type}, "
        "opts: Optional[pulumi.ResourceOptions] = None) -> None:\n"
        f"        {construct}(self, name, args, opts)\n"
    )
    return "".join(lines)


def output_annotations(component: type) -> dict[str, str]:
    """The component's declared outputs (class-level annotations) as source text, for the schema."""
    tree = ast.parse(_class_source(component))
    cls = tree.body[0]
    assert isinstance(cls, ast.ClassDef)
    return {
        node.target.id: ast.unparse(node.annotation)
        for node in cls.body
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
    }


def render_source() -> str:
    """The generated module's source: input types from the spec, and the two provider-facing components."""
    from .cluster import Cluster
    from .gpu_pool import GpuPool
    from .spec import ClusterSpec

    renderer = _Renderer()
    cluster_args = renderer.model(ClusterSpec)
    renderer.blocks.append(_gpu_pool_args_block(renderer))
    for extra in _output_types():
        renderer.blocks.append(extra)
    tail = "\n\n".join(
        [
            _component_block("Cluster", "_cluster.Cluster", cluster_args, "construct_cluster", Cluster),
            _component_block("GpuPool", "_gpu_pool.GpuPool", "GpuPoolInputs", "construct_gpu_pool", GpuPool),
        ]
    )
    return renderer.source(tail)


def _output_types() -> list[str]:
    """Types the components' output annotations name (they live beside the components)."""
    from .cluster import ScaleSetInfo

    docs = attribute_docstrings(ScaleSetInfo)
    lines = ["class ScaleSetInfo(TypedDict):\n", _docstring(ScaleSetInfo.__doc__, "    ")]
    for name, tp in typing.get_type_hints(ScaleSetInfo).items():
        lines.append(f"    {name}: {tp.__name__}\n")
        lines.append(_docstring(docs.get(name), "    "))
    return ["".join(lines)]


@cache
def generated_module() -> types.ModuleType:
    """Compile the generated source once, with its text in linecache so `inspect.getsource` finds it."""
    source = render_source()
    lines = source.splitlines(keepends=True)
    linecache.cache[_GENERATED_FILENAME] = (len(source), None, lines, _GENERATED_FILENAME)
    module = types.ModuleType(GENERATED_MODULE)
    module.__file__ = _GENERATED_FILENAME
    sys.modules[GENERATED_MODULE] = module
    exec(compile(source, _GENERATED_FILENAME, "exec", dont_inherit=True), module.__dict__)  # noqa: S102 - our own rendering
    return module


def provider_components() -> list[type]:
    """The components the package hosts, in schema order."""
    module = generated_module()
    return [module.Cluster, module.GpuPool]


# --- construction: the provider's plain mapping -> the real components ------------------------------------


def _plain(value: Any) -> Any:
    """Enum members back to their values, recursively: the spec validates plain strings."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def construct_cluster(component: Any, name: str, args: dict[str, Any], opts: Any) -> None:
    """Build the real Cluster from the provider's args (snake_case keys, as the analyzer maps them)."""
    from .cluster import Cluster
    from .spec import ClusterSpec

    Cluster.__init__(component, name, ClusterSpec.model_validate(_plain(args)), opts)


def construct_gpu_pool(component: Any, name: str, args: dict[str, Any], opts: Any) -> None:
    """Build the real GpuPool, rendering the pool's custom data the way `Cluster` does."""
    from .gpu_pool import GpuPool, GpuPoolArgs
    from .spec import ClusterSpec, PoolSpec

    plain = _plain(args)
    pool = PoolSpec.model_validate(plain["pool"])
    spec = ClusterSpec.model_validate(
        {
            "name": plain["cluster_name"],
            "location": plain["location"],
            "zone": plain.get("zone"),
            "tags": plain.get("tags") or {},
            "pools": [pool.model_dump()],
            "ssh": {
                "admin_username": plain.get("admin_username", "azureuser"),
                "public_keys": plain.get("ssh_public_keys") or [],
            },
        }
    )
    pool_args = GpuPoolArgs.from_spec(
        spec,
        spec.pools[0],
        resource_group_name=args["resource_group_name"],
        subnet_id=args["subnet_id"],
        identity_id=args["identity_id"],
    )
    GpuPool.__init__(component, name, pool_args, opts)


def main(argv: list[str] | None = None) -> None:
    """Serve the package to the Pulumi engine (the plugin's entry point)."""
    from importlib.metadata import version

    from pulumi.provider.experimental import component_provider_host

    if argv is not None:
        sys.argv = [sys.argv[0], *argv]
    component_provider_host(
        provider_components(), PACKAGE_NAME, namespace="azcluster", version=version("azcluster")
    )
