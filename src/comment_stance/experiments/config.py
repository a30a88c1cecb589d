"""The experiment config: its schema, reading a TOML file with dotted overrides, and writing
the resolved config back as TOML."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from ..errors import ConfigError
from ..values import parse_value

#: where runs go when neither ``--out`` nor ``experiment.runs_dir`` says otherwise
DEFAULT_RUNS_DIR = "experiments/runs"
PROTOCOLS = ("fixed", "stratified-kfold", "grouped-kfold", "leave-one-article-out", "few-shot")
#: where the few-shot protocol's base model learns: the dataset's train file (its test file's groups are the
#: new pacts), or every other group of the pooled data (leave one group out)
FEW_SHOT_BASES = ("train-file", "other-groups")
SIGNIFICANCE_TESTS = ("paired-bootstrap", "mcnemar")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")

# -- the config schema ---------------------------------------------------------------------------
@dataclass(frozen=True)
class _Key:
    kind: str  # "str", "int", "float", "bool", "list[str]", "list[int]"
    default: Any
    help: str


SECTIONS: dict[str, dict[str, _Key]] = {
    "experiment": {
        "name": _Key("str", None, "names the run folder; default: the config file's stem"),
        "description": _Key("str", "", "one line shown in the report"),
        "seeds": _Key("list[int]", [0], "each model is trained once per seed"),
        "runs_dir": _Key("str", DEFAULT_RUNS_DIR, "folder for run folders when --out is not given"),
        "save_models": _Key("bool", False, "also save each fitted model (fixed protocol only)"),
    },
    "scoring": {
        "polar": _Key("list[str]", [], "two labels whose mean F1 is F_avg, e.g. [\"supportive\", \"skeptical\"]"),
        "bootstrap": _Key("int", 1000, "bootstrap resamples for confidence intervals and the paired test"),
        "confidence": _Key("float", 0.95, "confidence level of the intervals"),
        "significance": _Key("str", "paired-bootstrap", "paired-bootstrap or mcnemar"),
        "baselines": _Key("list[str]", None, "models that count as baselines; default: all but transformers and ensembles"),
        "annotations": _Key("str", "", "a comment file whose extra columns (e.g. phenomena) join the predictions by id"),
    },
}
EVALUATION_KEYS: dict[str, _Key] = {
    "protocol": _Key("str", None, f"one of {', '.join(PROTOCOLS)}"),
    "data": _Key("str", None, "dataset folder (fixed: its train/test files; other protocols: all its splits) or file"),
    "models": _Key("list[str]", None, "models to run here; default: all"),
    "seeds": _Key("list[int]", None, "seeds to run here (e.g. fewer for a costly protocol); default: [experiment] seeds"),
    "folds": _Key("int", 5, "number of folds (stratified-kfold, grouped-kfold)"),
    "group": _Key("str", "article_id", "column that groups comments (grouped-kfold, leave-one-article-out)"),
    "test_split": _Key("str", "test", "split the fixed protocol tests on"),
    "shots": _Key("list[int]", [0, 16, 32, 64], "few-shot: labelled comments of the new group to adapt on"),
    "base": _Key("str", "train-file", f"few-shot: where the base model learns ({', '.join(FEW_SHOT_BASES)})"),
    "reference": _Key("str", None, "few-shot: another evaluation whose macro-F1 the report draws as the target level"),
}
#: keys that only the few-shot protocol reads
FEW_SHOT_KEYS = ("shots", "base", "reference")
#: the model key holding the settings the few-shot protocol adapts that model with, e.g.
#: ``adapt = { members = "all" }`` for an ensemble or ``adapt = { lr = 1e-5 }`` for a transformer
ADAPT_KEY = "adapt"


@dataclass
class _Source:
    """Where config values came from, so that an error names the file or the override."""

    path: Path | None
    overrides: dict[str, Any] = field(default_factory=dict)

    def of(self, key: str) -> str:
        for override in self.overrides:
            if key == override or key.startswith(override + ".") or override.startswith(key + "."):
                return f"override --{override}"
        return str(self.path) if self.path else "config"

    def error(self, key: str, problem: str, hint: str) -> ConfigError:
        return ConfigError(f"{self.of(key)}: {problem}", hint)


def load_config(path: str | Path | dict[str, Any], overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Read a TOML config (or take a dict), apply dotted ``overrides`` and return the resolved,
    validated config with every default filled in.

    Override values are strings as typed on a command line, parsed as TOML values
    (``"0.5"`` → 0.5, ``"[1, 2]"`` → [1, 2], ``"a,b"`` → ["a", "b"]), or already-typed values.

    >>> config = load_config({"models": {"majority": {}},
    ...                       "evaluations": {"tiny": {"protocol": "fixed", "data": "tests/fixtures/tiny"}}},
    ...                      {"experiment.seeds": "1,2"})
    >>> config["experiment"]["seeds"], config["evaluations"]["tiny"]["models"]
    ([1, 2], ['majority'])
    """
    overrides = dict(overrides or {})
    if isinstance(path, dict):
        raw, source = json.loads(json.dumps(path)), _Source(None, overrides)
        stem = "experiment"
    else:
        path = Path(path)
        source = _Source(path, overrides)
        if not path.is_file():
            raise ConfigError(f"{path}: no such config file", "pass a .toml file such as experiments/baseline.toml")
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML ({exc})", "fix the syntax at that line") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{path}: not UTF-8 text", "save the config as UTF-8") from None
        stem = path.stem
    for key, value in overrides.items():
        # TOML has no null: an override of none/null stays the string "none", as in a config file
        _set_dotted(raw, key, _toml_safe(parse_value(value)) if isinstance(value, str) else value, source)
    return _resolve(raw, source, stem)



