"""whisper_en on a CPU keeps its replicas' threads within the cores (see `cpu_sizing`)."""

from __future__ import annotations

import pytest

from services.whisper_en.backend import available_cores, cpu_sizing


@pytest.mark.parametrize(
    ("replicas", "cpu_threads", "cores", "expected"),
    [
        (1, 0, 2, (1, 2)),  # one replica takes every core
        (4, 0, 2, (2, 1)),  # more replicas than cores: one thread each, as many as cores
        (2, 0, 8, (2, 4)),  # the cores shared out
        (3, 0, 8, (3, 2)),  # rounded down, never past the cores
        (4, 1, 2, (2, 1)),  # a given thread count keeps the replicas that fit beside it
        (2, 4, 2, (1, 4)),  # more threads than cores asked for: one replica, as asked
    ],
)
def test_the_threads_of_all_replicas_fit_the_cores(replicas, cpu_threads, cores, expected):
    found = cpu_sizing(replicas, cpu_threads, cores)
    assert found == expected
    if found[1] <= cores:
        assert found[0] * found[1] <= cores


def test_a_container_s_cpu_limit_bounds_the_cores(tmp_path):
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("150000 100000\n")  # 1.5 CPUs
    assert available_cores(cpu_max) == min(2, available_cores(tmp_path / "absent"))
    cpu_max.write_text("max 100000\n")
    assert available_cores(cpu_max) == available_cores(tmp_path / "absent") >= 1
