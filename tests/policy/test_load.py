"""Loading a policy file: the packaged one loads; every malformed file is refused at the line
and column of the file where it is wrong (TOML errors, CEL errors inside one-line and
multi-line strings, unknown fields, bad outcomes and factors, rule names and order)."""

from __future__ import annotations

import hashlib

import pytest

from duopass.policy import DEFAULT_POLICY, Factor, Outcome, PolicyError, load, load_bytes

HEAD = 'version = "t.1"\n'
LAST = '\n[[rule]]\nname = "allow_default"\nwhen = "true"\noutcome = "allow"\n'


def rule(name: str, when: str, outcome: str = "deny", extra: str = "") -> str:
    return f'\n[[rule]]\nname = "{name}"\nwhen = {when}\noutcome = "{outcome}"\n{extra}'


def refused(text: str) -> PolicyError:
    with pytest.raises(PolicyError) as caught:
        load(text)
    return caught.value


def at(text: str, line: int, column: int) -> str:
    """What the error points at: the rest of the line from that column."""
    return text.splitlines()[line - 1][column - 1 :]


def test_the_packaged_policy_loads_with_its_named_rules_in_order():
    data = DEFAULT_POLICY.read_bytes()
    policy = load_bytes(data)
    assert policy.sha256 == hashlib.sha256(data).digest()
    names = [r.name for r in policy.rules]
    assert names[0] == "deny_after_event" and names[-1] == "allow_default"
    assert names == [
        "deny_after_event",
        "deny_fully_used",
        "review_many_reissues",
        "review_risk",
        "step_up_partner",
        "step_up_device_signin",
        "step_up_partly_used",
        "step_up_near_doors_off_site",
        "step_up_transfer",
        "allow_default",
    ]
    step_up = policy.rules[4]
    assert step_up.outcome is Outcome.STEP_UP
    assert step_up.factors == (Factor.TOTP, Factor.EMAIL_OTP, Factor.PASSKEY)
    described = policy.describe()
    assert described["sha256"] == policy.sha256.hex() and described["inputs_schema"] == 1
    assert described["rules"][0] == {
        "name": "deny_after_event",
        "when": "time.to_end_s <= 0",
        "outcome": "deny",
        "factors": [],
    }


def test_the_hash_is_of_the_exact_bytes():
    text = HEAD + rule("deny_old", '"time.to_end_s <= 0"') + LAST
    assert load(text).sha256 != load(text + "\n# a comment\n").sha256
    assert load(text).sha256 == hashlib.sha256(text.encode()).digest()


def test_a_toml_error_names_its_line_and_column():
    text = HEAD + rule("deny_old", "time.to_end_s <= 0") + LAST  # the expression unquoted
    error = refused(text)
    assert (error.line, error.column) == (5, 8)
    assert at(text, error.line, error.column).startswith("time.to_end_s")
    assert "not TOML" in error.message


def test_a_cel_syntax_error_on_a_one_line_rule_points_into_the_expression():
    text = HEAD + rule("deny_old", '"time.to_end_s <= 0 && )"') + LAST
    error = refused(text)
    assert error.line == 5 and at(text, error.line, error.column) == ')"'
    assert "deny_old" in error.message and "Syntax error" in error.message


def test_a_cel_syntax_error_in_a_multi_line_string_names_the_file_line():
    when = "'''\ntime.to_end_s <= 0\n  && used.entries >\n  && true\n'''"
    text = HEAD + rule("deny_old", when) + LAST
    error = refused(text)
    # line 1 of the file is `version`, 2 blank, 3 [[rule]], 4 name, 5 when = ''', 6..8 the CEL
    assert error.line == 8 and at(text, error.line, error.column) == "&& true"


def test_escapes_in_a_basic_string_keep_columns_true():
    text = HEAD + rule("deny_old", r'"action == \"lost\" && = 1"') + LAST
    error = refused(text)
    assert at(text, error.line, error.column) == '= 1"'


@pytest.mark.parametrize(
    ("when", "points_at", "says"),
    [
        ('"used.entriez > 0"', 'entriez > 0"', "used has no field 'entriez'"),
        ('"usd.entries > 0"', 'usd.entries > 0"', "no input named 'usd'"),
        ("'action.kind == \"x\"'", "kind ==", "action has no fields"),
        # short-circuited on every sample, so only the names check can see it
        ("'action == \"x\" && device.is_neww'", "is_neww'", "device has no field 'is_neww'"),
    ],
)
def test_a_rule_reading_a_field_that_does_not_exist_is_refused_at_the_name(when, points_at, says):
    text = HEAD + rule("deny_odd", when) + LAST
    error = refused(text)
    assert error.line == 5 and at(text, error.line, error.column).startswith(points_at)
    assert says in error.message


def test_names_inside_strings_and_macro_variables_and_methods_are_not_fields():
    when = """'action.startsWith("re") && [1, 2].all(x, x > 0) && place.network != "device.zz"'"""
    load(HEAD + rule("deny_odd", when) + LAST)


@pytest.mark.parametrize(
    ("when", "says"),
    [('"risk.score + 1"', "gives int, not a bool"), ('"action > 3"', "fails on a sample")],
)
def test_a_rule_that_is_no_bool_or_fails_on_a_sample_is_refused_at_its_when(when, says):
    text = HEAD + rule("deny_odd", when) + LAST
    error = refused(text)
    assert (error.line, error.column) == (5, 8) and says in error.message


@pytest.mark.parametrize(
    ("change", "line", "says"),
    [
        (('outcome = "deny"', 'outcome = "maybe"'), 6, "outcome: one of"),
        (('outcome = "deny"', 'outcome = "step_up"'), 6, "names the factors"),
        (('outcome = "deny"', 'outcome = "step_up"\nfactors = ["sms"]'), 7, "factors: a list of"),
        (('outcome = "deny"', 'outcome = "deny"\nfactors = ["totp"]'), 7, "only a step_up"),
        (('outcome = "deny"', 'outcome = "deny"\nnote = "x"'), 7, "unknown key 'note'"),
        (('name = "deny_old"', 'name = "Deny old"'), 4, "a rule's name"),
        (('name = "deny_old"', 'name = "allow_default"'), 9, "a second rule named"),
        (('version = "t.1"', 'version = "t 1"'), 1, "version"),
        (('version = "t.1"', 'version = "t.1"\nowner = "x"'), 2, "unknown key 'owner'"),
    ],
)
def test_bad_keys_and_values_are_refused_at_their_line(change, line, says):
    old, new = change
    text = (HEAD + rule("deny_old", '"time.to_end_s <= 0"') + LAST).replace(old, new, 1)
    error = refused(text)
    assert error.line == line and says in error.message, error


def test_the_last_rule_must_be_true_and_there_must_be_rules():
    text = HEAD + rule("deny_old", '"time.to_end_s <= 0"')
    assert "the last rule is" in refused(text).message
    assert "no rules" in refused(HEAD).message


def test_bytes_that_are_not_utf8_are_refused_where_they_stop_being_it():
    with pytest.raises(PolicyError) as caught:
        load_bytes(b'version = "t.1"\n# caf\xe9\n')
    assert (caught.value.line, caught.value.column) == (2, 6)