def _set_dotted(config: dict[str, Any], key: str, value: Any, source: _Source) -> None:
    parts = key.split(".")
    if not all(parts):
        raise source.error(key, f"'{key}' is not a dotted key", "for example --models.tfidf-svm.C=0.5")
    node = config
    for i, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise source.error(key, f"'{'.'.join(parts[:i + 1])}' is a value, not a section", "override a key inside a section")
        node = child
    node[parts[-1]] = value


def _resolve(raw: dict[str, Any], source: _Source, stem: str) -> dict[str, Any]:
    known = [*SECTIONS, "models", "evaluations"]
    for name in raw:
        if name not in known:
            raise source.error(name, f"unknown section '{name}'", f"known sections: {', '.join(known)}")
    config: dict[str, Any] = {}
    for section, keys in SECTIONS.items():
        config[section] = _resolve_table(raw.get(section, {}), section, keys, source)
    config["experiment"]["name"] = config["experiment"]["name"] or stem
    if not _NAME.match(config["experiment"]["name"]):
        raise source.error("experiment.name", f"experiment.name '{config['experiment']['name']}' cannot name a folder",
                           "use letters, digits, '-' and '_'")
    if not config["experiment"]["seeds"]:
        raise source.error("experiment.seeds", "experiment.seeds is empty", "give at least one seed, e.g. seeds = [0]")
    config["models"] = _resolve_models(raw.get("models"), source)
    config["evaluations"] = _resolve_evaluations(raw.get("evaluations"), config["models"], source)
    few_shot = {m for e in config["evaluations"].values() if e["protocol"] == "few-shot" for m in e["models"]}
    for name, table in config["models"].items():
        if ADAPT_KEY in table and name not in few_shot:
            raise source.error(f"models.{name}.{ADAPT_KEY}", f"'models.{name}.{ADAPT_KEY}' is set but no few-shot "
                               f"evaluation runs '{name}'", "adapt is read by protocol = \"few-shot\" only")
    _check_scoring(config, source)
    return config


def _resolve_table(table: Any, section: str, keys: dict[str, _Key], source: _Source) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise source.error(section, f"'{section}' must be a section ([{section}])", "see experiments/README.md")
    for key in table:
        if key not in keys:
            raise source.error(f"{section}.{key}", f"unknown key '{section}.{key}'",
                               f"known keys in [{section}]: {', '.join(keys)}")
    out = {}
    for key, spec in keys.items():
        value = table.get(key, spec.default)
        out[key] = _typed(value, spec, f"{section}.{key}", source) if value is not None else None
    return out


def _typed(value: Any, spec: _Key, key: str, source: _Source) -> Any:
    def fail() -> ConfigError:
        return source.error(key, f"'{key}' is {value!r}, not a {spec.kind.replace('list[', 'list of ').rstrip(']')}",
                            f"{key.split('.')[-1]}: {spec.help}")

    if spec.kind.startswith("list"):
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, list):
            raise fail()
        item = _Key(spec.kind[5:-1], None, spec.help)
        return [_typed(v, item, key, source) for v in value]
    if spec.kind == "bool":
        if not isinstance(value, bool):
            raise fail()
        return value
    if spec.kind == "int":
        if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise fail()
        return value
    if spec.kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise fail()
        return float(value)
    if not isinstance(value, str):
        raise fail()
    return value


