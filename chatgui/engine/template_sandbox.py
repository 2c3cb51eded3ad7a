"""The Jinja sandbox chat templates run in, with every value they build bounded in size.

jinja2's sandbox stops templates from reaching Python's internals, but not from asking one C call
for gigabytes: `'%0999999999d' % 0`, `''|center(10**9)`, `'{:>999999999}'.format(1)`, a join
with a huge separator, `str(list)` of a list holding a long text 100,000 times. The time limit
and the output limit act too late for those (between Python lines, and on finished text). Here
every operation that can build a large value from small inputs is checked BEFORE it runs:
operators (`*`, `**`, `%`, `+`, `~`), str.format, the filters, str methods called from the
template, turning a value into output text, and the joins behind macros and `{% set %}` blocks.
Each built value (text or list) must stay under MAX_VALUE_CHARS, and the whole render may build
at most MAX_BUILT_CHARS in total, so a loop of many "allowed" values cannot add up to gigabytes
either. A refusal raises TooLarge (a SecurityError), which ChatTemplate turns into TemplateError.
"""
from __future__ import annotations

import functools
import itertools
import re
import threading
from collections.abc import ItemsView, KeysView, ValuesView

from jinja2.compiler import CodeGenerator
from jinja2.filters import FILTERS
from jinja2.sandbox import (ImmutableSandboxedEnvironment, SandboxedEscapeFormatter, SandboxedFormatter,
                            SecurityError)
from jinja2.utils import Namespace
from markupsafe import Markup

MAX_VALUE_CHARS = 8 * 1024 * 1024    # one text; as much as the whole rendered output may be
MAX_ITEMS = 1_000_000                # one list, tuple or dict
MAX_BUILT_CHARS = 16 * MAX_VALUE_CHARS   # all values built in one render, together
MAX_INT_BITS = 100_000               # ~30,000 digits: far past any template's arithmetic
MAX_RANGE = 100_000
MAX_INDENT = 64                      # tojson(indent=...): real templates use 2 or 4
_FLOAT_CHARS = 400                   # the longest plain float text ('%f' % 1e308) is 316


class TooLarge(SecurityError):
    pass


def _refuse(what: str = "text"):
    raise TooLarge(f"the template tried to build an enormous {what} (over the limit of "
                   f"{MAX_VALUE_CHARS:,} characters or {MAX_ITEMS:,} items)")


def _number(value, what: str) -> int:
    """An int argument that sets a size (width, count); bools and floats as Python takes them."""
    if isinstance(value, float) and value == value and abs(value) < 2 ** 62:
        value = int(value)
    if not isinstance(value, int):
        return 0   # the call itself will fail with a TypeError
    if value > MAX_VALUE_CHARS:
        _refuse(what)
    return max(0, value)


def _repr_size(s: str) -> int:
    """How long repr(s) is at most (inside a list or dict's text)."""
    if s.isprintable():
        return len(s) + s.count("\\") + s.count("'") + s.count('"') + 2
    return 10 * len(s) + 2   # '\U000e0001' for each unprintable character at worst


def text_size(value, limit: int = MAX_VALUE_CHARS, indent: int = 0, top_is_repr: bool = False) -> int:
    """An upper estimate of len(str(value)), refusing as soon as it passes `limit` (so the walk
    over a huge or self-containing value stops early). `indent`: tojson's, per nesting level."""
    total = _scalar_size(value, top_is_repr)
    if total is not None:
        return total if total <= limit else _refuse()
    total = 0
    walks = [(iter((value,)), 0)]   # one iterator per container being walked, and its depth
    while walks:
        items, depth = walks[-1]
        item = next(items, _DONE)
        if item is _DONE:
            walks.pop()
            continue
        if indent:   # tojson: a new line, indented, per item
            total += 2 + depth * indent
        size = _scalar_size(item, depth > 0 or top_is_repr)
        if size is not None:
            total += size
        elif isinstance(item, dict):
            total += 2 + 4 * _checked_len(item)
            walks.append((itertools.chain.from_iterable(item.items()), depth + 1))
        elif isinstance(item, (list, tuple, set, frozenset, KeysView, ValuesView, ItemsView)):
            if len(item) > MAX_ITEMS:
                _refuse("value")
            total += 2 + 2 * len(item)
            walks.append((iter(item), depth + 1))
        elif isinstance(item, Namespace):   # its text shows its attributes
            total += 14
            walks.append((iter((item._Namespace__attrs,)), depth))  # noqa: SLF001 (no public view)
        else:   # Undefined, range, cycler, loop, macro...: a short description
            total += 200
        if total > limit:
            _refuse()
    return total


_DONE = object()


