"""Reducers (built-in and a third party's through aegis_register_reducers) and the groups config."""

from __future__ import annotations

import pytest
from gkit import call

from aegis_kernel import hookimpl
from aegis_groups.config import GroupsConfigError, parse_groups
from aegis_groups.reducers import Reply, concat, join_by_handle, last_wins, majority_vote


def replies(*texts):
    return [Reply(f"m{i}", t) for i, t in enumerate(texts)]


def test_builtin_reducers():
    rs = replies("Yes.", "no", "  YES ", "no")
    assert join_by_handle(rs) == {"m0": "Yes.", "m1": "no", "m2": "  YES ", "m3": "no"}
    assert last_wins(rs) == "no" and last_wins([]) is None
    assert concat(rs[:2]) == "## m0\nYes.\n\n## m1\nno"
    assert majority_vote(rs) == {"answer": "Yes.", "votes": 2, "of": 4}  # a tie goes to the first seen
    assert majority_vote(replies("b", "a", "a")) == {"answer": "a", "votes": 2, "of": 3}


class LongestReducer:
    @hookimpl
    def aegis_register_reducers(self, register):
        register("longest", lambda rs: max(rs, key=lambda r: len(r.text)).handle, "the longest answer's member")
        register("broken", lambda rs: 1 / 0)


@pytest.mark.trio
async def test_a_third_party_reducer_is_used_by_name_and_a_raising_one_is_named(gdriver, register_plugin,
                                                                               make_kernel):
    register_plugin(LongestReducer(), name="longest-plugin")
    async with make_kernel() as kernel:
        out = await call(kernel, "aegis_group_spawn", name="g", profiles=["member", "other"])
        gdriver.plan[out["members"][0]] = "ok"
        await call(kernel, "aegis_group_broadcast", name="g", objective="x")
        result = await call(kernel, "aegis_group_wait_all", name="g", timeout=30, reducer="longest")
        assert result["reduced"] in out["members"] and "error" not in result
        again = await call(kernel, "aegis_group_wait_all", name="g", reducer="broken")
        assert again["error"] == "reducer 'broken' failed: ZeroDivisionError: division by zero"
        assert set(again["replies"]) == set(out["members"]) and again["reduced"] is None
        listed = await call(kernel, "aegis_group_reducers")
        names = {r["name"]: r["plugin"] for r in listed["reducers"]}
        assert names["longest"] == "longest-plugin" and {"concat", "join_by_handle", "last_wins",
                                                          "majority_vote"} <= set(names)


def test_config_presets_defaults_and_overlay_presets():
    cfg = parse_groups({"defaults": {"timeout": "5m", "reducer": "concat"},
                        "presets": {"audit": {"profiles": ["a", "b"]}}, "panel": {"profiles": ["c"]}})
    assert cfg.defaults.timeout == 300 and cfg.defaults.reducer == "concat"
    assert cfg.presets["audit"].profiles == ("a", "b") and cfg.presets["panel"].profiles == ("c",)
    with pytest.raises(GroupsConfigError) as info:
        parse_groups({"presets": {"audit": {"profiles": []}}})
    assert info.value.path == ("groups", "presets", "audit", "profiles")
    with pytest.raises(GroupsConfigError):
        parse_groups({"defaults": {"timeout": "soon"}})


@pytest.mark.trio
async def test_an_overlay_preset_spawns_and_an_unknown_profile_is_a_config_error(gdriver, write_config,
                                                                                 make_kernel):
    write_config("profiles: [member, other]\n", ".aegis/groups/pair.yaml")
    async with make_kernel() as kernel:
        out = await call(kernel, "aegis_group_spawn", name="p", preset="pair")
        assert [kernel.sessions.get(h).profile_name for h in out["members"]] == ["member", "other"]
    from aegis_kernel import ConfigError

    write_config("profiles: [member, ghost]\n", ".aegis/groups/pair.yaml")
    with pytest.raises(ConfigError) as info:
        async with make_kernel():
            pass
    assert "unknown agent 'ghost'" in str(info.value) and "groups.pair.profiles.1" in str(info.value)
    assert "pair.yaml" in str(info.value)