def _resolve_models(models: Any, source: _Source) -> dict[str, dict[str, Any]]:
    from ..errors import ModelError
    from ..models import PRESETS, family_class, make_model

    if not models:
        raise source.error("models", "no [models.<name>] section", 'add one, e.g. [models.tfidf-logreg] preset = "tfidf-logreg"')
    if not isinstance(models, dict):
        raise source.error("models", "'models' must hold one section per model", "e.g. [models.majority]")
    resolved = {}
    for name, table in models.items():
        key = f"models.{name}"
        if not _NAME.match(name):
            raise source.error(key, f"model name '{name}' is not usable", "use letters, digits, '-' and '_' (no dots)")
        if not isinstance(table, dict):
            raise source.error(key, f"'{key}' must be a section", f"write [models.{name}] with preset = ...")
        params = {k: v for k, v in table.items() if k not in ("preset", ADAPT_KEY)}
        preset = table.get("preset", name)
        if preset not in PRESETS:
            raise source.error(f"{key}.preset", f"'{key}.preset' is '{preset}', not a known model",
                               f"choose one of: {', '.join(PRESETS)}")
        if "seed" in params:
            raise source.error(f"{key}.seed", f"'{key}.seed' is set in the model", "seeds are set once, in [experiment] seeds")
        family, preset_params = PRESETS[preset]
        cls = family_class(family)
        known = cls().get_params()
        for param in params:
            if param not in known:
                raise source.error(f"{key}.{param}", f"unknown key '{key}.{param}': '{preset}' has no such hyper-parameter",
                                   f"known: {', '.join(sorted(k for k in known if k != 'seed'))}")
        params = {k: _none(v) for k, v in params.items()}
        try:
            model = make_model(preset, **params)
        except ModelError as exc:
            raise source.error(key, f"{key}: {exc.message}", exc.hint or "check the hyper-parameters") from None
        full = {k: _toml_safe(v) for k, v in model.get_params(deep=False).items() if k != "seed"}
        resolved[name] = {"preset": preset, **full}
        if ADAPT_KEY in table:
            resolved[name][ADAPT_KEY] = _resolve_adapt(table[ADAPT_KEY], f"{key}.{ADAPT_KEY}", model, source)
    return resolved


def _resolve_adapt(table: Any, key: str, model: Any, source: _Source) -> dict[str, Any]:
    """A model's ``adapt`` table: settings the few-shot protocol passes to ``adapt`` (checked
    against what the model's family accepts, before anything trains)."""
    from ..training import adapt_setting_choices, adapt_setting_names, adapt_settings_taken, adapt_setting_types

    every = adapt_setting_names(model)
    names = adapt_settings_taken(model, table) if isinstance(table, dict) else every
    accepted = [k for k in names if k != "seed"]  # a transformer's method chooses what else it takes
    types = adapt_setting_types(model)
    choices = adapt_setting_choices(model)
    if not isinstance(table, dict):
        raise source.error(key, f"'{key}' is {table!r}, not a table",
                           f"write e.g. {key} = {{ {accepted[0] if accepted else 'C'} = ... }}")
    for setting in table:
        if setting == "seed":
            raise source.error(f"{key}.seed", f"'{key}.seed' is set", "seeds are set once, in [experiment] seeds")
        if setting in every and setting not in accepted:
            raise source.error(f"{key}.{setting}", f"'{key}.{setting}' is not a setting of method = "
                               f"\"{table.get('method', 'fine-tune')}\"", f"settings: {', '.join(accepted)}")
        if setting not in accepted:
            raise source.error(f"{key}.{setting}", f"unknown key '{key}.{setting}': adapting a '{model.family}' model "
                               "has no such setting", f"settings: {', '.join(accepted) or 'none'}")
        value, wanted = table[setting], types.get(setting)
        numbers = (int, float) if wanted is float else (int,)
        if wanted and (isinstance(value, bool) or not isinstance(value, numbers)):
            example = "1e-5" if wanted is float else "4"
            raise source.error(f"{key}.{setting}", f"'{key}.{setting}' is {value!r}, not {'a number' if wanted is float else 'a whole number'}",
                               f"write e.g. {setting} = {example}, without quotes")
        if setting in choices and value not in choices[setting]:
            raise source.error(f"{key}.{setting}", f"'{key}.{setting}' is {value!r}, not one of "
                               f"{', '.join(map(str, choices[setting]))}",
                               f"write e.g. {setting} = \"{choices[setting][-1]}\"")
    if "members" in table:  # an ensemble's members that adapt, checked as its adapt checks them
        from ..errors import ModelError

        names = [str(m) for m in model.members]
        chosen = table["members"]
        try:
            if not isinstance(chosen, (str, list)):
                raise ModelError("not a name or a list")
            model.adapting_members(chosen, names)
        except ModelError:
            raise source.error(f"{key}.members", f"'{key}.members' is {chosen!r}, not \"all\" or members of "
                               "this ensemble", f"members: {', '.join(names)}; or \"all\"") from None
    if hasattr(model, "adapt_plan"):  # an ensemble: every setting must reach a member that adapts
        adapting, unused = model.adapt_plan(table.get("members"), {k: v for k, v in table.items() if k != "members"})
        if unused:
            raise source.error(f"{key}.{unused[0]}", f"'{key}.{unused[0]}' is taken by no member that adapts",
                               f"adapting members: {', '.join(adapting)}; set {key}.members (\"all\" adapts every "
                               "member)")
    return {k: _toml_safe(_none(v)) for k, v in table.items()}


