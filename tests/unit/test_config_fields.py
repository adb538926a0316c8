"""The one field reader (contract/fields.py) behind both the stack config and the outputs document:
each broken form is refused by the same check, in each user's words, naming the key's dotted path;
the good form is accepted."""

import re
from pathlib import Path

import pytest

from contract import fields
from contract.fields import MISSING, Problem
from contract.outputs import OutputsError
from contract.outputs.parse import document_fields
from stacks.config_reader import ConfigError, refusal, section

KINDS = ("not_object", "missing", "not_string", "not_allowed", "no_match", "not_whole", "below", "above",
         "not_bool", "not_list", "bad_item", "duplicates", "unknown")


# (read, data, config's words, outputs' words); None: that user never reads that way
BROKEN = [
    (lambda f: f.get("k"), {}, "config regionpair:s.k = (missing): this key is required",
     "stack outputs: k: missing; it is required"),
    (lambda f: f.string("k"), {"k": " "}, "config regionpair:s.k = ' ': expected a non-empty string",
     "stack outputs: k: expected a non-empty string, got ' '"),
    (lambda f: f.string("k", choices=("a", "b")), {"k": "c"}, "config regionpair:s.k = 'c': allowed: a | b",
     "stack outputs: k: 'c' is not allowed; use one of a, b"),
    (lambda f: f.string("k", pattern=re.compile(r"^\d+$"), hint="digits"), {"k": "x"},
     "config regionpair:s.k = 'x': expected digits", None),
    (lambda f: f.integer("k", minimum=1, maximum=9), {"k": "3"},
     "config regionpair:s.k = '3': expected a whole number between 1 and 9",
     "stack outputs: k: expected a whole number, got '3'"),
    (lambda f: f.integer("k", minimum=1, maximum=9), {"k": True},
     "config regionpair:s.k = True: expected a whole number between 1 and 9",
     "stack outputs: k: expected a whole number, got True"),
    (lambda f: f.integer("k", minimum=1, why="at least one"), {"k": 0},
     "config regionpair:s.k = 0: the minimum is 1 (at least one)", "stack outputs: k: 0 is below the minimum 1"),
    (lambda f: f.integer("k", maximum=9), {"k": 10}, "config regionpair:s.k = 10: the maximum is 9",
     "stack outputs: k: 10 is above the maximum 9"),
    (lambda f: f.boolean("k"), {"k": "yes"}, "config regionpair:s.k = 'yes': expected true or false",
     "stack outputs: k: expected true or false, got 'yes'"),
    (lambda f: f.strings("k", (), unique=False, non_empty=True), {"k": "a"},
     "config regionpair:s.k = 'a': expected a list of strings", "stack outputs: k: expected a list of strings, got 'a'"),
    (lambda f: f.strings("k", (), unique=False, non_empty=True), {"k": ["a", ""]},
     "config regionpair:s.k[1] = '': expected a non-empty string",
     "stack outputs: k: expected a list of strings, got ['a', '']"),
    (lambda f: f.strings("k"), {"k": ["a", "a"]},
     "config regionpair:s.k = ['a', 'a']: contains duplicates; list each entry once", None),
    (lambda f: f.obj("k"), {"k": [1]}, "config regionpair:s.k = [1]: expected an object (a YAML mapping)",
     "stack outputs: k: expected an object, got list"),
]


@pytest.mark.parametrize("read, data, config_words, outputs_words", BROKEN)
def test_one_reader_refuses_the_broken_form_in_each_users_words(read, data, config_words, outputs_words):
    with pytest.raises(ConfigError) as config_error:
        read(section(data, "s"))
    assert str(config_error.value) == config_words
    if outputs_words is not None:
        with pytest.raises(OutputsError) as outputs_error:
            read(document_fields(data))
        assert str(outputs_error.value) == outputs_words


def test_one_reader_accepts_the_good_forms_and_records_what_it_read():
    data = {"s": "a", "n": 3, "b": False, "l": ["x", "y"], "o": {"i": 1}}
    for f in (section(data), document_fields(data)):
        assert (f.string("s", choices=("a",)), f.integer("n", minimum=1, maximum=3), f.boolean("b")) == ("a", 3, False)
        assert f.strings("l") == ("x", "y") and f.obj("o").integer("i") == 1
        assert f.get("absent", None) is None and f.obj_or_none("absent") is None
        f.done()  # every key was read


def test_a_key_nobody_read_is_refused_naming_the_ones_read():
    f = section({"a": 1, "typo": 2}, "backups")
    f.get("a")
    with pytest.raises(ConfigError, match=r"backups.typo = 2: unknown key in backups; known keys: a$"):
        f.done()


def test_whole_floats_only_where_the_reader_allows_them():
    assert document_fields({"n": 30.0}).integer("n") == 30  # outputs written as JSON by other tools
    with pytest.raises(ConfigError, match="expected a whole number"):
        section({"n": 30.0}).integer("n")
    with pytest.raises(OutputsError, match="expected a whole number, got 2.5"):
        document_fields({"n": 2.5}).integer("n")


def test_the_document_itself_must_be_an_object():
    with pytest.raises(OutputsError, match=r"^stack outputs: \(document\): expected an object, got list$"):
        document_fields([])


@pytest.mark.parametrize("kind", KINDS)
def test_the_config_words_every_problem_the_reader_raises(kind):
    context = {"choices": ("a",), "hint": "h", "minimum": 1, "maximum": 2, "why": "", "items": ["x"],
               "known": ["a"], "where": "s"}
    error = refusal(Problem(kind, "s.k", "v" if kind != "missing" else MISSING, index=0, context=context))
    assert isinstance(error, ConfigError) and error.key.startswith("s.k")


def test_every_kind_is_one_the_reader_can_raise():
    """KINDS above is every kind contract/fields.py raises: a new kind needs words in both users (the
    test above fails for the config when one is missing)."""
    source = Path(fields.__file__).read_text()
    assert set(re.findall(r'(?:_refuse|Problem)\("(\w+)"', source)) == set(KINDS)