def _scalar_size(item, nested: bool) -> int | None:
    """len(str(item)) (len(repr(item)) if `nested`) for a text or number; None for others."""
    if isinstance(item, str):
        return _repr_size(item) if nested else len(item)
    if isinstance(item, (bytes, bytearray)):
        return 4 * len(item) + 3
    if isinstance(item, bool) or item is None:
        return 5
    if isinstance(item, int):
        if item.bit_length() > MAX_INT_BITS:
            _refuse("number")
        return item.bit_length() * 31 // 100 + 2
    if isinstance(item, float):
        return 25
    return None


def _checked_len(value) -> int:
    if isinstance(value, (str, bytes, bytearray)):
        if len(value) > MAX_VALUE_CHARS:
            _refuse()
        return len(value)
    if isinstance(value, (list, tuple, dict, set, frozenset)):
        if len(value) > MAX_ITEMS:
            _refuse("value")
        return len(value)
    return 0


class _Budget(threading.local):
    built = 0


def _percent_size(fmt, args) -> int:
    """An upper estimate of len(fmt % args), erring large: every number written in the format
    counts as a width (no parser can then read a spec differently from Python's)."""
    text = fmt.decode("latin-1") if isinstance(fmt, (bytes, bytearray)) else fmt
    size = len(text) + _FLOAT_CHARS * text.count("%")
    for digits in re.findall(r"\d+", text):
        if len(digits) > 9:
            _refuse()
        size += int(digits)
    if isinstance(args, dict):
        size += text.count("%(") * text_size(args, top_is_repr=False)
    else:
        items = args if isinstance(args, tuple) else (args,)
        size += sum(text_size(a, top_is_repr=True) for a in items)
        if "*" in text:   # '%*d': a width taken from the arguments
            size += sum(_number(a, "text") for a in items if isinstance(a, int))
    if size > MAX_VALUE_CHARS:
        _refuse()
    return size


_SPEC_NUMBERS = re.compile(r"\d+")


class _BoundedFormatter(SandboxedFormatter):
    """str.format with each field's width and precision, and the text so far, bounded."""

    def __init__(self, env, **kwargs):
        super().__init__(env, **kwargs)
        self.size = 0

    def vformat(self, format_string, args, kwargs):
        self.size = len(format_string)
        return super().vformat(format_string, args, kwargs)

    def convert_field(self, value, conversion):
        if conversion in ("r", "a"):
            text_size(value, top_is_repr=True)
        return super().convert_field(value, conversion)

    def format_field(self, value, format_spec):
        widths = 0
        for digits in _SPEC_NUMBERS.findall(format_spec):
            widths += _number(int(digits) if len(digits) <= 9 else MAX_VALUE_CHARS + 1, "text")
        self.size += widths + text_size(value) + (_FLOAT_CHARS if isinstance(value, float) else 0)
        if self.size > MAX_VALUE_CHARS:
            _refuse()
        return super().format_field(value, format_spec)


class _BoundedEscapeFormatter(_BoundedFormatter, SandboxedEscapeFormatter):
    pass


def _join_items(items, sep_len: int, size=None) -> list:
    """The items of a join, read once (they may come from a generator), refusing as soon as the
    joined text would pass the limit."""
    out, total = [], -sep_len
    for item in items:
        total += sep_len + (size(item) if size else _checked_len(item))
        if total > MAX_VALUE_CHARS:
            _refuse()
        out.append(item)
    return out


def _str_method_size(method, args, kwargs) -> int | None:
    """The largest result a str/bytes method call can give, for the methods whose result can be
    far larger than their inputs; None for the others."""
    s, name = method.__self__, method.__name__
    if name in ("center", "ljust", "rjust", "zfill") and args:
        return max(len(s), _number(args[0], "text"))
    if name == "expandtabs":
        tab = args[0] if args else kwargs.get("tabsize", 8)
        return len(s) + s.count("\t" if isinstance(s, str) else b"\t") * _number(tab, "text")
    if name == "replace" and len(args) >= 2:
        return _replace_size(s, args[0], args[1], args[2] if len(args) > 2 else kwargs.get("count", -1))
    if name == "translate" and args and isinstance(args[0], dict):
        longest = max((len(v) for v in args[0].values() if isinstance(v, str)), default=1)
        return len(s) * max(1, longest)
    return None


def _replace_size(s, old, new, count=-1) -> int:
    if not isinstance(old, type(s)) or not isinstance(new, type(s)):
        return len(s)
    found = s.count(old) if old else len(s) + 1
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    return len(s) + found * max(0, len(new) - len(old))