def _resolve_evaluations(evaluations: Any, models: dict[str, Any], source: _Source) -> dict[str, dict[str, Any]]:
    if not evaluations:
        raise source.error("evaluations", "no [evaluations.<name>] section",
                           'add one, e.g. [evaluations.random] protocol = "fixed", data = "data/processed/random"')
    if not isinstance(evaluations, dict):
        raise source.error("evaluations", "'evaluations' must hold one section per evaluation", "e.g. [evaluations.random]")
    resolved = {}
    for name, table in evaluations.items():
        key = f"evaluations.{name}"
        if not _NAME.match(name):
            raise source.error(key, f"evaluation name '{name}' is not usable", "use letters, digits, '-' and '_' (no dots)")
        if not isinstance(table, dict):
            raise source.error(key, f"'{key}' must be a section", f"write [evaluations.{name}] with protocol and data")
        for k in table:
            if k not in EVALUATION_KEYS:
                raise source.error(f"{key}.{k}", f"unknown key '{key}.{k}'", f"known keys: {', '.join(EVALUATION_KEYS)}")
        out = {}
        for k, spec in EVALUATION_KEYS.items():
            value = table.get(k, spec.default)
            out[k] = _typed(value, spec, f"{key}.{k}", source) if value is not None else None
        for required in ("protocol", "data"):
            if out[required] is None:
                raise source.error(f"{key}.{required}", f"'{key}' has no '{required}'", EVALUATION_KEYS[required].help)
        if out["protocol"] not in PROTOCOLS:
            raise source.error(f"{key}.protocol", f"'{key}.protocol' is '{out['protocol']}'", f"choose one of: {', '.join(PROTOCOLS)}")
        out["models"] = out["models"] if out["models"] is not None else list(models)
        for model in out["models"]:
            if model not in models:
                raise source.error(f"{key}.models", f"'{key}.models' names '{model}', which has no [models.{model}] section",
                                   f"models defined: {', '.join(models)}")
        if not out["models"]:
            raise source.error(f"{key}.models", f"'{key}.models' is empty", "list at least one model")
        if out["seeds"] is None:
            del out["seeds"]  # the experiment's seeds, whatever an override makes them
        elif not out["seeds"]:
            raise source.error(f"{key}.seeds", f"'{key}.seeds' is empty",
                               "give at least one seed, or leave it out to use [experiment] seeds")
        if out["folds"] < 2:
            raise source.error(f"{key}.folds", f"'{key}.folds' is {out['folds']}", "use 2 or more folds")
        if out["protocol"] == "few-shot":
            _check_few_shot(key, table, out, evaluations, source)
            del out["folds"], out["test_split"]
        else:
            for k in FEW_SHOT_KEYS:
                if k in table:
                    raise source.error(f"{key}.{k}", f"'{key}.{k}' is set but the protocol is '{out['protocol']}'",
                                       f"{k} is read by protocol = \"few-shot\" only")
                del out[k]
        if out["protocol"] == "fixed":
            del out["folds"], out["group"]
        elif out["protocol"] != "few-shot":
            del out["test_split"]
            if out["protocol"] == "stratified-kfold":
                del out["group"]
            if out["protocol"] == "leave-one-article-out":
                del out["folds"]
        resolved[name] = out
    return resolved


