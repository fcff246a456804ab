"""Evaluate the few Terraform expressions the container definitions use, as Terraform would.

The tests that start a container's command need its real environment and health check, not
strings like ``${local.environment}``. This evaluates the subset of HCL the locals use —
references to ``local``/``var``/``data``, ``["key"]`` indexing, interpolation inside strings,
``merge``/``concat``/``tostring``/``replace`` and ``[for k, v in map : {a = k, b = v}]`` —
with variables at their defaults and the account given. Anything else raises, so a change to
the Terraform the renderer does not understand fails loudly instead of passing vacuously.
"""

from __future__ import annotations

import re
from typing import Any

from tests.infra.terraform_model import Terraform

_WHOLE = re.compile(r"^\$\{(.*)\}$", re.S)
_PART = re.compile(r"\$\{([^}]*)\}")
_FOR = re.compile(r"^\[for (\w+), (\w+) in (.+?) : \{(.*)\}\]$", re.S)
_FIELD = re.compile(r"(\w+)\s*=(?!=)\s*")


class _Namespace:
    def __init__(self, lookup: Any) -> None:
        self._lookup = lookup

    def __getattr__(self, name: str) -> Any:
        return self._lookup(name)


class _Tree(dict):
    """A nested mapping reachable by attribute (``data.aws_caller_identity.current.account_id``)."""

    def __getattr__(self, name: str) -> Any:
        value = self[name]
        return _Tree(value) if isinstance(value, dict) else value


class Renderer:
    """Terraform's values of the locals, with ``var`` at its defaults (overridable)."""

    def __init__(self, tf: Terraform, account: str, variables: dict[str, Any] | None = None) -> None:
        self._tf = tf
        self._variables = variables or {}
        self._data = _Tree({"aws_caller_identity": {"current": {"account_id": account}},
                            "aws_partition": {"current": {"partition": "aws"}}})

    def local(self, name: str) -> Any:
        return self.render(self._tf.locals[name])

    def render(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {key: self.render(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.render(item) for item in value]
        if not isinstance(value, str):
            return value
        if (match := _WHOLE.match(value)) and "${" not in match.group(1):
            return self._evaluate(match.group(1))
        return _PART.sub(lambda part: str(self._evaluate(part.group(1))), value)

    def _evaluate(self, expression: str) -> Any:
        expression = expression.strip()
        if match := _FOR.match(expression):
            key, item, source, body = match.groups()
            fields = _FIELD.sub(lambda f: f'"{f.group(1)}": ', body)
            return [eval("{" + fields + "}", {}, {key: k, item: v})
                    for k, v in self._evaluate(source).items()]
        names = {"local": _Namespace(self.local), "var": _Namespace(self._variable), "data": self._data,
                 "merge": lambda *maps: {k: v for m in maps for k, v in m.items()},
                 "concat": lambda *lists: [x for part in lists for x in part],
                 "tostring": lambda v: str(v).lower() if isinstance(v, bool) else str(v),
                 "replace": lambda text, old, new: text.replace(old, new)}
        return eval(expression, {"__builtins__": {}}, names)

    def _variable(self, name: str) -> Any:
        return self._variables[name] if name in self._variables else self._tf.default(name)
