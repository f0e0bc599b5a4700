"""The arena planner: lifetimes, reuse, aliases, scratch and the lower bound."""

from edgec.codegen.memory import Step, plan_memory, scratch_name


def overlaps(plan, a: str, b: str) -> bool:
    oa, ob = plan.offsets[a], plan.offsets[b]
    return oa < ob + plan.sizes[b] and ob < oa + plan.sizes[a]


def test_chain_reuses_dead_buffers():
    # in -> a -> b -> c -> out: at most two buffers live at once
    steps = [Step(["in"], ["a"]), Step(["a"], ["b"]), Step(["b"], ["c"]), Step(["c"], ["out"])]
    sizes = {"a": 100, "b": 200, "c": 100}
    plan = plan_memory(steps, {**sizes, "in": 30, "out": 5}, {"in", "out"})
    assert plan.lower_bound_bytes == 300
    assert plan.arena_bytes == 320  # 200 + 100 rounded up to 16-byte alignment
    assert plan.tensor_ram_bytes == 320 + 30 + 5  # the caller's input and output buffers too
    assert not overlaps(plan, "a", "b") and not overlaps(plan, "b", "c")
    assert all(off % 16 == 0 for off in plan.offsets.values())


def test_skip_connection_keeps_buffer_alive():
    steps = [Step(["in"], ["a"]), Step(["a"], ["b"]), Step(["b"], ["c"]), Step(["a", "c"], ["out"])]
    plan = plan_memory(steps, {"a": 64, "b": 64, "c": 64}, {"in", "out"})
    assert not overlaps(plan, "a", "b") and not overlaps(plan, "a", "c")
    assert plan.lower_bound_bytes == 128 + 64


def test_alias_shares_buffer_and_extends_lifetime():
    steps = [Step(["in"], ["a"]), Step(["a"], ["r"], alias="a"), Step(["r"], ["b"]), Step(["b"], ["out"])]
    plan = plan_memory(steps, {"a": 48, "r": 48, "b": 48}, {"in", "out"})
    assert plan.root["r"] == "a" and "r" not in plan.offsets
    assert not overlaps(plan, "a", "b")


def test_scratch_lives_for_its_step_only():
    steps = [Step(["in"], ["a"], scratch=500), Step(["a"], ["b"]), Step(["b"], ["out"], scratch=32)]
    plan = plan_memory(steps, {"a": 16, "b": 16}, {"in", "out"})
    assert plan.sizes[scratch_name(0)] == 500
    assert not overlaps(plan, scratch_name(0), "a")
    assert not overlaps(plan, scratch_name(2), "b")
    assert plan.lower_bound_bytes == 516


def test_several_placement_orders_reach_the_bound():
    # Largest first puts t0 and t3 (48 bytes each, never alive together) at 0, t1 at 48, so t2, alive with t1 and
    # t3, only fits at 80: 96 bytes. First use first reuses t0's place for t2 and puts t3 above it: 80, the bound.
    steps = [Step(["in"], ["t0"]), Step(["t0"], ["t1"]), Step(["t1"], ["t2"]), Step(["t2"], ["t3"]),
             Step(["t3"], ["out"])]
    plan = plan_memory(steps, {"t0": 48, "t1": 32, "t2": 16, "t3": 48}, {"in", "out"})
    assert plan.lower_bound_bytes == 80 and plan.arena_bytes == 80
    for a, b in (("t0", "t1"), ("t1", "t2"), ("t2", "t3")):
        assert not overlaps(plan, a, b)


def test_model_inputs_and_outputs_in_the_arena():
    # The input lives from before the first step until its last reader, then its space is reused; the output lives
    # until after the last step; an input no step reads still gets its place.
    steps = [Step(["in"], ["a"]), Step(["a"], ["b"]), Step(["b"], ["out"])]
    sizes = {"in": 64, "unused": 16, "a": 32, "b": 64, "out": 32}
    plan = plan_memory(steps, sizes, inputs=["in", "unused"], outputs=["out"])
    assert set(plan.offsets) == {"in", "unused", "a", "b", "out"}
    assert plan.lower_bound_bytes == 16 + 64 + 32  # the unused input with in and a (or with b and out)
    assert plan.arena_bytes == 112 and plan.tensor_ram_bytes == plan.arena_bytes
    assert overlaps(plan, "in", "b")  # the input's space is reused once it is dead
    assert not overlaps(plan, "unused", "b") and not overlaps(plan, "unused", "out")
    assert not overlaps(plan, "in", "a") and not overlaps(plan, "b", "out")