def _check_few_shot(key: str, table: dict[str, Any], out: dict[str, Any], evaluations: dict[str, Any],
                    source: _Source) -> None:
    shots = out["shots"]
    if not shots or any(k < 0 for k in shots) or len(set(shots)) != len(shots):
        raise source.error(f"{key}.shots", f"'{key}.shots' is {shots}",
                           "give distinct counts of 0 or more labelled comments, e.g. [0, 16, 32, 64]")
    out["shots"] = sorted(shots)
    if out["base"] not in FEW_SHOT_BASES:
        raise source.error(f"{key}.base", f"'{key}.base' is '{out['base']}'", f"choose one of: {', '.join(FEW_SHOT_BASES)}")
    reference = out["reference"]
    if reference is not None:
        other = evaluations.get(reference)
        if not isinstance(other, dict) or reference == key.split(".", 1)[1] or other.get("protocol") == "few-shot":
            raise source.error(f"{key}.reference", f"'{key}.reference' names '{reference}', which is not another "
                               "evaluation of this config", "name a fixed or cross-validation evaluation, "
                               "e.g. reference = \"random\", or leave it out")


def _check_scoring(config: dict[str, Any], source: _Source) -> None:
    scoring = config["scoring"]
    if scoring["polar"] and len(scoring["polar"]) != 2:
        raise source.error("scoring.polar", f"'scoring.polar' has {len(scoring['polar'])} labels", "give two, or [] for no F_avg")
    if scoring["significance"] not in SIGNIFICANCE_TESTS:
        raise source.error("scoring.significance", f"'scoring.significance' is '{scoring['significance']}'",
                           f"choose one of: {', '.join(SIGNIFICANCE_TESTS)}")
    if scoring["bootstrap"] < 0:
        raise source.error("scoring.bootstrap", "'scoring.bootstrap' is negative", "use 1000, or 0 for no intervals")
    if not 0 < scoring["confidence"] < 1:
        raise source.error("scoring.confidence", f"'scoring.confidence' is {scoring['confidence']}", "use e.g. 0.95")
    if scoring["baselines"] is None:
        from ..models import PRESETS

        # baselines: the models that learn from the training comments alone (no pretrained encoder)
        scoring["baselines"] = [n for n, m in config["models"].items()
                                if PRESETS[m["preset"]][0] not in ("transformer", "ensemble")]
    for name in scoring["baselines"]:
        if name not in config["models"]:
            raise source.error("scoring.baselines", f"'scoring.baselines' names '{name}', which has no [models.{name}] section",
                               f"models defined: {', '.join(config['models'])}")


def _none(value: Any) -> Any:
    """TOML has no null: the string "none" stands for Python's None in hyper-parameters."""
    return None if isinstance(value, str) and value.lower() in ("none", "null") else value


def _toml_safe(value: Any) -> Any:
    if value is None:
        return "none"
    if isinstance(value, tuple):
        return [_toml_safe(v) for v in value]
    if isinstance(value, list):
        return [_toml_safe(v) for v in value]
    if hasattr(value, "item"):
        return value.item()
    return value


def model_params(config: dict[str, Any], name: str) -> tuple[str, dict[str, Any]]:
    """The preset and the hyper-parameters (``"none"`` read as None) of one configured model."""
    table = dict(config["models"][name])
    preset = table.pop("preset")
    table.pop(ADAPT_KEY, None)
    return preset, {k: _none(v) for k, v in table.items()}


def adapt_params(config: dict[str, Any], name: str) -> dict[str, Any]:
    """The settings the few-shot protocol adapts one configured model with (its ``adapt`` table;
    empty: the family's defaults)."""
    return {k: _none(v) for k, v in config["models"][name].get(ADAPT_KEY, {}).items()}


# -- writing TOML --------------------------------------------------------------------------------
def dump_toml(config: dict[str, Any]) -> str:
    """The config as TOML text (tables for dicts; ``None`` values are left out).

    >>> print(dump_toml({"experiment": {"seeds": [0, 1]}, "models": {"svm": {"C": 0.5}}}).strip())
    [experiment]
    seeds = [0, 1]
    <BLANKLINE>
    [models.svm]
    C = 0.5
    """
    lines: list[str] = []

    def table(prefix: str, data: dict[str, Any]) -> None:
        scalars = {k: v for k, v in data.items() if not isinstance(v, dict) and v is not None}
        if scalars or not any(isinstance(v, dict) for v in data.values()):
            if prefix:
                lines.append(f"[{prefix}]")
            lines.extend(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in scalars.items())
            lines.append("")
        for k, v in data.items():
            if isinstance(v, dict):
                table(f"{prefix}.{_toml_key(k)}" if prefix else _toml_key(k), v)

    table("", config)
    return "\n".join(lines).lstrip("\n")


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key, ensure_ascii=False)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if not (isinstance(value, float) and math.isinf(value)) else ("inf" if value > 0 else "-inf")
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")