class _CheckedConcat(CodeGenerator):
    """Compiles `a ~ b` to the environment's checked join instead of jinja2's plain str_join."""

    def visit_Concat(self, node, frame):  # noqa: N802 (jinja2's visitor name)
        self.write("environment.str_join((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class SizedSandbox(ImmutableSandboxedEnvironment):
    """jinja2's immutable sandbox with every value a template builds bounded (module doc)."""

    intercepted_binops = frozenset(["*", "**", "%", "+"])
    code_generator_class = _CheckedConcat

    def __init__(self, **options):
        super().__init__(finalize=self._output_value, **options)
        self._budget = _Budget()
        self.concat = self._concat   # the join behind macros, caller() and {% set %} blocks
        self.globals["range"] = self._range
        self.globals.pop("lipsum", None)   # lorem ipsum of any length: no template needs it
        for name, original in FILTERS.items():
            self.filters[name] = self._filter(original, _FILTER_CHECKS.get(name))

    # -- accounting -----------------------------------------------------------------------
    def start_render(self) -> None:
        self._budget.built = 0

    def _built(self, value):
        """Count a value just built against the render's total; refuse one too large itself."""
        size = _checked_len(value)
        self._budget.built += size
        if self._budget.built > MAX_BUILT_CHARS:
            raise TooLarge(f"the template built more than {MAX_BUILT_CHARS:,} characters in all")
        return value

    def expect(self, size: int) -> None:
        """Refuse before building a text of `size` characters if that is over the limit."""
        if size > MAX_VALUE_CHARS:
            _refuse()

    # -- operators, `~`, output, joins -------------------------------------------------------
    def call_binop(self, context, operator, left, right):
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                if isinstance(seq, (str, bytes, list, tuple)) and isinstance(n, int):
                    limit = MAX_VALUE_CHARS if isinstance(seq, (str, bytes)) else MAX_ITEMS
                    if len(seq) * n > limit:
                        _refuse()
            if isinstance(left, int) and isinstance(right, int) \
                    and left.bit_length() + right.bit_length() > MAX_INT_BITS:
                _refuse("number")
        elif operator == "**":
            if isinstance(left, int) and isinstance(right, int) and abs(left) > 1 \
                    and left.bit_length() * right > MAX_INT_BITS:
                _refuse("power")
            if isinstance(right, (int, float)) and abs(right) > MAX_INT_BITS:
                _refuse("power")
        elif operator == "%" and isinstance(left, (str, bytes)):
            _percent_size(left, right)
        elif operator == "+":   # each side is within the limits: the sum is at most twice them
            _checked_len(left)
            _checked_len(right)
        return self._built(super().call_binop(context, operator, left, right))

    def str_join(self, parts):
        """`a ~ b ~ c`: each part becomes text, so a list part is as long as its text."""
        parts = tuple(parts)
        self.expect(sum(text_size(p) for p in parts))
        return self._built("".join(map(str, parts)))

    def _concat(self, pieces):
        pieces = list(pieces)
        self.expect(sum(len(p) if isinstance(p, str) else text_size(p) for p in pieces))
        return self._built("".join(pieces))

    def _output_value(self, value):
        """Every `{{ value }}` is turned into text: a list or dict's text may be huge."""
        if not isinstance(value, str):
            text_size(value)
        return value

    def _range(self, *args):
        r = range(*args)
        if len(r) > MAX_RANGE:
            raise TooLarge(f"the template asked for a range of {len(r):,} numbers (at most {MAX_RANGE:,})")
        return r

    # -- calls: str.format and str methods ------------------------------------------------------
    def wrap_str_format(self, value):
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        f_self = value.__self__
        formatter = (_BoundedEscapeFormatter(self, escape=f_self.escape) if isinstance(f_self, Markup)
                     else _BoundedFormatter(self))
        is_format_map = value.__name__ == "format_map"

        def bounded(*args, **kwargs):
            if is_format_map:
                if kwargs or len(args) != 1:
                    raise TypeError("format_map() takes exactly one argument")
                args, kwargs = (), args[0]
            return self._built(type(f_self)(formatter.vformat(f_self, args, kwargs)))

        return functools.update_wrapper(bounded, value)

    def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 (jinja2's signature)
        if isinstance(getattr(__obj, "__self__", None), (str, bytes)):
            if getattr(__obj, "__name__", "") == "join" and len(args) == 1 and not kwargs:
                return __self._built(__obj(_join_items(args[0], len(__obj.__self__))))
            size = _str_method_size(__obj, args, kwargs)
            if size is not None:
                __self.expect(size)
        return __self._built(super().call(__context, __obj, *args, **kwargs))

    # -- filters ------------------------------------------------------------------------------
    def _filter(self, original, check):
        """The filter with its check before (for filters whose result can outgrow their input)
        and its result counted after."""
        @functools.wraps(original)
        def bounded(*args, **kwargs):
            if check is not None:
                args = check(self, original, args, kwargs)
            return self._built(original(*args, **kwargs))
        return bounded


def _value_arg(original, args):
    """The filter's value argument: after the context or environment jinja2 passes first."""
    skip = 1 if hasattr(original, "jinja_pass_arg") else 0
    return skip, args[skip] if len(args) > skip else None


def _text(value) -> str:
    text_size(value)
    return str(value)


def _arg(args, kwargs, skip: int, index: int, name: str, default=None):
    position = skip + index
    if len(args) > position:
        return args[position]
    return kwargs.get(name, default)


def _check_center(env, original, args, kwargs):
    skip, value = _value_arg(original, args)
    env.expect(max(text_size(value), _number(_arg(args, kwargs, skip, 1, "width", 80), "text")))
    return args


def _check_indent(env, original, args, kwargs):
    skip, value = _value_arg(original, args)
    width = _arg(args, kwargs, skip, 1, "width", 4)
    per_line = len(width) if isinstance(width, str) else _number(width, "text")
    text = _text(value)
    env.expect(len(text) + (text.count("\n") + 1) * per_line)
    return args


def _check_format(env, original, args, kwargs):
    skip, value = _value_arg(original, args)
    _percent_size(_text(value), kwargs or tuple(args[skip + 1:]))
    return args


def _check_join(env, original, args, kwargs):
    skip, value = _value_arg(original, args)
    sep = _arg(args, kwargs, skip, 1, "d", "")
    items = _join_items(value if value is not None else (), text_size(sep), text_size)
    return args[:skip] + (items,) + args[skip + 1:]   # a generator can be read once only


def _check_replace(env, original, args, kwargs):
    skip, value = _value_arg(original, args)
    old, new = _arg(args, kwargs, skip, 1, "old", ""), _arg(args, kwargs, skip, 2, "new", "")
    count = _arg(args, kwargs, skip, 3, "count", None)
    text = _text(value)
    env.expect(_replace_size(text, str(old), str(new), -1 if count is None else count))
    return args


def _check_wordwrap(env, original, args, kwargs):
    skip, value = _value_arg(original, args)
    wrap = _arg(args, kwargs, skip, 3, "wrapstring", None)
    n = text_size(value)
    env.expect(n + (n + 1) * (len(str(wrap)) if wrap is not None else 2))
    return args


def _check_urlize(env, original, args, kwargs):
    skip, value = _value_arg(original, args)
    n = text_size(value)
    target, rel = _arg(args, kwargs, skip, 3, "target"), _arg(args, kwargs, skip, 4, "rel")
    extra = text_size(target or "") + text_size(rel or "") + 100
    env.expect(3 * n + (n // 2 + 1) * extra)
    return args


def _check_count(position: int, name: str):
    """batch(n) and slice(n) build n-item lists or n lists from nothing."""
    def check(env, original, args, kwargs):
        skip, _value = _value_arg(original, args)
        if _number(_arg(args, kwargs, skip, position, name, 0), "list") > MAX_ITEMS:
            _refuse("list")
        return args
    return check


def _check_sum(env, original, args, kwargs):
    skip, value = _value_arg(original, args)
    items = list(value) if value is not None else []
    start = _arg(args, kwargs, skip, 2, "start", 0)
    if any(isinstance(x, (str, bytes, list, tuple)) for x in items + [start]):
        sizes = sum(_checked_len(x) for x in items + [start])
        if sizes > min(MAX_ITEMS, MAX_VALUE_CHARS):
            _refuse("value")
    return args[:skip] + (items,) + args[skip + 1:]


def _check_text_of(factor: int):
    """Filters that write out a whole value as text (string, pprint, tojson)."""
    def check(env, original, args, kwargs):
        skip, value = _value_arg(original, args)
        indent = _arg(args, kwargs, skip, 1, "indent", None)
        per_level = len(indent) if isinstance(indent, str) else indent if isinstance(indent, int) else 0
        if per_level > MAX_INDENT:
            raise TooLarge(f"the template asked for an enormous indent ({per_level:,}; at most {MAX_INDENT})")
        env.expect(factor * text_size(value, MAX_VALUE_CHARS, indent=per_level, top_is_repr=True))
        return args
    return check


_FILTER_CHECKS = {
    "center": _check_center, "indent": _check_indent, "format": _check_format, "join": _check_join,
    "replace": _check_replace, "wordwrap": _check_wordwrap, "urlize": _check_urlize,
    "batch": _check_count(1, "linecount"), "slice": _check_count(1, "slices"), "sum": _check_sum,
    "string": _check_text_of(1), "pprint": _check_text_of(2), "tojson": _check_text_of(1),
}


def checked_filter(env: SizedSandbox, name: str, function):
    """Install a filter of our own with the same checks as jinja2's of that name."""
    env.filters[name] = env._filter(function, _FILTER_CHECKS.get(name))


